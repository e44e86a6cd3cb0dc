"""Projection cost: requests and capacity per 100 stream records, ours against the naive
one-update-per-event projection and the limit (one write per read row touched per batch).

A realistic mix (stock received and reorder levels for the products; customers place orders,
some add an item, operators ship some and customers cancel others) is written through the
command service to an events table on moto (in-process), then delivered from its stream, by the
local stand-in for Lambda's event source mapping (`orders_local.stream_poller`), to ONE projector
(`orders_core.projections.fanout.Projector`, through `functions/projections/handler.py`), as the
stack does: it hands every batch to each registered read model. Each read model has its own
counted client (its projection and its control row), so requests are still attributed per read
model; the projector's shared work (the lists of parked streams, the heartbeat row) has a counted
client of its own and is reported on its own line. Two deliveries:

* **busy stream**: the whole backlog in batches of 100 (the stack's batch size): coalescing at
  its best. The first and the last full batch show whether the cost grows as the day fills up.
* **quiet stream**: batches of one record, what Lambda delivers when commands come further apart
  than its 1 s batching window.

What is cached for a time (each read model's control row and list of parked streams, 10 s; the
heartbeat, once a minute) is timed by a bench clock, not the wall clock (moto delivers a batch in
milliseconds, AWS traffic does not): busy batches arrive `BUSY_GAP_SECONDS` apart (100 commits a
second), quiet ones `QUIET_GAP_SECONDS` apart.

**What ours does.** The order view (`customer_orders`) writes an order's row with a `PutItem` per
batch (reading it first unless the batch holds the order's first commit). The four summaries
(the day's sales, a product's stock and sales, a customer's summary) are kept by deltas
(`orders_core.projections.deltas`): nothing is ever recomputed from a partition. Each *source* (an
order's stream, a product's stream) has a row of its own with its folded state; a batch folds the
source's new commits, and the difference between what the source contributes before and after is
added to the summaries' shard rows (partition keys `<generation>#<summary>#<k>`, which readers
add up): the source rows and the additions go in ONE `TransactWriteItems` (up to 100 rows; the
customer summary packs each customer's sources in transactions of their own), each source row
conditioned on its version.
The projection instance caches the source rows it read or wrote (and, for the customer summary,
each customer's newest-wins key), and takes a source whose first commit is in the batch to be new
without reading it (a redelivery fails the version condition and is read then): a warm projector
reads a source row only when it has neither. A transaction costs two write units per item per KB
(each item at least 1 KB: 2), which `bench/capacity.py` charges.

The naive projector (`bench.naive`) sees the same records. The limit per batch is one write
(at least one write unit, at the row's final size) per read-model row that the batch changes
(an order's view, a day's sales, a product's stock, a customer's summary, a product's sales)
and no read: `RowsTouched` follows each source's state with the read models' own pure functions
(`fold`, then `shares`, `owned`, `latest` before and after the batch) and counts a summary when
what some source of the batch contributes to it changed; a summary's final size is that of its
shard rows merged into one row. Source rows are not read-model rows: the limit keeps none.

**Summary growth.** A summary's cost must not grow with what it summarizes. One day is filled
through the real projections (on the in-memory read store: a day of 100,000 orders takes seconds
there, where moto takes milliseconds per transaction) with a synthetic stream of orders placed
that day, each naming one hot product; the summaries' shard rows are then copied into the moto
table, and the read and write units of a batch of one more order are measured at the 100th order
and at the N-th, for the day's sales row and the hot product's sales row. The measured order is
new to the measured projection, as to a projector that never saw it: its placement commit is in
the batch.

    .venv/bin/python -m bench.projection_cost [--small] [--json PATH]
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bench.capacity import Cost, Meter, item_size, write_units
from bench.common import (
    START,
    InProcessMotoLookup,
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
# The bench clock: how far apart batches arrive (what the projector's caches and heartbeat count).
BUSY_GAP_SECONDS = 1.0  # a full batch of 100 a second
QUIET_GAP_SECONDS = 2.0  # a command every 2 s: further apart than the 1 s batching window
# Summary growth: orders placed in one day, and where the read units of one more order are measured.
FULL_DAY_ORDERS, SMALL_DAY_ORDERS = 100_000, 300
FIRST_POINT = 100
PRELOAD_BATCH = 1_000  # the day is filled in batches this big (in memory: the size barely matters)
HOT_PRODUCT = "sku-hot"
GROWTH_PROJECTIONS = ("sales_analytics", "product_sales")
SHARED = "projector"  # the projector's own line: what no single read model does


@dataclass
class Batch:
    records: int
    cost: Cost
    rows: dict[str, int]  # the read-model rows the batch changes -> their size (filled in at the end)


@dataclass
class Delivery:
    """One read model's cost (or the projector's shared cost) over one delivery of the stream."""

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


class BenchClock:
    """What the projector's caches and heartbeat read as the time: advanced by `gap` seconds per
    batch, so that a cached row costs what it would at that arrival rate, however fast moto is."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.gap


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

