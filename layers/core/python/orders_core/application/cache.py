"""The warm function's aggregates: a small LRU shared by the threads of one process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from orders_core.application.loading import Loaded


class AggregateCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, Loaded[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream_id: str) -> Loaded[Any] | None:
        with self._lock:
            entry = self._entries.get(stream_id)
            if entry is not None:
                self._entries.move_to_end(stream_id)
            return entry

    def put(self, stream_id: str, loaded: Loaded[Any]) -> None:
        with self._lock:
            existing = self._entries.get(stream_id)
            # Threads may finish out of order: never replace a newer state with an older one.
            if existing is None or existing.version <= loaded.version:
                self._entries[stream_id] = loaded
                self._entries.move_to_end(stream_id)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def discard(self, stream_id: str) -> None:
        with self._lock:
            self._entries.pop(stream_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
