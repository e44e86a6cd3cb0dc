"""In-memory connections, alert markers and pusher for tests; the same contract as DynamoDB's
(tests/contract/test_live_stores_contract.py), conditions enforced under a lock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orders_core.live.port import Connection, PushFailed, PushOutcome, Reachable


class InMemoryConnectionStore:
    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._connections[connection.connection_id] = connection

    def remove(self, connection_id: str) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)

    def of_subject(self, subject: str, *, now: int) -> Sequence[Reachable]:
        return self._reachable(lambda c: c.subject == subject, now)

    def of_group(self, group: str, *, now: int) -> Sequence[Reachable]:
        return self._reachable(lambda c: group in c.groups, now)

    def _reachable(self, belongs: Callable[[Connection], bool], now: int) -> list[Reachable]:
        with self._lock:
            found = [c for c in self._connections.values() if belongs(c) and c.expires_at > now]
        return sorted(
            (Reachable(c.connection_id, c.expires_at) for c in found), key=lambda r: r.connection_id
        )


@dataclass(frozen=True)
class _Marker:
    holds: bool
    revision: int
    raised_by: str | None


class InMemoryAlertMarkers:
    def __init__(self) -> None:
        self._markers: dict[str, _Marker] = {}
        self._lock = threading.Lock()

    def record(self, alert: str, *, holds: bool, revision: int, trigger: str) -> bool:
        with self._lock:
            stored = self._markers.get(alert)
            if stored is None or stored.revision < revision:
                kept = stored.raised_by if stored is not None and stored.holds else trigger
                stored = _Marker(holds, revision, kept if holds else None)
                self._markers[alert] = stored
            return stored.holds and stored.raised_by == trigger


class InMemoryPusher:
    """Keeps what it delivered per connection; connections not `open` are gone. `failures` makes
    the next pushes fail (a throttled or unreachable endpoint)."""

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.delivered: dict[str, list[bytes]] = {}
        self.failures = 0
        self._lock = threading.Lock()

    def push(self, connection_id: str, message: bytes) -> PushOutcome:
        with self._lock:
            if self.failures > 0:
                self.failures -= 1
                raise PushFailed("the in-memory pusher is out of reach (a failure the test asked for)")
            if connection_id not in self.open:
                return PushOutcome.GONE
            self.delivered.setdefault(connection_id, []).append(message)
            return PushOutcome.DELIVERED