# The read models kept by deltas (orders_core.projections.deltas), by name: their modules' pure
# functions say what each source contributes, so the limit knows which summaries a batch changes.
DELTA_MODULES = {
    "sales_analytics": "orders_core.projections.sales",
    "inventory": "orders_core.projections.inventory",
    "customer_summary": "orders_core.projections.customer_summary",
    "product_sales": "orders_core.projections.product_sales",
}


def _model(name: str) -> Any:
    """A read model on an in-memory store, for what it says about itself (routing, shards)."""
    from orders_core.projections.registry import registration
    from orders_core.readmodels.memory import InMemoryReadStore
    from orders_core.store.memory import InMemoryEventStore

    return registration(name).build(InMemoryReadStore(), InMemoryEventStore(), 1)


@dataclass
class _Source:
    """A source as the limit follows it: the commits folded in and the state they fold to."""

    applied: set[int] = field(default_factory=set)
    data: dict[str, Any] = field(default_factory=dict)


class RowsTouched:
    """The read-model rows each batch changes, per read model (the limit writes each once).

    The order view: the order's row, for every commit of an order. A summary (a day's sales, a
    product's stock or sales, a customer's summary): when what some source of the batch (an order,
    a product's stream) contributes to it differs before and after the batch's commits, by the
    read model's own `fold` and `shares` (and `owned`, `latest` for the customer summary)."""

    def __init__(self, names: Sequence[str]) -> None:
        import importlib

        self._names = tuple(names)
        self._modules = {
            name: importlib.import_module(module) for name, module in DELTA_MODULES.items() if name in names
        }
        # Which source a commit belongs to: the read model's own routing (never reads its store).
        self._routing = {name: _model(name) for name in self._modules}
        self._sources: dict[str, dict[str, _Source]] = {name: {} for name in self._modules}

    def of(self, commits: Sequence[Any]) -> dict[str, set[str]]:
        from orders_core.projections.base import ORDER_PREFIX

        rows: dict[str, set[str]] = {name: set() for name in self._names}
        if "customer_orders" in rows:
            rows["customer_orders"] = {
                c.stream_id.removeprefix(ORDER_PREFIX)
                for c in commits
                if c.stream_id.startswith(ORDER_PREFIX)
            }
        for name, module in self._modules.items():
            batch: dict[str, list[Any]] = {}
            for commit in commits:
                source = self._routing[name].source_of(commit)
                if source is not None:
                    batch.setdefault(source, []).append(commit)
            for source, members in batch.items():
                rows[name] |= self._fold(name, module, source, members)
        return rows

    def _fold(self, name: str, module: Any, source: str, commits: Sequence[Any]) -> set[str]:
        """Fold a source's new commits; the summaries whose share of it changed."""
        import copy

        from orders_core.projections.base import facts

        state = self._sources[name].setdefault(source, _Source())
        before = copy.deepcopy(state.data)
        for commit in sorted(commits, key=lambda c: c.first_version):
            if commit.first_version in state.applied:
                continue  # a redelivery changes nothing
            state.applied.add(commit.first_version)
            for fact in facts(commit):
                module.fold(state.data, fact)
        changed: set[str] = set()
        for view in ("shares", "owned", "latest"):
            contributes = getattr(module, view, None)
            if contributes is None:
                continue
            old, new = contributes(before), contributes(state.data)
            changed |= {entity for entity in old.keys() | new.keys() if old.get(entity) != new.get(entity)}
        return changed


