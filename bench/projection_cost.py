"""Projection cost: requests and capacity per 100 stream records, ours against the naive
one-update-per-event projection and the limit (one write per read row touched per batch).

A realistic mix (stock received and reorder levels for the products; customers place orders,
some add an item, operators ship some and customers cancel others) is written through the
command service to an events table on moto (in-process), then delivered from its stream to
the four live projections by the local stand-in for Lambda's event source mapping
(`orders_local.stream_poller`), each with its own counted client. Two deliveries:

* **busy stream**: the whole backlog in batches of 100 (the stack's batch size): coalescing at
  its best. Per-batch figures show how the cost grows as a day's partition fills up.
* **quiet stream**: batches of one record, what Lambda delivers when commands trickle in
  (no batching window is configured): every batch pays the control-row read and lag write.

The naive projector (`bench.naive`) sees the same records. The limit per batch is one write
(at least one write unit, at the row's final size) per read-model row that the batch changes
(an order's view, a day's sales, a product's stock, a customer's summary) and no read.

    .venv/bin/python -m bench.projection_cost [--small] [--json PATH]
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.capacity import Cost, Meter, item_size, write_units
from bench.common import (
    client,
    create_table,
    in_process_moto,
    metered_client,
    section_main,
    timestamp,
    unique,
)
from bench.naive import NaiveProjector, read_table_request

BUSY_BATCH, QUIET_BATCH = 100, 1
FULL_ORDERS, SMALL_ORDERS = 1_000, 25
QUIET_ORDERS, SMALL_QUIET_ORDERS = 100, 8
PRODUCTS = 20


@dataclass
class Batch:
    records: int
    cost: Cost
    rows: dict[str, int]  # the read-model rows the batch changes -> their size (filled in at the end)


@dataclass
class Delivery:
    """One projection's cost over one delivery of the stream."""

    name: str
    batches: list[Batch] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(b.records for b in self.batches)

    @property
    def cost(self) -> Cost:
        total = Cost()
        for batch in self.batches:
            total = total + batch.cost
        return total


# -- the workload ---------------------------------------------------------------------------------


