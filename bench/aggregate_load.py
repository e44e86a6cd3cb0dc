"""What it costs to load an order aggregate cold, with and without snapshots.

Builds orders of 10, 1,000 and 10,000 events on moto (in-process) through the real command
service, then loads each from a fresh service (an empty cache: a cold Lambda) and counts the
DynamoDB requests, the bytes of the items they return (DynamoDB's item-size rules, which is
what read capacity is billed on), and the local time. A benchmark, not a test: the request
and byte counts are the point; times are moto's on this machine and only show the trend.

    .venv/bin/python -m bench.aggregate_load            # full run, writes bench/results-aggregate-load.json
    .venv/bin/python -m bench.aggregate_load --small    # 10 and 250 events, nothing written

Beside each load: the naive baseline (`bench.naive`: the same events stored one item per event,
all of them queried) and the limit, one strongly consistent read of the current state (the
size of the snapshot item the state makes). Part of `python -m bench` (section 2).

The domain caps an order at 200 lines (about 400 events), so the long orders here are
synthetic: the only thing lifted is that cap. Every event is one the domain decides (an
AddItem is ItemAdded + InventoryReserved, as in production), and the snapshots are the
ones the command service writes on its own every 100 events.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from bench.capacity import Meter as CapacityMeter
from bench.capacity import read_units
from bench.naive import NaiveCommandService, NaiveEventStore, events_table_request
from orders_core.application import CommandContext, CommandService, snapshot_of
from orders_core.domain import orders
from orders_core.domain.aggregate import AggregateType
from orders_core.domain.events import DomainEvent
from orders_core.domain.orders import ORDER, AddItem, OrderLine, PlaceOrder, ShipOrder, ShippingAddress
from orders_core.envelope import envelopes_of, format_timestamp
from orders_core.snapshots.codec import snapshot_to_item
from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore
from orders_core.snapshots.port import Snapshot, SnapshotStore
from orders_core.store.codec import item_size
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import EVENTS, SNAPSHOTS

SIZES = (10, 100, 1_000, 10_000)
SMALL_SIZES = (10, 250)
SNAPSHOT_EVERY = 100
REGION = "us-east-1"
RESULTS = Path(__file__).with_name("results-aggregate-load.json")
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _decide_without_line_cap(state: orders.OrderState, command: orders.OrderCommand) -> Sequence[DomainEvent]:
    # An AddItem decided as on an order with no lines yet: the same events, without the 200-line cap.
    if isinstance(command, AddItem):
        return orders.decide(replace(state, lines=()), command)
    return orders.decide(state, command)


LONG_ORDER: AggregateType[orders.OrderState, orders.OrderCommand] = replace(
    ORDER, decide=_decide_without_line_cap
)


# How the load may use snapshots: not at all; the newest one (what a cold load does); or the
# one an interval older, the worst case: an order just short of its next snapshot.
NONE, NEWEST, OLDER = "no", "newest", "one interval older"
# The baseline: the same events stored one item per event, every one of them read.
NAIVE = "naive (item per event)"


class _NewestAtOrBefore:
    """The snapshot store as it was when the newest snapshot was `bound` (one request per read, too)."""

    def __init__(self, inner: DynamoDBSnapshotStore, bound: int) -> None:
        self._inner = inner
        self._bound = bound

    def save(self, snapshot: Snapshot) -> None:
        raise AssertionError("loads do not save snapshots")

    def latest(self, stream_id: str, *, at_or_before_version: int | None = None) -> Snapshot | None:
        bound = self._bound if at_or_before_version is None else min(self._bound, at_or_before_version)
        return self._inner.latest(stream_id, at_or_before_version=bound)

    def latest_recorded_by(self, stream_id: str, recorded_at: str) -> Snapshot | None:
        raise AssertionError("not used by loads")


@dataclass(frozen=True)
class Measurement:
    events: int
    snapshots: str  # NONE, NEWEST or OLDER
    requests: dict[str, int]
    total_requests: int
    bytes_read: int
    milliseconds: float
    snapshot_version: int  # where folding started (0: from the first event)
    events_folded: int
    read_units: float = 0.0  # strongly consistent, by DynamoDB's rules (bench.capacity)
    state_bytes: int = 0  # the limit: one read of the current state (its snapshot item)

    @property
    def limit_read_units(self) -> float:
        return read_units(self.state_bytes, consistent=True)


class Meter:
    """Counts the requests a client sends, the bytes of the items DynamoDB returns to it (its
    item-size rules) and the read units they cost (bench.capacity)."""

    def __init__(self, client: Any) -> None:
        self._meter = CapacityMeter(client, _client())

    @property
    def requests(self) -> Counter[str]:
        return self._meter.cost.requests

    @property
    def bytes_read(self) -> int:
        return self._meter.cost.bytes_read

    @property
    def read_units(self) -> float:
        return self._meter.cost.read_units


def _client() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def _context(n: int) -> CommandContext:
    command_id = f"bench-{n}-{uuid.uuid4()}"
    # A second per command: non-decreasing times, as in production.
    recorded_at = format_timestamp(START + timedelta(seconds=n))
    return CommandContext(
        command_id=command_id, correlation_id=command_id, actor="bench", recorded_at=recorded_at
    )


def build_order(service: CommandService, events: int) -> str:
    """An order of exactly `events` events: placed (3), items added (2 each), shipped (1)."""
    if events < 4 or events % 2:
        raise ValueError("an order here has 3 + 2k + 1 events: an even number of at least 4")
    order_id = str(uuid.uuid4())
    address = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
    place = PlaceOrder(order_id, "bench-customer", (OrderLine("sku-0", 1, Decimal("9.99")),), address)
    service.execute(LONG_ORDER, order_id, place, _context(0), expect_new=True)
    for n in range(1, (events - 4) // 2 + 1):
        line = OrderLine(f"sku-{n % 500}", 1 + n % 3, Decimal("4.50"))
        service.execute(LONG_ORDER, order_id, AddItem(order_id, "bench-customer", line), _context(n))
    service.execute(LONG_ORDER, order_id, ShipOrder(order_id, "TRACK-1"), _context(events))
    return order_id


def _snapshot_store(client: Any, table: str, mode: str, bound: int) -> SnapshotStore | None:
    if mode == NONE:
        return None
    store = DynamoDBSnapshotStore(client, table)
    return store if mode == NEWEST else _NewestAtOrBefore(store, bound)


def measure(
    events_table: str,
    snapshots_table: str,
    order_id: str,
    events: int,
    *,
    mode: str,
    snapshot_version: int,
    repeat: int,
) -> Measurement:
    runs = []
    for _ in range(repeat):
        client = _client()
        meter = Meter(client)
        service = CommandService(
            DynamoDBEventStore(client, events_table),
            snapshots=_snapshot_store(client, snapshots_table, mode, snapshot_version),
            snapshot_every={"order": SNAPSHOT_EVERY},
        )
        started = time.perf_counter()
        loaded = service.load(ORDER, order_id)
        runs.append(((time.perf_counter() - started) * 1000, meter, loaded))
    milliseconds = statistics.median(ms for ms, _, _ in runs)
    _, meter, loaded = runs[-1]
    if loaded.version != events:
        raise AssertionError(f"loaded version {loaded.version}, expected {events}")
    stream_id = ORDER.stream_id(order_id)
    return Measurement(
        events=events,
        snapshots=mode,
        requests=dict(meter.requests),
        total_requests=sum(meter.requests.values()),
        bytes_read=meter.bytes_read,
        milliseconds=round(milliseconds, 1),
        snapshot_version=snapshot_version,
        events_folded=events - snapshot_version,
        read_units=meter.read_units,
        state_bytes=item_size(snapshot_to_item(snapshot_of(ORDER, stream_id, loaded))),
    )


def measure_naive(
    events_table: str, order_id: str, events: int, *, state_bytes: int, repeat: int
) -> Measurement:
    """The same order stored one item per event (a table of its own), loaded by reading them all."""
    client = _client()
    naive_table = f"bench-naive-{uuid.uuid4().hex[:8]}"
    client.create_table(**events_table_request(naive_table))
    commits = DynamoDBEventStore(client, events_table).read_commits(ORDER.stream_id(order_id))
    NaiveEventStore(client, naive_table).seed(envelopes_of(commits))
    runs = []
    for _ in range(repeat):
        counted = _client()
        meter = Meter(counted)
        service = NaiveCommandService(NaiveEventStore(counted, naive_table))
        started = time.perf_counter()
        _, history = service.load(ORDER, order_id)
        runs.append(((time.perf_counter() - started) * 1000, meter, history))
    _, meter, history = runs[-1]
    if len(history) != events:
        raise AssertionError(f"naive load read {len(history)} events, expected {events}")
    client.delete_table(TableName=naive_table)  # keep moto's tables small
    return Measurement(
        events=events,
        snapshots=NAIVE,
        requests=dict(meter.requests),
        total_requests=sum(meter.requests.values()),
        bytes_read=meter.bytes_read,
        milliseconds=round(statistics.median(ms for ms, _, _ in runs), 1),
        snapshot_version=0,
        events_folded=events,
        read_units=meter.read_units,
        state_bytes=state_bytes,
    )


def run(sizes: Sequence[int] = SIZES, *, repeat: int = 3, naive: bool = True) -> list[Measurement]:
    """Needs DynamoDB to talk to: moto's mock (as `main` sets up) or an endpoint."""
    client = _client()
    suffix = uuid.uuid4().hex[:8]
    events_table, snapshots_table = f"bench-events-{suffix}", f"bench-snapshots-{suffix}"
    client.create_table(**EVENTS.create_table_request(events_table))
    client.create_table(**SNAPSHOTS.create_table_request(snapshots_table))
    writer = CommandService(
        DynamoDBEventStore(client, events_table),
        snapshots=DynamoDBSnapshotStore(client, snapshots_table),
        snapshot_every={"order": SNAPSHOT_EVERY},
    )
    snapshots = DynamoDBSnapshotStore(client, snapshots_table)
    results = []
    for events in sizes:
        order_id = build_order(writer, events)
        stream_id = ORDER.stream_id(order_id)
        newest = snapshots.latest(stream_id)
        older = snapshots.latest(stream_id, at_or_before_version=newest.version - 1) if newest else None
        modes = [(NONE, 0), (NEWEST, newest.version if newest else 0)]
        if newest is not None and older is not None:
            modes.append((OLDER, older.version))
        for mode, version in modes:
            results.append(
                measure(
                    events_table,
                    snapshots_table,
                    order_id,
                    events,
                    mode=mode,
                    snapshot_version=version,
                    repeat=repeat,
                )
            )
        if naive:
            state_bytes = results[-1].state_bytes
            results.append(
                measure_naive(events_table, order_id, events, state_bytes=state_bytes, repeat=repeat)
            )
    return results


