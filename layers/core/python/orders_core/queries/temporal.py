"""Temporal queries: an order as it was at a version or at an instant, from the event store.

Never from the read model: the answer folds the order's events (upcast like every other
reader) with the customer order view's own projection, starting from the latest snapshot at
or before that point when there is one. Reads are bounded by the point asked for: commits
after the version, or recorded after the instant, are not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from orders_core.application import loaded_from_snapshot
from orders_core.domain.orders import ORDER
from orders_core.envelope import Commit, format_timestamp
from orders_core.projections.base import facts
from orders_core.projections.customer_orders import OrderView, project
from orders_core.snapshots.port import Snapshot, SnapshotStore, SnapshotStoreError
from orders_core.store.port import EventStore

# RFC 3339 date-time: full date, time, optional fraction, and a mandatory offset. A space in place
# of the offset's "+" is accepted: it is what an unencoded "+" in a query string decodes to.
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<offset>[Zz]|[+\- ]\d{2}:\d{2})"
)


def parse_instant(text: str) -> datetime:
    """An RFC 3339 date-time with a time zone offset, as an aware UTC datetime (microseconds).

    Raises ValueError, with a message for the client, for anything else.
    """
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError("as_of must be an RFC 3339 date-time with an offset, such as 2026-11-26T10:00:00Z")
    offset = match["offset"].upper()
    offset = "+00:00" if offset == "Z" else offset.replace(" ", "+")
    # Stored times have microseconds: finer digits cannot change which commits qualify.
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
        # Year 1 with a positive offset lies before datetime's range in UTC (OverflowError).
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"as_of is not a valid date-time: {text[:64]!r}") from None


@dataclass(frozen=True)
class OrderAtPoint:
    """The order view at a point in its history (a version or an instant), and the instant that
    point describes."""

    view: OrderView
    as_of: str


def _view_from_snapshot(snapshot: Snapshot) -> OrderView | None:
    loaded = loaded_from_snapshot(ORDER, snapshot)
    if loaded is None or loaded.state.status == "new" or not loaded.first_recorded_at:
        return None  # unusable here: fold from the events instead
    state = loaded.state
    # The command that produced the snapshot's version is among the recent commands it keeps.
    producing = [r for r in loaded.recent_commands.values() if r.last_version == loaded.version]
    return OrderView(
        order_id=state.order_id,
        customer_id=state.customer_id,
        status=state.status,
        items=state.lines,
        tracking_number=state.tracking_number,
        placed_at=loaded.first_recorded_at,
        version=loaded.version,
        correlation_id=producing[-1].correlation_id if producing else None,
    )


class TemporalOrders:
    def __init__(self, events: EventStore, snapshots: SnapshotStore | None = None) -> None:
        self._events = events
        self._snapshots = snapshots

    def at_version(self, order_id: str, version: int) -> OrderAtPoint | None:
        """The order after its event `version`; after its last event if it has fewer (the view's
        version then says which). None when the order does not exist."""
        stream_id = ORDER.stream_id(order_id)
        snapshot = self._snapshot(lambda store: store.latest(stream_id, at_or_before_version=version))
        start = _view_from_snapshot(snapshot) if snapshot else None
        start_at = snapshot.last_recorded_at if snapshot and start else ""
        commits = self._events.read_commits(
            stream_id, after_version=start.version if start else 0, up_to_version=version
        )
        return self._fold(start, start_at, commits, until_version=version)

    def as_of(self, order_id: str, instant: datetime) -> OrderAtPoint | None:
        """The order after every event recorded at or before `instant`; None when it did not exist then."""
        stream_id = ORDER.stream_id(order_id)
        bound = format_timestamp(instant)
        snapshot = self._snapshot(lambda store: store.latest_recorded_by(stream_id, bound))
        start = _view_from_snapshot(snapshot) if snapshot else None
        commits = self._events.read_commits(
            stream_id, after_version=start.version if start else 0, recorded_until=bound
        )
        found = self._fold(start, bound, commits)
        return OrderAtPoint(found.view, bound) if found else None

    def _snapshot(self, read: Callable[[SnapshotStore], Snapshot | None]) -> Snapshot | None:
        if self._snapshots is None:
            return None
        try:
            return read(self._snapshots)
        except SnapshotStoreError:
            return None  # unreadable or unreachable: the events alone give the same answer

    @staticmethod
    def _fold(
        view: OrderView | None, recorded_at: str, commits: Sequence[Commit], until_version: int | None = None
    ) -> OrderAtPoint | None:
        for commit in commits:
            for fact in facts(commit):
                if until_version is not None and fact.envelope.version > until_version:
                    break
                view = project(view, fact)
                recorded_at = fact.envelope.recorded_at
        return OrderAtPoint(view, recorded_at) if view is not None else None
