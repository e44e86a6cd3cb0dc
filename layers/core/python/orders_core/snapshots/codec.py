"""How a snapshot becomes one DynamoDB item, and back. Shared by both stores, so the size
limit holds the same everywhere.

Item: stream_id (S, hash key), version (N, range key), aggregate (S), state_schema_version (N),
state (S: compact JSON), recent_commands (S: compact JSON), first_recorded_at (S),
recorded_at (S: the last folded commit's time; sort key of the `by_time` index).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from orders_core.snapshots.port import Snapshot, SnapshotStoreError, SnapshotTooLarge
from orders_core.store.codec import MAX_COMMIT_BYTES, AttributeValue, Item, item_size

MAX_SNAPSHOT_BYTES = MAX_COMMIT_BYTES


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def snapshot_to_item(snapshot: Snapshot) -> Item:
    item: Item = {
        "stream_id": {"S": snapshot.stream_id},
        "version": {"N": str(snapshot.version)},
        "aggregate": {"S": snapshot.aggregate},
        "state_schema_version": {"N": str(snapshot.state_schema_version)},
        "state": {"S": _json(snapshot.state)},
        "recent_commands": {"S": _json([list(row) for row in snapshot.recent_commands])},
        "first_recorded_at": {"S": snapshot.first_recorded_at},
        "recorded_at": {"S": snapshot.last_recorded_at},
    }
    size = item_size(item)
    if size > MAX_SNAPSHOT_BYTES:
        raise SnapshotTooLarge(snapshot.stream_id, size, MAX_SNAPSHOT_BYTES)
    return item


def item_to_snapshot(item: Mapping[str, AttributeValue]) -> Snapshot:
    try:
        return Snapshot(
            stream_id=str(item["stream_id"]["S"]),
            version=int(item["version"]["N"]),
            aggregate=str(item["aggregate"]["S"]),
            state_schema_version=int(item["state_schema_version"]["N"]),
            state=json.loads(item["state"]["S"]),
            recent_commands=tuple(tuple(row) for row in json.loads(item["recent_commands"]["S"])),
            first_recorded_at=str(item["first_recorded_at"]["S"]),
            last_recorded_at=str(item["recorded_at"]["S"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        # Damaged or foreign: a reader treats it as no snapshot and folds the events.
        raise SnapshotStoreError(f"unreadable snapshot item: {exc!r}") from exc
