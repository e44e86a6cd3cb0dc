"""In-memory snapshot store: the fake for unit tests, with the same rules as DynamoDB."""

from __future__ import annotations

import threading

from orders_core.snapshots.codec import item_to_snapshot, snapshot_to_item
from orders_core.snapshots.port import Snapshot
from orders_core.store.codec import Item


class InMemorySnapshotStore:
    def __init__(self) -> None:
        self._streams: dict[str, dict[int, Item]] = {}
        self._lock = threading.Lock()
        self.saved = 0  # how many saves reached the store: tests check the write rate

    def save(self, snapshot: Snapshot) -> None:
        # Through the item codec: the same size limit as DynamoDB, and no aliasing with the caller.
        item = snapshot_to_item(snapshot)
        with self._lock:
            self._streams.setdefault(snapshot.stream_id, {})[snapshot.version] = item
            self.saved += 1

    def latest(self, stream_id: str, *, at_or_before_version: int | None = None) -> Snapshot | None:
        with self._lock:
            items = dict(self._streams.get(stream_id, {}))
        versions = [v for v in items if at_or_before_version is None or v <= at_or_before_version]
        return item_to_snapshot(items[max(versions)]) if versions else None

    def latest_recorded_by(self, stream_id: str, recorded_at: str) -> Snapshot | None:
        with self._lock:
            items = dict(self._streams.get(stream_id, {}))
        versions = [v for v, item in items.items() if item["recorded_at"]["S"] <= recorded_at]
        return item_to_snapshot(items[max(versions)]) if versions else None