# -- delivering the stream ------------------------------------------------------------------------


@dataclass
class Tables:
    events: str
    control: str
    reads: dict[str, str]  # read model -> its read table
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


def projector_for(tables: Tables, clients: dict[str, Any], shared: Any, clock: BenchClock) -> Any:
    """The stack's projector (orders_core.composition builds the same), each read model on its
    own client, the parking lot and the heartbeat on `shared`, timed by `clock`."""
    from datetime import UTC, datetime

    from orders_core.envelope import format_timestamp
    from orders_core.projections.base import Projection
    from orders_core.projections.control import ControlStore
    from orders_core.projections.fanout import PROJECTOR, ParkedStreams, Projector
    from orders_core.projections.live import LiveProjection
    from orders_core.projections.parking import ParkingLot
    from orders_core.projections.registry import registration
    from orders_core.readmodels.dynamodb import DynamoDBReadStore
    from orders_core.store.dynamodb import DynamoDBEventStore

    def live(name: str) -> LiveProjection:
        counted = clients[name]

        def build(projection: str, generation: int) -> Projection:
            store = DynamoDBReadStore(counted, tables.reads[projection])
            return registration(projection).build(
                store, DynamoDBEventStore(counted, tables.events), generation
            )

        control = ControlStore(DynamoDBReadStore(counted, tables.control))
        return LiveProjection(name, control, build, clock=clock)

    parking = ParkingLot(DynamoDBReadStore(shared, tables.control))
    heartbeat_store = ControlStore(DynamoDBReadStore(shared, tables.control))
    return Projector(
        [live(name) for name in clients],
        parking,
        now=lambda: format_timestamp(datetime.now(UTC)),
        parked_streams=ParkedStreams(parking, clock=clock),
        heartbeat=lambda at_ms, lag_ms: heartbeat_store.record_batch(PROJECTOR, at_ms=at_ms, lag_ms=lag_ms),
        clock=clock,
    )


def deliver_ours(tables: Tables, batch: int, gap: float) -> tuple[dict[str, Delivery], Delivery]:
    """The stream through one projector; each read model's cost, and the projector's shared cost."""
    from projections.handler import handler_for

    from orders_core.projections.registry import NAMES

    metered = {name: metered_client() for name in NAMES}
    shared, shared_meter = metered_client()
    clock = BenchClock(gap)
    projector = projector_for(
        tables, {name: counted for name, (counted, _) in metered.items()}, shared, clock
    )
    inner = handler_for(projector)
    deliveries = {name: Delivery(name) for name in NAMES}
    overhead = Delivery(SHARED)
    touched = RowsTouched(NAMES)

    def handle(event: dict[str, Any], context: Any) -> Any:
        clock.tick()  # this batch arrives `gap` seconds after the previous one
        commits = _commits(event)
        before = {name: meter.snapshot() for name, (_, meter) in metered.items()}
        shared_before = shared_meter.snapshot()
        response = inner(event, context)
        parked = {d.projection: d.errors for d in projector.last_deliveries if d.parked}
        if parked:
            raise RuntimeError(f"a read model parked commits; the bench measures nothing: {parked}")
        rows = touched.of(commits)
        for name, (_, meter) in metered.items():
            spent = meter.snapshot() - before[name]
            deliveries[name].batches.append(Batch(len(commits), spent, dict.fromkeys(rows[name], 0)))
        overhead.batches.append(Batch(len(commits), shared_meter.snapshot() - shared_before, {}))
        return response

    _poller(tables, "projector", handle, batch).drain(timeout=600)
    return deliveries, overhead


