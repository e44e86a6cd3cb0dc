"""Snapshots on the write side (DynamoDB on moto): when they are written, what a load costs with them,
and that neither idempotency nor correctness depends on them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from orders_core.application import CommandService, snapshot_of
from orders_core.domain.inventory import PRODUCT, ReceiveStock
from orders_core.domain.orders import ORDER, AddItem, OrderLine, OrderState, order_state_to_snapshot
from orders_core.envelope import CommitMetadata, NewEvent
from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore
from orders_core.snapshots.memory import InMemorySnapshotStore
from orders_core.snapshots.port import Snapshot, SnapshotStoreError
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.store.memory import InMemoryEventStore
from tests.support.counting import RequestCounter
from tests.support.orders import context, new_order_id, place_order

EVERY = 4  # small, so that a few commands cross several multiples


@pytest.fixture
def store(dynamodb: Any, events_table: str) -> DynamoDBEventStore:
    return DynamoDBEventStore(dynamodb, events_table)


@pytest.fixture
def snapshots(dynamodb: Any, snapshots_table: str) -> DynamoDBSnapshotStore:
    return DynamoDBSnapshotStore(dynamodb, snapshots_table)


@pytest.fixture
def counter(dynamodb: Any) -> RequestCounter:
    return RequestCounter(dynamodb)


def service(store: Any, snapshots: Any, every: int = EVERY) -> CommandService:
    return CommandService(store, snapshots=snapshots, snapshot_every={"order": every, "product": every})


def add(order_id: str, sku: str = "sku-x", price: str = "1.00") -> AddItem:
    return AddItem(order_id, "alice", OrderLine(sku, 1, Decimal(price)))


def test_the_command_that_crosses_a_multiple_writes_one_snapshot_and_others_write_none(
    store: DynamoDBEventStore, snapshots: DynamoDBSnapshotStore, counter: RequestCounter
) -> None:
    writer = service(store, snapshots)
    order_id = new_order_id()
    counter.reset()

    # Versions 1-3: below the first multiple (4): one request, as without snapshots
    writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    assert dict(counter.calls) == {"PutItem": 1}

    # Versions 4-5 cross 4: the append, then the snapshot of version 5
    counter.reset()
    writer.execute(ORDER, order_id, add(order_id), context())
    assert dict(counter.calls) == {"PutItem": 2}
    latest = snapshots.latest(f"order-{order_id}")
    assert latest is not None and latest.version == 5

    # Versions 6-7 stay below 8: a warm command is still one request
    counter.reset()
    writer.execute(ORDER, order_id, add(order_id), context())
    assert dict(counter.calls) == {"PutItem": 1}

    # Versions 8-9 cross 8
    counter.reset()
    writer.execute(ORDER, order_id, add(order_id), context())
    assert dict(counter.calls) == {"PutItem": 2}
    latest = snapshots.latest(f"order-{order_id}")
    assert latest is not None and latest.version == 9


def test_a_cold_load_reads_the_latest_snapshot_and_only_the_commits_after_it(
    store: DynamoDBEventStore, snapshots: DynamoDBSnapshotStore, counter: RequestCounter
) -> None:
    order_id = new_order_id()
    writer = service(store, snapshots)
    writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    for n in range(6):  # versions up to 15; snapshots at 5, 9, 13
        writer.execute(ORDER, order_id, add(order_id, f"sku-{n}"), context())

    counter.reset()
    cold = service(store, snapshots).load(ORDER, order_id)

    # One Query for the snapshot, one for the commits after version 13
    assert dict(counter.calls) == {"Query": 2}
    without = CommandService(store).load(ORDER, order_id)
    assert (cold.state, cold.version) == (without.state, without.version) == (cold.state, 15)
    assert cold.recent_commands == without.recent_commands
    assert cold.first_recorded_at == without.first_recorded_at != ""


def test_a_cold_command_costs_two_reads_and_a_write_a_warm_one_still_one_write(
    store: DynamoDBEventStore, snapshots: DynamoDBSnapshotStore, counter: RequestCounter
) -> None:
    order_id = new_order_id()
    service(store, snapshots).execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    cold = service(store, snapshots, every=100)
    counter.reset()

    cold.execute(ORDER, order_id, add(order_id), context())
    assert dict(counter.calls) == {"Query": 2, "PutItem": 1}

    counter.reset()
    cold.execute(ORDER, order_id, add(order_id), context())
    assert dict(counter.calls) == {"PutItem": 1}


def test_a_retry_is_still_recognised_when_the_aggregate_loads_from_a_snapshot(
    store: DynamoDBEventStore, snapshots: DynamoDBSnapshotStore, counter: RequestCounter
) -> None:
    # Given an order whose first command was keyed, then snapshotted well after that command
    order_id = new_order_id()
    writer = service(store, snapshots)
    first = writer.execute(
        ORDER, order_id, place_order(order_id), context("key-1", fingerprint="f"), expect_new=True
    )
    for n in range(4):
        writer.execute(ORDER, order_id, add(order_id, f"sku-{n}"), context())
    snapshot = snapshots.latest(f"order-{order_id}")
    assert snapshot is not None and snapshot.version > first.version

    # When a cold instance (which loads from that snapshot) receives the retry
    counter.reset()
    again = service(store, snapshots).execute(
        ORDER, order_id, place_order(order_id), context("key-1", fingerprint="f"), expect_new=True
    )

    # Then it answers as the first time and appends nothing
    assert (again.version, again.correlation_id, again.replayed) == (3, first.correlation_id, True)
    assert counter.calls["PutItem"] == 1  # the optimistic write of a new order, which conflicted
    assert store.read_commits(f"order-{order_id}")[-1].last_version == 11


def _stored_snapshot(dynamodb: Any, table: str, stream_id: str) -> dict[str, Any]:
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ScanIndexForward=False,
        Limit=1,
    )["Items"]
    return dict(items[0])


# A valid order state unlike the real one: if a snapshot were trusted by mistake, it would show.
MISLEADING = {"S": json.dumps(order_state_to_snapshot(OrderState("cancelled", "x", "mallory")))}


@pytest.mark.parametrize(
    "damage",
    [
        {
            "state_schema_version": {"N": "99"},
            "state": MISLEADING,
        },  # written by code with another state shape
        {"aggregate": {"S": "product"}, "state": MISLEADING},  # not this aggregate type's
        {"state": {"S": json.dumps({"status": "placed"})}},  # fields missing
        {"state": {"S": json.dumps({"status": "weird", "order_id": "x"})}},
        {"recent_commands": {"S": json.dumps([["only-an-id"]])}},
        {"state": {"S": "{not json"}},
        {"state_schema_version": {"S": "one"}},
    ],
    ids=[
        "schema-version",
        "aggregate",
        "missing-fields",
        "bad-status",
        "bad-commands",
        "bad-json",
        "bad-type",
    ],
)
def test_a_snapshot_this_code_cannot_trust_is_ignored_and_the_events_are_folded(
    store: DynamoDBEventStore,
    snapshots: DynamoDBSnapshotStore,
    dynamodb: Any,
    snapshots_table: str,
    damage: Any,
) -> None:
    order_id = new_order_id()
    writer = service(store, snapshots)
    writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    writer.execute(ORDER, order_id, add(order_id, "sku-a"), context())
    writer.execute(ORDER, order_id, add(order_id, "sku-b"), context())
    item = _stored_snapshot(dynamodb, snapshots_table, f"order-{order_id}")
    # A snapshot that claims a later version with a state that would be wrong if it were used
    dynamodb.put_item(TableName=snapshots_table, Item={**item, **damage})

    loaded = service(store, snapshots).load(ORDER, order_id)

    assert loaded.version == 7
    assert [line.product_id for line in loaded.state.lines] == ["sku-0", "sku-a", "sku-b"]
    assert loaded.state == CommandService(store).load(ORDER, order_id).state


def test_a_trusted_snapshot_is_what_the_load_starts_from(
    store: DynamoDBEventStore, snapshots: DynamoDBSnapshotStore, dynamodb: Any, snapshots_table: str
) -> None:
    # The control for the test above: the same tampered state, under the right schema version,
    # is used, so it is the checks that keep a distrusted snapshot out.
    order_id = new_order_id()
    writer = service(store, snapshots)
    writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    writer.execute(ORDER, order_id, add(order_id, "sku-a"), context())
    item = _stored_snapshot(dynamodb, snapshots_table, f"order-{order_id}")
    dynamodb.put_item(TableName=snapshots_table, Item={**item, "state": MISLEADING})

    assert service(store, snapshots).load(ORDER, order_id).state.status == "cancelled"


def test_a_snapshot_that_cannot_be_saved_never_fails_the_command() -> None:
    class FailingSnapshots(InMemorySnapshotStore):
        def save(self, snapshot: Snapshot) -> None:
            raise SnapshotStoreError("throttled")

    warnings: list[tuple[str, Any]] = []

    class Log:
        def warning(self, msg: object, *args: object, extra: Any = None) -> None:
            warnings.append((str(msg), extra))

    events = InMemoryEventStore()
    writer = CommandService(events, snapshots=FailingSnapshots(), snapshot_every={"order": 2}, log=Log())
    order_id = new_order_id()
    result = writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)

    assert result.version == 3
    assert events.read_commits(f"order-{order_id}")[-1].last_version == 3
    assert warnings == [
        ("snapshot not saved", {"stream_id": f"order-{order_id}", "version": 3, "error": "throttled"})
    ]


def test_a_state_too_large_for_one_item_is_not_snapshotted_and_the_command_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("orders_core.snapshots.codec.MAX_SNAPSHOT_BYTES", 300)
    snapshots = InMemorySnapshotStore()
    writer = CommandService(InMemoryEventStore(), snapshots=snapshots, snapshot_every={"order": 2})
    order_id = new_order_id()
    result = writer.execute(ORDER, order_id, place_order(order_id, lines=5), context(), expect_new=True)
    assert result.version == 3 and snapshots.latest(f"order-{order_id}") is None


def test_the_interval_is_set_per_aggregate_type() -> None:
    snapshots = InMemorySnapshotStore()
    writer = CommandService(
        InMemoryEventStore(), snapshots=snapshots, snapshot_every={"order": 0, "product": 2}
    )
    order_id = new_order_id()
    writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    for _ in range(4):
        writer.execute(PRODUCT, "sku-1", ReceiveStock("sku-1", 5), context())

    assert snapshots.latest(f"order-{order_id}") is None  # 0: never
    product = snapshots.latest("product-sku-1")
    assert product is not None and product.version == 4 and product.state["received"] == 20
    assert snapshots.saved == 2  # at versions 2 and 4
    # And types not named get the default
    assert CommandService(InMemoryEventStore(), snapshots=snapshots).snapshot_interval(ORDER) == 100


def test_loading_without_a_snapshot_store_never_reads_snapshots(
    store: DynamoDBEventStore, counter: RequestCounter
) -> None:
    order_id = new_order_id()
    CommandService(store).execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    counter.reset()
    CommandService(store).load(ORDER, order_id)
    assert dict(counter.calls) == {"Query": 1}


def test_upcast_events_are_folded_the_same_from_a_snapshot_and_from_the_log() -> None:
    # Given an order whose history holds ItemAdded at v1, v2 and v3, and a snapshot in the middle
    events, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    order_id = new_order_id()
    writer = CommandService(events, snapshots=snapshots, snapshot_every={"order": 4})
    writer.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    stream = f"order-{order_id}"
    old = {"order_id": order_id, "product_id": "sku-old", "quantity": 2, "unit_price": "3.00"}
    meta = CommitMetadata("c-v1", "corr", "c-v1", "alice", "2026-11-26T10:00:01.000000Z")
    events.append(stream, 3, [NewEvent("ItemAdded", old, schema_version=1)], meta)
    meta2 = CommitMetadata("c-v2", "corr", "c-v2", "alice", "2026-11-26T10:00:02.000000Z")
    events.append(stream, 4, [NewEvent("ItemAdded", {**old, "line_total": "6.00"}, schema_version=2)], meta2)
    loaded = CommandService(events).load(ORDER, order_id)
    snapshots.save(snapshot_of(ORDER, stream, loaded))
    writer.cache.clear()
    writer.execute(ORDER, order_id, add(order_id, "sku-new", "5.00"), context())

    # Then a cold load from the snapshot and a fold of the whole log agree
    from_snapshot = CommandService(events, snapshots=snapshots, snapshot_every={"order": 4}).load(
        ORDER, order_id
    )
    from_log = CommandService(events).load(ORDER, order_id)
    assert from_snapshot.state == from_log.state
    assert [(line.product_id, line.line_total) for line in from_log.state.lines] == [
        ("sku-0", Decimal("9.99")),
        ("sku-old", Decimal("6.00")),
        ("sku-old", Decimal("6.00")),
        ("sku-new", Decimal("5.00")),
    ]