def write_mix(events_table: str, orders_count: int, seed: int) -> dict[str, int]:
    """Write the realistic mix; answer what was written (commits, events, orders)."""
    from orders_core.application import CommandContext, CommandService
    from orders_core.domain import inventory, orders
    from orders_core.store.dynamodb import DynamoDBEventStore

    rng = random.Random(seed)
    service = CommandService(DynamoDBEventStore(client(), events_table))
    n = 0

    def context() -> CommandContext:
        nonlocal n
        n += 1
        command_id = str(uuid.uuid4())
        return CommandContext(command_id, str(uuid.uuid4()), "bench", timestamp(n), fingerprint=command_id)

    products = [f"sku-{p}" for p in range(PRODUCTS)]
    for product in products:
        service.execute(inventory.PRODUCT, product, inventory.ReceiveStock(product, 1_000), context())
        service.execute(inventory.PRODUCT, product, inventory.SetReorderLevel(product, 25), context())
    address = orders.ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
    customers = max(5, orders_count // 5)
    for number in range(orders_count):
        order_id = str(uuid.uuid4())
        customer = f"customer-{number % customers}"
        lines = tuple(
            orders.OrderLine(
                rng.choice(products), rng.randint(1, 3), Decimal(rng.choice(["9.99", "12.50", "4.00"]))
            )
            for _ in range(rng.randint(1, 3))
        )
        service.execute(
            orders.ORDER,
            order_id,
            orders.PlaceOrder(order_id, customer, lines, address),
            context(),
            expect_new=True,
        )
        if rng.random() < 0.4:
            line = orders.OrderLine(rng.choice(products), 1, Decimal("3.00"))
            service.execute(orders.ORDER, order_id, orders.AddItem(order_id, customer, line), context())
        fate = rng.random()
        if fate < 0.3:
            service.execute(orders.ORDER, order_id, orders.ShipOrder(order_id, f"T{number}"), context())
        elif fate < 0.45:
            command = orders.CancelOrder(order_id, customer, False, "changed mind")
            service.execute(orders.ORDER, order_id, command, context())
    return {"orders": orders_count, "customers": customers, "products": PRODUCTS, "commands": n}


# -- the limit: which read rows a batch changes -----------------------------------------------------


class RowsTouched:
    """The read-model rows each batch changes, per projection (the limit writes each once)."""

    def __init__(self) -> None:
        self._orders: dict[str, tuple[str, str]] = {}  # order stream -> (day, customer)

    def of(self, commits: Sequence[Any]) -> dict[str, set[str]]:
        from orders_core.domain.inventory import ReorderLevelSet
        from orders_core.domain.orders import OrderPlaced
        from orders_core.projections import customer_summary, inventory, sales
        from orders_core.projections.base import ORDER_PREFIX, facts

        rows: dict[str, set[str]] = {
            "customer_orders": set(),
            "sales_analytics": set(),
            "inventory": set(),
            "customer_summary": set(),
        }
        for commit in commits:
            commit_facts = facts(commit)
            for fact in commit_facts:
                if isinstance(fact.event, OrderPlaced):
                    self._orders[commit.stream_id] = (fact.envelope.recorded_at[:10], fact.event.customer_id)
                if isinstance(fact.event, ReorderLevelSet):
                    rows["inventory"].add(fact.event.product_id)
                rows["inventory"].update(inventory.contributions(fact))
            if not commit.stream_id.startswith(ORDER_PREFIX):
                continue
            rows["customer_orders"].add(commit.stream_id.removeprefix(ORDER_PREFIX))
            day, customer = self._orders[commit.stream_id]
            if any(sales.contribution(fact) is not None for fact in commit_facts):
                rows["sales_analytics"].add(day)
            if any(customer_summary.contribution(fact) is not None for fact in commit_facts):
                rows["customer_summary"].add(customer)
        return rows


# -- delivering the stream ------------------------------------------------------------------------


@dataclass
class Tables:
    events: str
    control: str
    reads: dict[str, str]  # projection -> its read table
    naive: dict[str, str]


def _tables() -> Tables:
    from orders_core.projections.registry import NAMES, registration
    from orders_core.tables import EVENTS, PROJECTIONS_CONTROL

    return Tables(
        events=create_table(EVENTS.create_table_request(unique("bench-events"))),
        control=create_table(PROJECTIONS_CONTROL.create_table_request(unique("bench-control"))),
        reads={
            name: create_table(registration(name).table.create_table_request(unique(f"bench-{name}")))
            for name in NAMES
        },
        naive={name: create_table(read_table_request(unique(f"bench-naive-{name}"))) for name in NAMES},
    )


def _poller(tables: Tables, name: str, handler: Callable[[dict[str, Any], Any], Any], batch: int) -> Any:
    from orders_local.stream_poller import InMemoryCheckpointStore, PollerSettings, StreamPoller

    arn = client().describe_table(TableName=tables.events)["Table"]["LatestStreamArn"]
    return StreamPoller(
        f"bench-{name}-{uuid.uuid4().hex[:6]}",
        streams_client=client("dynamodbstreams"),
        stream_arn=arn,
        handler=handler,
        checkpoints=InMemoryCheckpointStore(),
        settings=PollerSettings(batch_size=batch, maximum_retry_attempts=0),
    )


def _commits(event: dict[str, Any]) -> list[Any]:
    from orders_core.store.stream_records import commit_from_stream_record

    return [c for r in event.get("Records", []) if (c := commit_from_stream_record(r)) is not None]


def deliver_ours(tables: Tables, batch: int) -> dict[str, Delivery]:
    from projections.handler import handler_for

    from orders_core.projections.base import Projection
    from orders_core.projections.control import ControlStore
    from orders_core.projections.live import LiveProjection
    from orders_core.projections.registry import NAMES, registration
    from orders_core.readmodels.dynamodb import DynamoDBReadStore
    from orders_core.store.dynamodb import DynamoDBEventStore

    deliveries: dict[str, Delivery] = {}
    for name in NAMES:
        counted, meter = metered_client()

        def build(projection: str, generation: int, counted: Any = counted) -> Projection:
            found = registration(projection)
            store = DynamoDBReadStore(counted, tables.reads[projection])
            return found.build(store, DynamoDBEventStore(counted, tables.events), generation)

        live = LiveProjection(name, ControlStore(DynamoDBReadStore(counted, tables.control)), build)
        delivery = deliveries[name] = Delivery(name)
        touched = RowsTouched()
        inner = handler_for(live)

        def handle(
            event: dict[str, Any],
            context: Any,
            inner: Callable[..., Any] = inner,
            meter: Meter = meter,
            delivery: Delivery = delivery,
            touched: RowsTouched = touched,
            name: str = name,
        ) -> Any:
            commits = _commits(event)
            before = meter.snapshot()
            response = inner(event, context)
            rows = touched.of(commits)[name]
            delivery.batches.append(Batch(len(commits), meter.snapshot() - before, dict.fromkeys(rows, 0)))
            return response

        _poller(tables, name, handle, batch).drain(timeout=600)
    return deliveries


def deliver_naive(tables: Tables, batch: int) -> dict[str, Delivery]:
    deliveries: dict[str, Delivery] = {}
    for name, table in tables.naive.items():
        counted, meter = metered_client()
        projector = NaiveProjector(counted, {name: table})
        delivery = deliveries[name] = Delivery(name)

        def handle(
            event: dict[str, Any],
            context: Any,
            projector: NaiveProjector = projector,
            meter: Meter = meter,
            delivery: Delivery = delivery,
        ) -> Any:
            commits = _commits(event)
            before = meter.snapshot()
            projector.process(commits)
            delivery.batches.append(Batch(len(commits), meter.snapshot() - before, {}))
            return {"batchItemFailures": []}

        _poller(tables, f"naive-{name}", handle, batch).drain(timeout=600)
    return deliveries


def _final_row_sizes(tables: Tables, deliveries: dict[str, Delivery]) -> None:
    """Each row the limit writes, at the size ours has at the end (at least one write unit)."""
    lookup = client()
    kinds = {"customer_orders": "view"}
    for name, delivery in deliveries.items():
        sizes: dict[str, int] = {}
        for batch in delivery.batches:
            for row in batch.rows:
                if row not in sizes:
                    key = {"pk": {"S": f"1#{row}"}, "sk": {"S": kinds.get(name, "summary")}}
                    item = lookup.get_item(TableName=tables.reads[name], Key=key).get("Item")
                    sizes[row] = item_size(item) if item else 0
                batch.rows[row] = sizes[row]


def _partitions(tables: Tables) -> dict[str, Any]:
    """How big the partitions a summary recompute reads have grown: rows and bytes, the largest."""
    lookup = client()
    found: dict[str, Any] = {}
    for name in ("sales_analytics", "inventory", "customer_summary"):
        sizes: dict[str, list[int]] = {}
        for page in lookup.get_paginator("scan").paginate(TableName=tables.reads[name]):
            for item in page["Items"]:
                sizes.setdefault(item["pk"]["S"], []).append(item_size(item))
        if sizes:
            rows = max(sizes.values(), key=sum)
            found[name] = {"partitions": len(sizes), "largest_rows": len(rows), "largest_bytes": sum(rows)}
    return found


def _limit(delivery: Delivery) -> Cost:
    limit = Cost()
    for batch in delivery.batches:
        limit.requests["PutItem"] += len(batch.rows)
        limit.write_units += sum(write_units(size) for size in batch.rows.values())
        limit.bytes_written += sum(batch.rows.values())
    return limit


def _per_100(cost: Cost, records: int) -> dict[str, Any]:
    return cost.scaled(100 / records) if records else cost.scaled(0)


def measure(orders_count: int, batch: int, seed: int) -> dict[str, Any]:
    tables = _tables()
    workload = write_mix(tables.events, orders_count, seed)
    ours = deliver_ours(tables, batch)
    naive = deliver_naive(tables, batch)
    _final_row_sizes(tables, ours)
    records = next(iter(ours.values())).records
    from orders_core.store.dynamodb import DynamoDBEventStore

    events = 0
    store = DynamoDBEventStore(client(), tables.events)
    streams = {
        item["stream_id"]["S"]
        for page in client()
        .get_paginator("scan")
        .paginate(TableName=tables.events, ProjectionExpression="stream_id")
        for item in page["Items"]
    }
    for stream in streams:
        events += sum(len(c.events) for c in store.read_commits(stream))

    projections: dict[str, Any] = {}
    totals = {"ours": Cost(), "naive": Cost(), "limit": Cost()}
    for name, delivery in ours.items():
        limit = _limit(delivery)
        naive_cost = naive[name].cost
        totals["ours"] = totals["ours"] + delivery.cost
        totals["naive"] = totals["naive"] + naive_cost
        totals["limit"] = totals["limit"] + limit
        full = [b for b in delivery.batches if b.records == batch] or delivery.batches
        projections[name] = {
            "ours": _per_100(delivery.cost, records),
            "naive": _per_100(naive_cost, records),
            "limit": _per_100(limit, records),
            "batches": len(delivery.batches),
            "first_batch": _per_100(full[0].cost, full[0].records),
            "last_batch": _per_100(full[-1].cost, full[-1].records),
        }
    return {
        "batch_size": batch,
        "workload": {**workload, "records": records, "events": events},
        "partitions": _partitions(tables),
        "per_100_records": {name: _per_100(cost, records) for name, cost in totals.items()},
        "projections": projections,
    }


def run(small: bool) -> dict[str, Any]:
    with in_process_moto():
        busy = measure(SMALL_ORDERS if small else FULL_ORDERS, BUSY_BATCH, seed=3)
        quiet = measure(SMALL_QUIET_ORDERS if small else QUIET_ORDERS, QUIET_BATCH, seed=5)
    return {"busy": busy, "quiet": quiet}


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
