"""One stream reader for every registered read model.

DynamoDB Streams serves at most two readers per shard, so read models do not get a reader each:
the projector reads the events stream once and hands each batch to every registered read model
(`LiveProjection`, which writes each generation in use). A read model that fails on a commit
parks it, with every later commit of that stream for that read model behind it, and the others
go on (`ParkingLot`); an operator replays what is parked once the cause is fixed (`replay`).

What is parked is what a read model's own code failed on. A store that fails (throttled, out of
reach) is not the commit's fault: then, as when parking itself fails, the batch fails back to the
stream and is delivered again, which every read model absorbs exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orders_core.envelope import Commit
from orders_core.errors import EventStoreError
from orders_core.projections.live import LiveProjection
from orders_core.projections.parking import ParkedStream, ParkingLot
from orders_core.readmodels.port import ReadStoreError

PROJECTOR = "projector"
# How stale the projector's list of parked streams may be (it re-reads it after parking anything).
PARKED_TTL_SECONDS = 10.0
# How often a projector instance tells operators how far behind the stream it runs (a write).
HEARTBEAT_SECONDS = 60.0
# Failures of the stores, not of the read model's code: deliver again rather than park.
TRANSIENT = (ReadStoreError, EventStoreError)


class StoreUnavailable(Exception):
    """A read model's store failed: the batch is delivered again."""


