"""Requests and capacity per command: ours, the naive baseline, and the physical limit.

Each scenario runs the real command service on moto (in-process) with a counted client, and
the naive service (`bench.naive`: one item per event, a transaction per command, the whole
stream loaded every time) on the same moto with the same history. Capacity is computed from
item sizes by DynamoDB's rules (`bench.capacity`). The limit is one write request of the
command's commit, ``ceil(commit bytes / 1 KB)`` write units, and no read.

    .venv/bin/python -m bench.command_cost [--small] [--json PATH]
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from bench.capacity import Cost, write_units
from bench.common import (
    client,
    create_table,
    in_process_moto,
    metered_client,
    section_main,
    timestamp,
    unique,
)
from bench.naive import NaiveCommandService, NaiveEventStore, events_table_request
from orders_core.application import CommandContext, CommandService
from orders_core.domain import orders
from orders_core.domain.aggregate import AggregateType
from orders_core.domain.events import DomainEvent
from orders_core.domain.orders import AddItem, OrderLine, PlaceOrder, ShippingAddress
from orders_core.envelope import envelopes_of
from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore
from orders_core.store.codec import commit_to_item, item_size
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import EVENTS, SNAPSHOTS

SNAPSHOT_EVERY = 100
TYPICAL_ADDS = 3  # a placed order with three items added: 9 events in 4 commits
LONG_EVENTS, SMALL_LONG_EVENTS = 1_001, 251
ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
CUSTOMER = "3f6c1a52-0b7e-4d1f-9a43-7d2e5c8b9f10"  # a Cognito sub


def _decide_without_line_cap(state: orders.OrderState, command: orders.OrderCommand) -> Sequence[DomainEvent]:
    if isinstance(command, AddItem):
        return orders.decide(replace(state, lines=()), command)
    return orders.decide(state, command)


# Long orders are synthetic: only the 200-line cap is lifted (as in bench.aggregate_load).
ORDER: AggregateType[orders.OrderState, orders.OrderCommand] = replace(
    orders.ORDER, decide=_decide_without_line_cap
)


class Clock:
    def __init__(self) -> None:
        self.n = 0

    def context(self, label: str = "bench") -> CommandContext:
        """Ids shaped as the API makes them: uuids, a Cognito sub, a SHA-256 request fingerprint."""
        self.n += 1
        command_id = str(uuid.uuid4())
        return CommandContext(
            command_id=command_id,
            correlation_id=str(uuid.uuid4()),
            actor=CUSTOMER,
            recorded_at=timestamp(self.n),
            fingerprint=hashlib.sha256(f"{label}-{command_id}".encode()).hexdigest(),
        )


def place(order_id: str) -> PlaceOrder:
    lines = (OrderLine("sku-espresso", 2, Decimal("12.50")), OrderLine("sku-filter", 1, Decimal("4.00")))
    return PlaceOrder(order_id, CUSTOMER, lines, ADDRESS)


def add_item(order_id: str, n: int) -> AddItem:
    return AddItem(order_id, CUSTOMER, OrderLine(f"sku-{n % 50}", 1 + n % 3, Decimal("7.25")))


@dataclass
class Stores:
    events: str
    snapshots: str
    naive: str


class World:
    """Tables on one moto, a writer to build histories, and counted services to measure."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.plain = client()
        self.tables = Stores(
            events=create_table(EVENTS.create_table_request(unique("bench-events"))),
            snapshots=create_table(SNAPSHOTS.create_table_request(unique("bench-snapshots"))),
            naive=create_table(events_table_request(unique("bench-naive"))),
        )
        self.writer = self.service(self.plain, snapshots=True)

    def service(self, dynamodb: Any, *, snapshots: bool) -> CommandService:
        return CommandService(
            DynamoDBEventStore(dynamodb, self.tables.events),
            snapshots=DynamoDBSnapshotStore(dynamodb, self.tables.snapshots) if snapshots else None,
            snapshot_every={"order": SNAPSHOT_EVERY},
        )

    def order(self, events: int) -> str:
        """A placed order of exactly `events` events (3 + 2 per item added), written by ours."""
        if events < 3 or (events - 3) % 2:
            raise ValueError("an order here has 3 + 2k events")
        order_id = str(uuid.uuid4())
        self.writer.execute(ORDER, order_id, place(order_id), self.clock.context(), expect_new=True)
        for n in range((events - 3) // 2):
            self.writer.execute(ORDER, order_id, add_item(order_id, n), self.clock.context())
        return order_id

    def naive_copy(self, order_id: str) -> None:
        """The same history in the naive table, one item per event (set-up, not measured)."""
        commits = DynamoDBEventStore(self.plain, self.tables.events).read_commits(ORDER.stream_id(order_id))
        NaiveEventStore(self.plain, self.tables.naive).seed(envelopes_of(commits))

    def commit_bytes(self, order_id: str, first_version: int) -> tuple[int, int]:
        """The commit item's size, and its size with the events compressed (the limit's item)."""
        store = DynamoDBEventStore(self.plain, self.tables.events)
        commit = store.read_commit(ORDER.stream_id(order_id), first_version)
        assert commit is not None, "the measured command wrote no commit"
        item = commit_to_item(commit)
        compressed = {**item, "events": {"B": zlib.compress(item["events"]["S"].encode(), 9)}}
        return item_size(item), item_size(compressed)


@dataclass
class Scenario:
    id: str
    label: str
    stream_events: int  # events in the stream before the command
    ours: Cost
    naive: Cost
    sizes: tuple[int, int]  # the commit item's bytes; the same with its events compressed
    ours_note: str = ""

    def to_json(self) -> dict[str, Any]:
        commit_bytes, compressed_bytes = self.sizes
        # The limit: the command's commit in one write, events compressed, nothing read.
        limit = Cost(write_units=float(write_units(compressed_bytes)), bytes_written=compressed_bytes)
        limit.requests["PutItem"] = 1
        return {
            "id": self.id,
            "label": self.label,
            "stream_events": self.stream_events,
            "commit_bytes": commit_bytes,
            "compressed_commit_bytes": compressed_bytes,
            "ours": self.ours.to_json(),
            "naive": self.naive.to_json(),
            "limit": limit.to_json(),
            "note": self.ours_note,
        }


def _measure(action: Callable[[Any], None], *, snapshots: bool, world: World) -> Cost:
    counted, meter = metered_client()
    service = world.service(counted, snapshots=snapshots)
    action(service)
    return meter.reset()


def _naive(world: World, order_id: str | None, command: Callable[[str], Any], **kwargs: Any) -> Cost:
    counted, meter = metered_client()
    service = NaiveCommandService(NaiveEventStore(counted, world.tables.naive))
    target = order_id or str(uuid.uuid4())
    result = service.execute(ORDER, target, command(target), world.clock.context("naive"), **kwargs)
    assert not result.replayed
    return meter.reset()


def new_order(world: World) -> Scenario:
    order_id = str(uuid.uuid4())

    def act(service: CommandService) -> None:
        service.execute(ORDER, order_id, place(order_id), world.clock.context(), expect_new=True)

    ours = _measure(act, snapshots=True, world=world)
    return Scenario(
        "new_order",
        "New order (PlaceOrder, 3 events)",
        0,
        ours,
        _naive(world, None, place),
        world.commit_bytes(order_id, 1),
    )


def warm(world: World, *, stream_events: int, scenario_id: str, label: str, note: str = "") -> Scenario:
    """A command on an aggregate the function instance has in its cache."""
    order_id = world.order(stream_events)
    world.naive_copy(order_id)
    counted, meter = metered_client()
    service = world.service(counted, snapshots=True)
    service.load(ORDER, order_id)  # the instance saw this order before: its cache is warm
    meter.reset()
    service.execute(ORDER, order_id, add_item(order_id, 99), world.clock.context())
    ours = meter.reset()
    return Scenario(
        scenario_id,
        label,
        stream_events,
        ours,
        _naive(world, order_id, lambda o: add_item(o, 98)),
        world.commit_bytes(order_id, stream_events + 1),
        note,
    )


def cold(world: World, *, stream_events: int, snapshots: bool, scenario_id: str, label: str) -> Scenario:
    """A command on an aggregate this instance has never seen (a cold start, or an evicted entry)."""
    order_id = world.order(stream_events)
    world.naive_copy(order_id)

    def act(service: CommandService) -> None:
        service.execute(ORDER, order_id, add_item(order_id, 99), world.clock.context())

    ours = _measure(act, snapshots=snapshots, world=world)
    return Scenario(
        scenario_id,
        label,
        stream_events,
        ours,
        _naive(world, order_id, lambda o: add_item(o, 98)),
        world.commit_bytes(order_id, stream_events + 1),
    )


def conflict(world: World) -> Scenario:
    """Two instances hold the order warm; one writes; the other's command meets the conflict,
    reads what it missed and writes again."""
    events = 3 + 2 * TYPICAL_ADDS
    order_id = world.order(events)
    world.naive_copy(order_id)
    counted, meter = metered_client()
    loser = world.service(counted, snapshots=True)
    loser.load(ORDER, order_id)
    world.writer.execute(ORDER, order_id, add_item(order_id, 50), world.clock.context())  # the winner
    meter.reset()
    loser.execute(ORDER, order_id, add_item(order_id, 51), world.clock.context())
    ours = meter.reset()

    # The naive loser loads, the winner commits, then the loser's transaction is cancelled.
    winner = NaiveCommandService(NaiveEventStore(world.plain, world.tables.naive))

    def interleave() -> None:
        winner.execute(ORDER, order_id, add_item(order_id, 52), world.clock.context("naive-winner"))

    naive = _naive(world, order_id, lambda o: add_item(o, 53), between_load_and_append=interleave)
    return Scenario(
        "conflict",
        f"Conflict and retry ({events + 2}-event order, stale warm cache)",
        events + 2,
        ours,
        naive,
        world.commit_bytes(order_id, events + 3),
    )


def run(small: bool) -> dict[str, Any]:
    long_events = SMALL_LONG_EVENTS if small else LONG_EVENTS
    typical = 3 + 2 * TYPICAL_ADDS
    with in_process_moto():
        world = World()
        scenarios = [
            new_order(world),
            warm(
                world,
                stream_events=typical,
                scenario_id="warm",
                label=f"Warm aggregate (AddItem on a {typical}-event order in the cache)",
            ),
            warm(
                world,
                stream_events=SNAPSHOT_EVERY - 1,
                scenario_id="warm_snapshot_due",
                label=f"Warm, crossing a snapshot interval (event {SNAPSHOT_EVERY})",
                note=f"once every {SNAPSHOT_EVERY} events",
            ),
            cold(
                world,
                stream_events=typical,
                snapshots=False,
                scenario_id="cold",
                label=f"Cold aggregate, {typical}-event order, no snapshots",
            ),
            cold(
                world,
                stream_events=typical,
                snapshots=True,
                scenario_id="cold_snapshots_none_yet",
                label=f"Cold aggregate, {typical}-event order, snapshots on (none yet)",
            ),
            cold(
                world,
                stream_events=long_events,
                snapshots=False,
                scenario_id="cold_long",
                label=f"Cold aggregate, {long_events:,}-event stream, no snapshots",
            ),
            cold(
                world,
                stream_events=long_events,
                snapshots=True,
                scenario_id="cold_long_snapshot",
                label=f"Cold aggregate, {long_events:,}-event stream, with a snapshot",
            ),
            conflict(world),
        ]
    return {"snapshot_every": SNAPSHOT_EVERY, "scenarios": [s.to_json() for s in scenarios]}


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