def table(results: Sequence[Measurement]) -> str:
    lines = [
        "| Events | Snapshots | Requests | Bytes read | Folded from | Local time (moto) |",
        "|---:|---|---|---:|---|---:|",
    ]
    # Only the count-and-bytes columns, as before; `python -m bench` renders read units and limits.
    for m in results:
        requests = ", ".join(f"{count} {name}" for name, count in sorted(m.requests.items()))
        start = f"snapshot at {m.snapshot_version:,}" if m.snapshot_version else "event 1"
        lines.append(
            f"| {m.events:,} | {m.snapshots} | {m.total_requests} ({requests}) "
            f"| {m.bytes_read:,} | {start} ({m.events_folded:,} events) | {m.milliseconds:,.1f} ms |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--small", action="store_true", help=f"orders of {SMALL_SIZES} events; writes nothing"
    )
    parser.add_argument("--output", type=Path, default=None, help=f"JSON results (default: {RESULTS.name})")
    args = parser.parse_args(argv)

    # Never reach AWS: moto in this process, fake credentials.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ[name] = value
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    from moto import mock_aws

    with mock_aws():
        started = time.perf_counter()
        results = run(SMALL_SIZES if args.small else SIZES)
        elapsed = time.perf_counter() - started
    print(table(results))
    print(f"\nsnapshot every {SNAPSHOT_EVERY} events; moto {_moto_version()}; {elapsed:.0f} s in all")
    output = args.output or (None if args.small else RESULTS)
    if output is not None:
        document = {
            "snapshot_every": SNAPSHOT_EVERY,
            "moto": _moto_version(),
            "seconds": round(elapsed, 1),
            "results": [{**asdict(m), "limit_read_units": m.limit_read_units} for m in results],
        }
        output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {output}")
    return 0


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


if __name__ == "__main__":
    sys.exit(main())