def deliver_naive(tables: Tables, batch: int) -> dict[str, Delivery]:
    """The naive projection of each read model on its own counted client, fed by one poller."""
    metered = {name: metered_client() for name in tables.naive}
    projectors = {
        name: NaiveProjector(metered[name][0], {name: table}) for name, table in tables.naive.items()
    }
    deliveries = {name: Delivery(name) for name in tables.naive}

    def handle(event: dict[str, Any], context: Any) -> Any:
        commits = _commits(event)
        for name, projector in projectors.items():
            meter: Meter = metered[name][1]
            before = meter.snapshot()
            projector.process(commits)
            deliveries[name].batches.append(Batch(len(commits), meter.snapshot() - before, {}))
        return {"batchItemFailures": []}

    _poller(tables, "naive", handle, batch).drain(timeout=600)
    return deliveries


def _final_row_sizes(tables: Tables, deliveries: dict[str, Delivery]) -> None:
    """Each row the limit writes, at the size ours has at the end (at least one write unit): an
    order's view as it is; a summary as one row, its shard rows merged (counters summed, every
    attribute once), which is what the limit would keep."""
    lookup = InProcessMotoLookup()
    for name, delivery in deliveries.items():
        shards: int | None = getattr(_model(name), "shards", None)
        sizes: dict[str, int] = {}
        for batch in delivery.batches:
            for row in batch.rows:
                if row not in sizes:
                    sizes[row] = _row_size(lookup, tables.reads[name], row, shards)
                batch.rows[row] = sizes[row]


def _row_size(lookup: InProcessMotoLookup, table: str, entity: str, shards: int | None) -> int:
    if shards is None:  # the order view: one row
        item = lookup.get_item(TableName=table, Key={"pk": {"S": f"1#{entity}"}, "sk": {"S": "view"}})
        return item_size(item["Item"]) if "Item" in item else 0
    merged: dict[str, Any] = {}
    for shard in range(shards):
        key = {"pk": {"S": f"1#{entity}#{shard}"}, "sk": {"S": "summary"}}
        for attribute, value in lookup.get_item(TableName=table, Key=key).get("Item", {}).items():
            if attribute in merged and "N" in value and "N" in merged[attribute]:
                merged[attribute] = {"N": str(Decimal(merged[attribute]["N"]) + Decimal(value["N"]))}
            else:
                merged.setdefault(attribute, value)
    if not merged:
        return 0
    return item_size({**merged, "sk": {"S": "summary"}})


def _partition_sizes(table: str) -> dict[str, list[int]]:
    """Every partition of a read table: its rows' sizes (read from moto's backend in this process:
    a Scan would spend seconds serializing a large table)."""
    sizes: dict[str, list[int]] = {}
    for item in InProcessMotoLookup().items(table):
        sizes.setdefault(item["pk"]["S"], []).append(item_size(item))
    return sizes


def _partitions(tables: Tables) -> dict[str, Any]:
    """Each read model's rows at the end: its largest partition (rows and bytes; for a summary,
    its shard rows) and how many source rows it keeps (one per order or product stream)."""
    found: dict[str, Any] = {}
    for name in tables.reads:
        sizes = _partition_sizes(tables.reads[name])
        sources = {pk: rows for pk, rows in sizes.items() if "#source#" in pk}
        summaries: dict[str, list[int]] = {}
        for pk, rows in sizes.items():
            if pk not in sources:  # a summary's shard rows: one partition key each, `1#<summary>#<k>`
                summary = pk.rsplit("#", 1)[0] if name != "customer_orders" else pk
                summaries.setdefault(summary, []).extend(rows)
        if summaries:
            rows = max(summaries.values(), key=sum)
            found[name] = {
                "partitions": len(summaries),
                "largest_rows": len(rows),
                "largest_bytes": sum(rows),
                "source_rows": len(sources),
                "source_bytes": sum(sum(rows) for rows in sources.values()),
            }
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


