"""Publishing the events stream on the bus (the in-memory bus): entries, requests, retries, order.

Given commits as the stream delivers them, when the publisher handles a batch, then every order and
product event is an entry with its Detail, in version order, in requests within PutEvents' limits;
refused entries are sent again, and what still fails goes back to the stream from the first
record that failed."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from integration_publisher.handler import handle_stream

from orders_core.application import CommandContext, CommandService
from orders_core.domain.inventory import PRODUCT, ReceiveStock, SetReorderLevel
from orders_core.domain.orders import ORDER, AddItem, CancelOrder, OrderLine, PlaceOrder, ShippingAddress
from orders_core.envelope import Commit, CommitMetadata, EventEnvelope, NewEvent
from orders_core.integration.events import (
    MAX_REQUEST_BYTES,
    BusEntry,
    UnpublishableEvent,
    entry_of,
    requests_of,
)
from orders_core.integration.memory import InMemoryEventBus
from orders_core.integration.publisher import EntriesNotPublished, HeldBack, IntegrationPublisher
from orders_core.projections.live import MARKER_EVENT, MARKER_STREAM_PREFIX
from orders_core.store.memory import InMemoryEventStore
from tests.support.apigw import FakeLambdaContext
from tests.support.delivery import stream_records

ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")


def context(number: int, minute: int = 0) -> CommandContext:
    return CommandContext(
        f"cmd-{number}", f"corr-{number}", "alice", f"2026-11-29T10:{minute:02d}:00.000000Z"
    )


def history() -> list[Commit]:
    """Two orders and a product, as the command service stores them."""
    store = InMemoryEventStore()
    service = CommandService(store)
    line = OrderLine("sku-1", 2, Decimal("12.50"))
    service.execute(ORDER, "o-1", PlaceOrder("o-1", "alice", (line,), ADDRESS), context(1, 1))
    service.execute(PRODUCT, "sku-1", ReceiveStock("sku-1", 10), context(2, 2))
    service.execute(ORDER, "o-1", AddItem("o-1", "alice", line), context(3, 3))
    service.execute(ORDER, "o-2", PlaceOrder("o-2", "alice", (line,), ADDRESS), context(4, 4))
    service.execute(ORDER, "o-1", CancelOrder("o-1", "alice", False, "changed my mind"), context(5, 5))
    service.execute(PRODUCT, "sku-1", SetReorderLevel("sku-1", 3), context(6, 6))
    commits = [c for stream in store.stream_ids() for c in store.read_commits(stream)]
    return sorted(commits, key=lambda c: c.metadata.recorded_at)


def details(bus: InMemoryEventBus) -> list[dict[str, Any]]:
    return [json.loads(entry.detail) for entry in bus.published]


def publisher(bus: InMemoryEventBus, pauses: list[float] | None = None) -> IntegrationPublisher:
    return IntegrationPublisher(bus, sleep=(pauses if pauses is not None else []).append)


def test_every_event_becomes_an_entry_with_its_detail() -> None:
    # Given the stream's records of a history
    commits = history()
    bus = InMemoryEventBus()
    # When one batch is published
    outcome = publisher(bus).publish_records(stream_records(commits))
    # Then every event went out once, as an entry of source orders typed by the event
    envelopes = [e for c in commits for e in c.envelopes()]
    assert outcome.failures == {}
    assert outcome.published == len(envelopes) == len(bus.published)
    assert outcome.commits == len(commits)
    first: EventEnvelope = envelopes[0]
    entry = bus.published[0]
    assert (entry.source, entry.detail_type) == ("orders", "OrderPlaced")
    assert entry.time == datetime(2026, 11, 29, 10, 1, tzinfo=UTC)
    assert json.loads(entry.detail) == {
        "event_id": first.event_id,
        "stream_id": "order-o-1",
        "version": 1,
        "schema_version": 1,
        "recorded_at": "2026-11-29T10:01:00.000000Z",
        "correlation_id": "corr-1",
        "data": dict(first.data),
    }
    # And neither the actor nor the command id leaves the service
    assert all(
        set(d) == {*first.to_json(), "data"} - {"type", "causation_id", "command_id", "actor"}
        for d in details(bus)
    )
    assert [d["event_id"] for d in details(bus)] == [e.event_id for e in envelopes]
    assert {e.detail_type for e in bus.published} == {
        "OrderPlaced",
        "InventoryReserved",
        "PaymentRequested",
        "ItemAdded",
        "OrderCancelled",
        "InventoryReleased",
        "StockReceived",
        "ReorderLevelSet",
    }


def test_events_go_out_in_stream_order() -> None:
    commits = history()
    bus = InMemoryEventBus()
    publisher(bus).publish_records(stream_records(commits))
    seen: dict[str, int] = {}
    for detail in details(bus):
        # Each stream's versions follow one another, without a gap.
        assert detail["version"] == seen.get(detail["stream_id"], 0) + 1
        seen[detail["stream_id"]] = detail["version"]


def test_a_stored_old_version_is_published_in_the_current_one() -> None:
    # Given an ItemAdded stored at schema version 1 (before line_total and currency)
    v1 = {"order_id": "o-9", "product_id": "sku-1", "quantity": 2, "unit_price": "12.50"}
    commit = Commit(
        "order-o-9",
        4,
        (NewEvent("ItemAdded", v1, schema_version=1, event_id="e-old"),),
        CommitMetadata("c", "corr", "cause", "alice", "2025-01-02T03:04:05.000000Z"),
    )
    bus = InMemoryEventBus()
    publisher(bus).publish_records(stream_records([commit]))
    (detail,) = details(bus)
    # Then it is published upcast to v3, under the same event id
    assert detail["event_id"] == "e-old"
    assert detail["schema_version"] == 3
    assert detail["data"] == {**v1, "line_total": "25.00", "currency": "EUR"}


def test_requests_hold_at_most_ten_entries() -> None:
    # Given 14 new orders in one batch: 42 events (OrderPlaced, InventoryReserved, PaymentRequested)
    placed = history()[0]
    commits = [replace(placed, stream_id=f"order-o-{n}") for n in range(14)]
    bus = InMemoryEventBus()
    outcome = publisher(bus).publish_records(stream_records(commits))
    assert outcome.published == 42 == len(bus.published)
    # Then they went out in full requests of ten, and the rest
    assert bus.requests == [10, 10, 10, 10, 2]


def test_a_request_never_holds_two_commits_of_one_stream() -> None:
    # Given an order placed and an item added to it in the same batch
    commits = history()[:3]  # order o-1 placed, stock received, an item added to o-1
    bus = InMemoryEventBus()
    publisher(bus).publish_records(stream_records(commits))
    # Then the item's commit waits for the next request: if the bus refused part of the first,
    # it could not go out past the gap
    assert bus.requests == [4, 2]
    assert [e.detail_type for e in bus.published] == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentRequested",
        "StockReceived",
        "ItemAdded",
        "InventoryReserved",
    ]


def test_ten_of_the_largest_orders_fit_one_request() -> None:
    # Given ten of the largest orders the domain takes (200 lines, the longest product ids, the
    # largest quantities and prices): their OrderPlaced events together still fit one request
    store = InMemoryEventStore()
    service = CommandService(store)
    lines = tuple(OrderLine(f"{n:03d}".rjust(64, "x"), 10_000, Decimal("99999.99")) for n in range(200))
    for n in range(10):
        service.execute(ORDER, f"o-{n}", PlaceOrder(f"o-{n}", "alice", lines, ADDRESS), context(n))
    commits = [c for stream in store.stream_ids() for c in store.read_commits(stream)]
    placed = [e for c in commits for e in c.envelopes() if e.type == "OrderPlaced"]
    assert 200_000 < sum(entry_of(e).size for e in placed) <= MAX_REQUEST_BYTES


def test_requests_stay_under_256_kb() -> None:
    # Given ten events of 30 KB each (a cancellation reason is bounded by the command, not the event:
    # an event's size is only bounded by the commit's 400 KB): over the 256 KB a request takes
    metadata = history()[0].metadata
    commits = [
        Commit(
            f"order-o-{n}",
            5,
            (NewEvent("OrderCancelled", {"order_id": f"o-{n}", "reason": "r" * 30_000}),),
            metadata,
        )
        for n in range(10)
    ]
    entries = [entry_of(e) for c in commits for e in c.envelopes()]
    assert sum(e.size for e in entries) > MAX_REQUEST_BYTES
    bus = InMemoryEventBus()
    # When they are published (the bus refuses any request over the limits)
    outcome = publisher(bus).publish_records(stream_records(commits))
    # Then every event went out, in order, in requests under the limit
    assert outcome.failures == {}
    assert [json.loads(e.detail)["stream_id"] for e in bus.published] == [c.stream_id for c in commits]
    assert bus.requests == [8, 2]


def test_requests_of_splits_by_count_and_size() -> None:
    def entry(size: int) -> BusEntry:
        detail = "x" * (size - 14 - len("orders") - len("T"))
        return BusEntry("orders", "T", detail, datetime(2026, 1, 1, tzinfo=UTC))

    assert entry(1000).size == 1000
    assert requests_of([entry(1000)] * 23) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    quarter = MAX_REQUEST_BYTES // 4
    assert requests_of([entry(quarter)] * 5) == [[0, 1, 2, 3], [4]]
    assert requests_of([entry(quarter + 1)] * 4) == [[0, 1, 2], [3]]
    assert requests_of([]) == []
    # A stream's second commit starts a request; another stream's commit does not
    commits = [("s-1", 1), ("s-1", 1), ("s-2", 4), ("s-1", 3), ("s-2", 4)]
    assert requests_of([entry(10)] * 5, commits) == [[0, 1, 2], [3, 4]]


def test_an_event_too_large_for_any_request_is_refused() -> None:
    envelope = next(e for c in history() for e in c.envelopes())
    huge = replace(envelope, data={"note": "x" * MAX_REQUEST_BYTES})
    with pytest.raises(UnpublishableEvent, match="over PutEvents' 262144 bytes"):
        entry_of(huge)


def failing(
    event_type: str, times: int, code: str = "ThrottlingException"
) -> Callable[[BusEntry], str | None]:
    """Refuse every entry of `event_type` the first `times` times it is sent."""
    sent = {"count": 0}

    def fault(entry: BusEntry) -> str | None:
        if entry.detail_type != event_type:
            return None
        sent["count"] += 1
        return code if sent["count"] <= times else None

    return fault


def test_a_refused_entry_is_sent_again_until_the_bus_takes_it() -> None:
    # Given a bus that refuses the ItemAdded twice (FailedEntryCount, an ErrorCode per entry)
    commits = history()
    bus = InMemoryEventBus()
    bus.entry_fault = failing("ItemAdded", times=2)
    pauses: list[float] = []
    # When the batch is published
    outcome = publisher(bus, pauses).publish_records(stream_records(commits))
    # Then it was sent again after growing pauses, and everything went out once
    assert outcome.failures == {}
    assert outcome.resent == 2
    assert pauses == [0.2, 0.4]
    assert sorted(d["event_id"] for d in details(bus)) == sorted(
        e.event_id for c in commits for e in c.envelopes()
    )


def test_an_entry_refused_every_time_sends_its_record_and_the_later_ones_back() -> None:
    # Given a bus that always refuses ItemAdded (the third commit's first event)
    commits = history()
    records = stream_records(commits)
    bus = InMemoryEventBus()
    bus.entry_fault = failing("ItemAdded", times=1_000, code="InternalFailure")
    pauses: list[float] = []
    outcome = publisher(bus, pauses).publish_records(records)
    # Then its record and every later one are reported failed, from that record on
    failed = [r["dynamodb"]["SequenceNumber"] for r in records[2:]]
    assert list(outcome.failures) == failed
    assert outcome.first_failed == failed[0]
    assert isinstance(outcome.failures[failed[0]], EntriesNotPublished)
    assert "InternalFailure" in str(outcome.failures[failed[0]])
    assert all(isinstance(outcome.failures[s], HeldBack) for s in failed[1:])
    assert len(pauses) == 2  # three attempts
    # And the records before it went out whole
    assert outcome.commits == 2
    before = {e.event_id for c in commits[:2] for e in c.envelopes()}
    assert before <= {d["event_id"] for d in details(bus)}


def test_a_bus_out_of_reach_sends_the_whole_batch_back() -> None:
    records = stream_records(history())
    bus = InMemoryEventBus()
    bus.outages = 3
    outcome = publisher(bus).publish_records(records)
    assert list(outcome.failures) == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert bus.published == []
    # A short outage is ridden out within the batch
    bus.outages = 2
    assert publisher(bus).publish_records(records).failures == {}


def test_an_unreadable_record_holds_back_itself_and_the_later_ones() -> None:
    # Given a commit of an event type this code does not know (newer code wrote it)
    commits = history()
    unknown = Commit(
        "order-o-1", 99, (NewEvent("OrderTeleported", {"order_id": "o-1"}),), commits[0].metadata
    )
    records = stream_records([*commits[:3], unknown, *commits[3:]])
    bus = InMemoryEventBus()
    outcome = publisher(bus).publish_records(records)
    # Then the three before it went out, and it and the rest go back to the stream
    assert list(outcome.failures) == [r["dynamodb"]["SequenceNumber"] for r in records[3:]]
    assert "OrderTeleported" in str(outcome.first_failure)
    assert len(bus.published) == sum(len(c.events) for c in commits[:3])


def test_what_is_not_an_order_or_product_event_stays_inside() -> None:
    # A rebuild's catch-up marker, and stream records that add no commit
    marker = Commit(
        f"{MARKER_STREAM_PREFIX}r-1",
        1,
        (NewEvent(MARKER_EVENT, {"rebuild_id": "r-1", "projection": "inventory"}),),
        history()[0].metadata,
    )
    records = stream_records([marker, *history()[:1]])
    modify = {**records[1], "eventName": "MODIFY"}
    modify["dynamodb"] = {**records[1]["dynamodb"], "SequenceNumber": "9" * 21}
    bus = InMemoryEventBus()
    outcome = publisher(bus).publish_records([*records, modify])
    assert outcome.failures == {}
    assert [e.detail_type for e in bus.published] == ["OrderPlaced", "InventoryReserved", "PaymentRequested"]


def test_the_handler_reports_the_records_to_deliver_again() -> None:
    records = stream_records(history())
    bus = InMemoryEventBus()
    bus.entry_fault = failing("ItemAdded", times=1_000)
    target = IntegrationPublisher(bus, sleep=lambda _: None)
    response = handle_stream({"Records": records}, FakeLambdaContext(), target)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records[2:]]
    }
    # A batch that fails whole is reported, not raised: Lambda retries it from its first record
    bus.outages = 10
    response = handle_stream({"Records": records}, FakeLambdaContext(), target)
    assert len(response["batchItemFailures"]) == len(records)
    bus.outages = 0
    bus.entry_fault = None
    assert handle_stream({"Records": records}, FakeLambdaContext(), target) == {"batchItemFailures": []}


@pytest.mark.parametrize("seed", range(6))
def test_delivered_as_lambda_does_every_event_goes_out_at_least_once_and_never_past_a_gap(seed: int) -> None:
    # Given a long history and a bus that refuses one entry in four, at random
    rng = random.Random(seed)
    commits = [replace(c, stream_id=f"{c.stream_id}-{n}") for n in range(4) for c in history()]
    rng.shuffle(commits)  # streams interleave; each stream's commits stay in order below
    commits.sort(key=lambda c: (c.stream_id, c.first_version))
    rng.shuffle(commits)
    order: dict[str, list[Commit]] = {}
    for commit in commits:
        order.setdefault(commit.stream_id, []).append(commit)
    for stream in order.values():
        stream.sort(key=lambda c: c.first_version)
    interleaved = _interleave(list(order.values()), rng)
    records = stream_records(interleaved)
    bus = InMemoryEventBus()
    bus.entry_fault = lambda entry: "ThrottlingException" if rng.random() < 0.25 else None
    target = IntegrationPublisher(bus, attempts=2, sleep=lambda _: None)
    # When Lambda delivers batches of random size, each again from its first reported failure
    position = invocations = 0
    while position < len(records):
        invocations += 1
        assert invocations < 2_000, "delivery did not converge"
        batch = records[position : position + rng.randint(1, 10)]
        response = handle_stream({"Records": batch}, FakeLambdaContext(), target)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        done = next((n for n, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed), len(batch))
        position += done
    # Then every event went out at least once
    expected = {e.event_id for c in interleaved for e in c.envelopes()}
    published = details(bus)
    assert {d["event_id"] for d in published} == expected
    # And no commit's events went out before every event of the earlier commits of its stream had
    # (within one request, an entry the bus refused goes out again after the ones it took)
    first_version = {e.event_id: c.first_version for c in interleaved for e in c.envelopes()}
    seen: dict[str, set[int]] = {}
    for detail in published:
        versions = seen.setdefault(detail["stream_id"], set())
        assert set(range(1, first_version[detail["event_id"]])) <= versions, detail
        versions.add(detail["version"])


def _interleave(streams: list[list[Commit]], rng: random.Random) -> list[Commit]:
    """Merge streams at random, keeping each stream's own order (as shards do)."""
    merged: list[Commit] = []
    pending = [list(s) for s in streams if s]
    while pending:
        stream = rng.choice(pending)
        merged.append(stream.pop(0))
        pending = [s for s in pending if s]
    return merged