@dataclass
class Delivery:
    """What one batch did to one read model."""

    projection: str
    applied: int = 0
    parked: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class ParkedStreams:
    """The streams parked for each read model, re-read at most every `ttl_seconds`."""

    def __init__(
        self,
        parking: ParkingLot,
        ttl_seconds: float = PARKED_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parking = parking
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: dict[str, tuple[float, frozenset[str]]] = {}

    def of(self, projection: str) -> frozenset[str]:
        now = self._clock()
        cached = self._cached.get(projection)
        if cached is None or now - cached[0] >= self._ttl:
            cached = (now, frozenset(p.stream_id for p in self._parking.parked(projection)))
            self._cached[projection] = cached
        return cached[1]

    def forget(self, projection: str) -> None:
        self._cached.pop(projection, None)


class Projector:
    name = PROJECTOR

    def __init__(
        self,
        projections: Sequence[LiveProjection],
        parking: ParkingLot,
        *,
        now: Callable[[], str],
        parked_streams: ParkedStreams | None = None,
        heartbeat: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.projections = tuple(projections)
        self._parking = parking
        self._now = now
        self._parked_streams = parked_streams or ParkedStreams(parking)
        self._heartbeat = heartbeat
        self._clock = clock
        self._last_heartbeat: float | None = None
        self.last_deliveries: list[Delivery] = []

    def record_lag(self, now_ms: int, oldest_record_ms: int | None) -> None:
        """Lag is a metric (stream_delivery); operators' `orders projections` gets a heartbeat row,
        written at most every HEARTBEAT_SECONDS so that it costs no write per batch."""
        now = self._clock()
        if self._heartbeat is None or (
            self._last_heartbeat is not None and now - self._last_heartbeat < HEARTBEAT_SECONDS
        ):
            return
        self._last_heartbeat = now
        self._heartbeat(now_ms, max(0, now_ms - oldest_record_ms) if oldest_record_ms is not None else 0)

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        """Deliver the batch to every read model; the positions to deliver again (parking failed)."""
        failures: dict[int, Exception] = {}
        deliveries = []
        for projection in self.projections:
            try:
                deliveries.append(self._deliver(projection, commits))
            except Exception as error:  # parking or the control row out of reach: deliver it all again
                for position in range(len(commits)):
                    failures.setdefault(position, error)
        self.last_deliveries = deliveries
        return failures

    def _deliver(self, projection: LiveProjection, commits: Sequence[Commit]) -> Delivery:
        delivery = Delivery(projection.name)
        parked = self._parked_streams.of(projection.name)
        behind: dict[str, list[int]] = {}
        to_apply: list[Commit] = []
        heads: dict[str, int | None] = {}
        for commit in commits:
            if commit.stream_id in parked and commit.stream_id not in heads:
                heads[commit.stream_id] = self._parked_head(projection.name, commit.stream_id)
            head = heads.get(commit.stream_id)
            # A commit from before the parked one is a redelivery of what went through: apply it
            # again (harmlessly); from the parked one on, the stream waits behind it.
            if head is not None and commit.first_version >= head:
                behind.setdefault(commit.stream_id, []).append(commit.first_version)
            else:
                to_apply.append(commit)
        try:
            failures = projection.apply(to_apply)
        except TRANSIENT:
            raise
        except Exception:
            # The read model's code failed outside any one commit: find which, one at a time.
            failures = self._one_by_one(projection, to_apply)
        transient = next((error for error in failures.values() if isinstance(error, TRANSIENT)), None)
        if transient is not None:
            raise StoreUnavailable(f"{projection.name}: {transient}") from transient
        failed_streams: dict[str, str] = {}
        first_failed: dict[str, int] = {}
        for position, error in sorted(failures.items(), key=lambda item: to_apply[item[0]].first_version):
            commit = to_apply[position]
            if commit.stream_id not in first_failed:
                first_failed[commit.stream_id] = commit.first_version
                failed_streams[commit.stream_id] = f"{type(error).__name__}: {error}"
        for commit in to_apply:
            failed_at = first_failed.get(commit.stream_id)
            if failed_at is not None and commit.first_version >= failed_at:
                # Later commits of a failed stream wait behind it, even those that went through:
                # replaying them is harmless (every row applies a commit at most once).
                delivery.parked.setdefault(commit.stream_id, []).append(commit.first_version)
            else:
                delivery.applied += 1
        for stream_id, versions in behind.items():
            delivery.parked.setdefault(stream_id, []).extend(versions)
        for stream_id, versions in delivery.parked.items():
            reason = failed_streams.get(stream_id) or "behind an earlier parked commit of this stream"
            delivery.errors[stream_id] = reason
            self._parking.park(projection.name, stream_id, versions, reason, self._now())
        if delivery.parked:
            self._parked_streams.forget(projection.name)
        # Parked commits count as handled: a replay brings them to whatever generations are in use.
        projection.record_markers(to_apply)
        return delivery

    @staticmethod
    def _one_by_one(projection: LiveProjection, commits: Sequence[Commit]) -> dict[int, Exception]:
        failures: dict[int, Exception] = {}
        failed: dict[str, Exception] = {}
        for position, commit in enumerate(commits):
            error: Exception | None = failed.get(commit.stream_id)
            if error is None:
                try:
                    error = projection.apply([commit]).get(0)
                except TRANSIENT:
                    raise
                except Exception as raised:
                    error = raised
            if error is not None:
                failures[position] = error
                failed.setdefault(commit.stream_id, error)
        return failures

    def _parked_head(self, projection: str, stream_id: str) -> int | None:
        # The cached list may be stale after a replay: check the one stream before holding it back.
        parked = self._parking.stream(projection, stream_id)
        return parked.versions[0] if parked and parked.versions else None


@dataclass(frozen=True)
class ReplayOutcome:
    projection: str
    stream_id: str
    versions: tuple[int, ...]
    replayed: bool
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "projection": self.projection,
            "stream_id": self.stream_id,
            "versions": list(self.versions),
            "replayed": self.replayed,
            "error": self.error,
        }


def replay(
    projection: LiveProjection,
    parking: ParkingLot,
    read_commits: Callable[[str, int], Sequence[Commit]],
    *,
    rounds: int = 3,
) -> list[ReplayOutcome]:
    """Apply every parked commit of this read model again, stream by stream in version order; a
    stream is released when all its commits went through and nothing was parked behind them
    meanwhile (then it is replayed again, up to `rounds` times)."""
    outcomes = []
    for parked in parking.parked(projection.name):
        outcomes.append(_replay_stream(projection, parking, read_commits, parked, rounds))
    return outcomes


def _replay_stream(
    projection: LiveProjection,
    parking: ParkingLot,
    read_commits: Callable[[str, int], Sequence[Commit]],
    parked: ParkedStream,
    rounds: int,
) -> ReplayOutcome:
    current: ParkedStream | None = parked
    for _ in range(rounds):
        if current is None:
            break
        wanted = set(current.versions)
        # From the oldest parked commit on: the stream's later commits ride along in version order.
        commits = [
            c
            for c in read_commits(current.stream_id, current.versions[0])
            if c.first_version >= current.versions[0]
        ]
        try:
            failures = projection.apply(commits)
        except Exception as raised:  # reported to the operator; the stream stays parked
            failures = {0: raised}
        if failures:
            first = min(failures)
            error = failures[first]
            return ReplayOutcome(
                projection.name,
                current.stream_id,
                current.versions,
                False,
                f"{type(error).__name__}: {error}",
            )
        projection.record_markers([c for c in commits if c.first_version in wanted])
        if parking.release(current):
            return ReplayOutcome(projection.name, current.stream_id, parked.versions, True)
        current = parking.stream(projection.name, current.stream_id)
    if current is None:
        return ReplayOutcome(projection.name, parked.stream_id, parked.versions, True)
    return ReplayOutcome(
        projection.name,
        current.stream_id,
        current.versions,
        False,
        "more commits were parked behind it meanwhile",
    )
