"""Commits a read model could not apply, parked per (read model, stream), in version order.

A read model that fails on a commit parks it, and every later commit of that stream for that
read model waits behind it (Axon's sequenced dead-letter queue): the other read models, and this
read model's other streams, go on. An operator replays the parked commits once the cause is
fixed; the row is removed only if nothing was parked behind it meanwhile.

Rows live in the projections' control table through the ReadStore port: pk = "parked#<read
model>", sk = the stream id; `applied` holds the parked first versions, `count` how many.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orders_core.readmodels.port import ReadStore, Row

PARTITION = "parked#"
_ATTEMPTS = 3


@dataclass(frozen=True)
class ParkedStream:
    projection: str
    stream_id: str
    # First versions of the parked commits, ascending: the oldest is the one that failed.
    versions: tuple[int, ...]
    error: str
    last_parked_at: str
    # Additions so far: a replay removes the row only if it is still this many.
    count: int

    def to_json(self) -> dict[str, object]:
        return {
            "projection": self.projection,
            "stream_id": self.stream_id,
            "versions": list(self.versions),
            "error": self.error,
            "last_parked_at": self.last_parked_at,
        }


def _key(projection: str, stream_id: str) -> tuple[str, str]:
    return (f"{PARTITION}{projection}", stream_id)


def _parked(projection: str, row: Row) -> ParkedStream:
    return ParkedStream(
        projection=projection,
        stream_id=str(row["sk"]),
        versions=tuple(sorted(int(v) for v in row.get("applied", ()))),
        error=str(row.get("error", "")),
        last_parked_at=str(row.get("last_parked_at", "")),
        count=int(row.get("count", 0)),
    )


class ParkingLot:
    def __init__(self, store: ReadStore) -> None:
        self._store = store

    def park(self, projection: str, stream_id: str, versions: Iterable[int], error: str, now: str) -> None:
        """Park these commits of the stream (again: parking a parked commit changes nothing)."""
        key = _key(projection, stream_id)
        pending = sorted(set(versions))
        for _ in range(_ATTEMPTS):
            if not pending:
                return
            fields = {"error": error[:1000], "last_parked_at": now}
            counters = {"count": len(pending)}
            if self._store.add_contribution(
                key, sources=[str(v) for v in pending], counters=counters, fields=fields
            ):
                return
            # Some were parked before (a redelivered batch): park only the others.
            row = self._store.get_many([key]).get(key, {})
            already = {int(v) for v in row.get("applied", ())}
            pending = [v for v in pending if v not in already]
        raise RuntimeError(f"could not park {stream_id} for {projection}")

    def stream(self, projection: str, stream_id: str) -> ParkedStream | None:
        key = _key(projection, stream_id)
        row = self._store.get_many([key]).get(key)
        return _parked(projection, row) if row else None

    def parked(self, projection: str) -> list[ParkedStream]:
        rows = self._store.query_partition(f"{PARTITION}{projection}")
        return [_parked(projection, row) for row in rows]

    def release(self, parked: ParkedStream) -> bool:
        """Remove the stream's parked commits after a replay applied them all; False when more
        were parked behind them meanwhile (replay again)."""
        return self._store.delete_if(
            _key(parked.projection, parked.stream_id), counter="count", equals=parked.count
        )
