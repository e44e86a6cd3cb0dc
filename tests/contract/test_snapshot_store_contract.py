"""One contract, every snapshot store: the in-memory fake and DynamoDB (on moto) must agree."""

from __future__ import annotations

from typing import Any

import pytest

from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore
from orders_core.snapshots.memory import InMemorySnapshotStore
from orders_core.snapshots.port import Snapshot, SnapshotStore, SnapshotTooLarge


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> SnapshotStore:
    if request.param == "memory":
        return InMemorySnapshotStore()
    dynamodb: Any = request.getfixturevalue("dynamodb")
    return DynamoDBSnapshotStore(dynamodb, request.getfixturevalue("snapshots_table"))


def snapshot(version: int, *, stream_id: str = "order-1", at: str = "", **changes: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "stream_id": stream_id,
        "version": version,
        "aggregate": "order",
        "state_schema_version": 1,
        "state": {"status": "placed", "lines": [["sku-1", 2, "12.50"]], "note": f"at {version}"},
        "recent_commands": (("cmd-1", "fp", 1, 3, "corr-1"),),
        "first_recorded_at": "2026-11-26T10:00:00.000000Z",
        "last_recorded_at": at or f"2026-11-26T10:{version:02d}:00.000000Z",
    }
    fields.update(changes)
    return Snapshot(**fields)


def test_no_snapshot_for_a_stream_without_one(store: SnapshotStore) -> None:
    assert store.latest("order-1") is None
    assert store.latest("order-1", at_or_before_version=10) is None
    assert store.latest_recorded_by("order-1", "2030-01-01T00:00:00.000000Z") is None


def test_a_snapshot_reads_back_exactly(store: SnapshotStore) -> None:
    written = snapshot(
        7,
        state={"text": "naïve ☕ 数据", "price": "12.50", "nested": [1, None, True]},
        state_schema_version=3,
    )
    store.save(written)
    assert store.latest("order-1") == written


def test_the_latest_is_the_highest_version_at_or_before_a_bound(store: SnapshotStore) -> None:
    for version in (3, 10, 7):  # saved out of order
        store.save(snapshot(version))

    def version_of(found: Snapshot | None) -> int | None:
        return found.version if found else None

    assert version_of(store.latest("order-1")) == 10
    assert version_of(store.latest("order-1", at_or_before_version=9)) == 7
    assert version_of(store.latest("order-1", at_or_before_version=7)) == 7
    assert version_of(store.latest("order-1", at_or_before_version=2)) is None


def test_the_latest_recorded_by_an_instant(store: SnapshotStore) -> None:
    store.save(snapshot(3, at="2026-11-26T10:00:03.000000Z"))
    store.save(snapshot(7, at="2026-11-26T10:00:07.000000Z"))

    found = store.latest_recorded_by("order-1", "2026-11-26T10:00:05.000000Z")
    assert found is not None and found.version == 3
    exact = store.latest_recorded_by("order-1", "2026-11-26T10:00:07.000000Z")
    assert exact is not None and exact.version == 7
    assert store.latest_recorded_by("order-1", "2026-11-26T10:00:02.999999Z") is None


def test_saving_the_same_version_again_replaces_it(store: SnapshotStore) -> None:
    store.save(snapshot(5, state={"n": 1}))
    store.save(snapshot(5, state={"n": 2}))
    found = store.latest("order-1")
    assert found is not None and found.state == {"n": 2}


def test_streams_are_independent(store: SnapshotStore) -> None:
    store.save(snapshot(5, stream_id="order-1"))
    store.save(snapshot(9, stream_id="order-2"))
    first = store.latest("order-1")
    assert first is not None and first.version == 5
    assert store.latest("order-3") is None


def test_a_snapshot_too_large_for_one_item_is_refused_and_nothing_written(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotTooLarge) as refused:
        store.save(snapshot(5, state={"text": "é" * 210_000}))
    assert refused.value.size > refused.value.limit
    assert store.latest("order-1") is None