def _events_in(table: str) -> int:
    from orders_core.store.dynamodb import DynamoDBEventStore

    store = DynamoDBEventStore(client(), table)
    streams = {
        item["stream_id"]["S"]
        for page in client().get_paginator("scan").paginate(TableName=table, ProjectionExpression="stream_id")
        for item in page["Items"]
    }
    return sum(len(c.events) for stream in streams for c in store.read_commits(stream))


def _cache_times() -> dict[str, float]:
    """How long the projector keeps what it reads, and how often it writes its heartbeat."""
    from orders_core.projections.fanout import HEARTBEAT_SECONDS, PARKED_TTL_SECONDS
    from orders_core.projections.live import CONTROL_TTL_SECONDS

    return {
        "control_ttl_seconds": CONTROL_TTL_SECONDS,
        "parked_ttl_seconds": PARKED_TTL_SECONDS,
        "heartbeat_seconds": HEARTBEAT_SECONDS,
    }


def measure(orders_count: int, batch: int, gap: float, seed: int) -> dict[str, Any]:
    tables = _tables()
    workload = write_mix(tables.events, orders_count, seed)
    ours, overhead = deliver_ours(tables, batch, gap)
    naive = deliver_naive(tables, batch)
    _final_row_sizes(tables, ours)
    records = overhead.records

    projections: dict[str, Any] = {}
    totals = {"ours": overhead.cost, "naive": Cost(), "limit": Cost()}
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
        "batch_gap_seconds": gap,
        "batches": len(overhead.batches),
        "workload": {**workload, "records": records, "events": _events_in(tables.events)},
        "partitions": _partitions(tables),
        "per_100_records": {name: _per_100(cost, records) for name, cost in totals.items()},
        "projector": {"ours": _per_100(overhead.cost, records), **_cache_times()},
        "projections": projections,
    }


# -- summary growth: one more order, at the 100th and at the N-th order of one day -----------------


def one_day_of_orders(count: int, single: Sequence[int], seed: int = 11) -> list[Any]:
    """`count` orders placed on one day (their placement commits), each naming the hot product,
    half of them one other product too; the orders at positions `single` (1-based) name only the
    hot product, so that what they cost is the cost of the two rows measured."""
    from orders_core.domain.orders import ORDER, OrderLine, PlaceOrder, ShippingAddress
    from orders_core.envelope import Commit, CommitMetadata, format_timestamp

    rng = random.Random(seed)
    day = START.replace(hour=0, minute=0, second=0) + timedelta(days=1)
    step = timedelta(days=1) / (count + 1)
    address = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
    commits = []
    for n in range(count):
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer = f"customer-{n % 1_000}"
        lines = [OrderLine(HOT_PRODUCT, rng.randint(1, 3), Decimal("12.50"))]
        if rng.random() < 0.5 and n + 1 not in single:
            lines.append(
                OrderLine(f"sku-{rng.randrange(PRODUCTS)}", 1, Decimal(rng.choice(["4.00", "9.99"])))
            )
        decided = ORDER.decide(ORDER.initial_state, PlaceOrder(order_id, customer, tuple(lines), address))
        meta = CommitMetadata(f"c{n}", f"corr{n}", f"c{n}", customer, format_timestamp(day + step * (n + 1)))
        commits.append(Commit(f"order-{order_id}", 1, tuple(e.to_new_event() for e in decided), meta))
    return commits


def _copy_partitions(store: Any, partitions: Sequence[str], table: str) -> None:
    """Rows the projection wrote to the in-memory store, written as they are into the moto table."""
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    items = [
        {"PutRequest": {"Item": {name: serialize(value) for name, value in row.items()}}}
        for pk in partitions
        for row in store.query_partition(pk)
    ]
    dynamodb = client()
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {table: items[start : start + 25]}
        while pending:
            pending = dict(dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})


def summary_growth(orders: int) -> dict[str, Any]:
    """One day filled with `orders` orders; at order 100 and at order `orders`, what a batch of that
    one order (one stream record) costs the day's sales row and the hot product's sales row.

    The day is filled by the real projections on the in-memory read store (moto takes about 10 ms
    per transaction: 100,000 orders would take many minutes), and the summaries' shard rows are
    copied as they are into the moto tables; the measured order then goes through the DynamoDB
    read store on a counted client, as the projector sends it. The order is new to the measured
    projection, as to a projector that never saw it."""
    from orders_core.projections.registry import registration
    from orders_core.readmodels.dynamodb import DynamoDBReadStore
    from orders_core.readmodels.memory import InMemoryReadStore
    from orders_core.store.memory import InMemoryEventStore

    points = sorted({min(FIRST_POINT, orders), orders})
    commits = one_day_of_orders(orders, points)
    day = commits[0].metadata.recorded_at[:10]

    # The summaries the orders add to: the day's; every product's (the hot one is measured).
    def shard_keys(name: str, entity: str) -> list[str]:
        return [f"1#{entity}#{shard}" for shard in range(int(getattr(_model(name), "shards", 1)))]

    partitions = {
        "sales_analytics": shard_keys("sales_analytics", day),
        "product_sales": [
            key
            for product in (HOT_PRODUCT, *(f"sku-{p}" for p in range(PRODUCTS)))
            for key in shard_keys("product_sales", product)
        ],
    }
    measured = {
        "sales_analytics": shard_keys("sales_analytics", day),
        "product_sales": shard_keys("product_sales", HOT_PRODUCT),
    }
    events = InMemoryEventStore()  # never read: every order's first commit is in its batch
    figures: dict[str, list[dict[str, Any]]] = {}
    fill_seconds: dict[str, float] = {}
    for name in GROWTH_PROJECTIONS:
        table = create_table(registration(name).table.create_table_request(unique(f"bench-day-{name}")))
        memory = InMemoryReadStore()
        filler = registration(name).build(memory, events, 1)
        counted, meter = metered_client()
        measuring = registration(name).build(DynamoDBReadStore(counted, table), events, 1)
        figures[name] = []
        filled, filling = 0, 0.0
        for point in points:
            started = time.perf_counter()
            for start in range(filled, point - 1, PRELOAD_BATCH):
                if filler.process(commits[start : min(start + PRELOAD_BATCH, point - 1)]):
                    raise RuntimeError(f"{name} failed to fill the day")
            filling += time.perf_counter() - started
            _copy_partitions(memory, partitions[name], table)
            before = meter.snapshot()
            if measuring.process([commits[point - 1]]):
                raise RuntimeError(f"{name} failed on order {point}")
            spent = meter.snapshot() - before
            sizes = _partition_sizes(table)
            rows = [size for pk in measured[name] for size in sizes.get(pk, [])]
            figures[name].append(
                {
                    "order": point,
                    "cost": spent.to_json(),
                    # The measured summary's shard rows after the order (the sum readers add up)
                    "partition_rows": len(rows),
                    "partition_bytes": sum(rows),
                }
            )
            # The in-memory store catches up with the measured order at the next fill.
            filled = point - 1
        fill_seconds[name] = round(filling, 1)
    return {
        "orders": orders,
        "day": day,
        "hot_product": HOT_PRODUCT,
        "rows": {"sales_analytics": f"the day's sales ({day})", "product_sales": f"`{HOT_PRODUCT}`'s sales"},
        "points": figures,
        "fill_seconds": fill_seconds,
    }


def run(small: bool) -> dict[str, Any]:
    with in_process_moto():
        busy = measure(SMALL_ORDERS if small else FULL_ORDERS, BUSY_BATCH, BUSY_GAP_SECONDS, seed=3)
        quiet = measure(SMALL_QUIET_ORDERS if small else QUIET_ORDERS, QUIET_BATCH, QUIET_GAP_SECONDS, seed=5)
        growth = summary_growth(SMALL_DAY_ORDERS if small else FULL_DAY_ORDERS)
    return {"busy": busy, "quiet": quiet, "summary_growth": growth, "summary_shards": _summary_shards()}


def _summary_shards() -> dict[str, int]:
    """How many shard rows each summary is split over, per read model kept by deltas."""
    return {name: int(getattr(_model(name), "shards", 1)) for name in DELTA_MODULES}


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
