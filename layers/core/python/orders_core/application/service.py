"""The command service: load an aggregate, decide, append; retry on conflict.

Cost model: a warm function keeps recently used aggregates in memory and writes a command on
one of them straight at cached_version + 1, so the steady-state cost of a command is one
PutItem. A new aggregate is written at version 1 without reading first. A conflict (someone
else wrote) reads only the commits after the version we hold, then decides again.

Snapshots: with a snapshot store, the append that crosses a multiple of the aggregate type's
interval also saves the new state (with the recent command ids): one more PutItem every N
events, nothing on the other commands. A cold load reads the latest snapshot and only the
commits after it: two requests whatever the length of the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from orders_core.application.cache import AggregateCache
from orders_core.application.errors import IdempotencyKeyReused, StaleVersion
from orders_core.application.loading import Loaded, fold_commits, loaded_from_snapshot, snapshot_of
from orders_core.domain.aggregate import AggregateType
from orders_core.domain.errors import DomainError
from orders_core.envelope import Commit, CommitMetadata
from orders_core.errors import ConcurrencyError
from orders_core.snapshots.port import SnapshotStore, SnapshotStoreError
from orders_core.store.port import EventStore

State = TypeVar("State")
Command = TypeVar("Command")

# Events between snapshots, for aggregate types without a setting of their own.
DEFAULT_SNAPSHOT_EVERY = 100


class WarningLog(Protocol):
    """The part of a logger the service uses (logging.Logger and Powertools' Logger both fit)."""

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


@dataclass(frozen=True)
class CommandContext:
    """Everything about a command that is not the command: ids, caller, time, preconditions."""

    command_id: str
    correlation_id: str
    actor: str
    recorded_at: str
    fingerprint: str = ""
    causation_id: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class CommandResult:
    stream_id: str
    version: int
    correlation_id: str
    replayed: bool = False


class CommandService:
    def __init__(
        self,
        store: EventStore,
        *,
        snapshots: SnapshotStore | None = None,
        snapshot_every: Mapping[str, int] | None = None,
        cache_size: int = 1000,
        max_attempts: int = 5,
        log: WarningLog | None = None,
    ) -> None:
        """`snapshot_every` maps aggregate type names to events between snapshots (0: never);
        types not named get DEFAULT_SNAPSHOT_EVERY. Without `snapshots` nothing is snapshotted."""
        self.store = store
        self.snapshots = snapshots
        self.snapshot_every: Mapping[str, int] = dict(snapshot_every or {})
        self.cache = AggregateCache(cache_size)
        self._max_attempts = max_attempts
        self._log: WarningLog = log or logging.getLogger(__name__)

    def load(self, aggregate: AggregateType[State, Any], aggregate_id: str) -> Loaded[State]:
        """The aggregate as stored now (no cache): from its latest snapshot when there is one."""
        empty: Loaded[State] = Loaded.empty(aggregate)
        return self._catch_up(aggregate, aggregate.stream_id(aggregate_id), empty)

    def snapshot_interval(self, aggregate: AggregateType[Any, Any]) -> int:
        """Events between snapshots of this aggregate type; 0 when it is never snapshotted."""
        if self.snapshots is None or not aggregate.snapshots_supported:
            return 0
        return max(0, self.snapshot_every.get(aggregate.name, DEFAULT_SNAPSHOT_EVERY))

    def execute(
        self,
        aggregate: AggregateType[State, Command],
        aggregate_id: str,
        command: Command,
        context: CommandContext,
        *,
        expect_new: bool = False,
    ) -> CommandResult:
        """Decide `command` on the aggregate and append the result as one commit.

        `expect_new` skips the read when the caller expects the aggregate not to exist yet
        (a new order): the conditional write tells us if it did.
        """
        stream_id = aggregate.stream_id(aggregate_id)
        current: Loaded[State] | None = self.cache.get(stream_id)
        fresh = False
        if current is None:
            current = Loaded.empty(aggregate)
            if not expect_new:
                current, fresh = self._catch_up(aggregate, stream_id, current), True

        for _ in range(self._max_attempts):
            record = current.recent_commands.get(context.command_id)
            if record is not None:
                if context.fingerprint and record.fingerprint and record.fingerprint != context.fingerprint:
                    raise IdempotencyKeyReused(context.command_id)
                return CommandResult(stream_id, record.last_version, record.correlation_id, replayed=True)

            if context.expected_version is not None and current.version != context.expected_version:
                # Versions only grow: a cached state behind the client's may just be old.
                if not fresh and current.version < context.expected_version:
                    current, fresh = self._catch_up(aggregate, stream_id, current), True
                    continue
                raise StaleVersion(context.expected_version, current.version)

            try:
                decided = aggregate.decide(current.state, command)
            except DomainError:
                if fresh:
                    raise
                # The refusal may come from an outdated cached state: check against the store.
                current, fresh = self._catch_up(aggregate, stream_id, current), True
                continue
            if not decided:
                return CommandResult(stream_id, current.version, context.correlation_id)

            try:
                commit = self.store.append(
                    stream_id,
                    current.version,
                    [event.to_new_event() for event in decided],
                    self._metadata(context, current),
                )
            except ConcurrencyError:
                self.cache.discard(stream_id)
                current, fresh = self._catch_up(aggregate, stream_id, current), True
                continue
            current = fold_commits(aggregate, current, [commit])
            self.cache.put(stream_id, current)
            self._snapshot_if_due(aggregate, stream_id, commit, current)
            return CommandResult(stream_id, commit.last_version, context.correlation_id)

        raise ConcurrencyError(stream_id, current.version)

    @staticmethod
    def _metadata(context: CommandContext, current: Loaded[Any]) -> CommitMetadata:
        return CommitMetadata(
            command_id=context.command_id,
            correlation_id=context.correlation_id,
            causation_id=context.causation_id or context.command_id,
            actor=context.actor,
            # Clocks of different function instances drift: keep a stream's times non-decreasing
            # so that "as of T" queries see commits in version order.
            recorded_at=max(context.recorded_at, current.last_recorded_at),
            command_fingerprint=context.fingerprint,
        )

    def _snapshot_if_due(
        self, aggregate: AggregateType[State, Any], stream_id: str, commit: Commit, loaded: Loaded[State]
    ) -> None:
        every = self.snapshot_interval(aggregate)
        # Due when this commit crosses a multiple of `every`: one snapshot per `every` events,
        # even when commits of several events step over the exact multiple.
        if (
            self.snapshots is None
            or not every
            or (commit.first_version - 1) // every == commit.last_version // every
        ):
            return
        try:
            self.snapshots.save(snapshot_of(aggregate, stream_id, loaded))
        except SnapshotStoreError as error:
            # The command is stored already; a missing snapshot only makes later cold loads longer.
            self._log.warning(
                "snapshot not saved",
                extra={"stream_id": stream_id, "version": loaded.version, "error": str(error)},
            )

    def _from_snapshot(self, aggregate: AggregateType[State, Any], stream_id: str) -> Loaded[State] | None:
        if self.snapshots is None or not self.snapshot_interval(aggregate):
            return None
        try:
            snapshot = self.snapshots.latest(stream_id)
        except SnapshotStoreError as error:
            self._log.warning("snapshot not read", extra={"stream_id": stream_id, "error": str(error)})
            return None
        if snapshot is None:
            return None
        loaded = loaded_from_snapshot(aggregate, snapshot)
        if loaded is None:
            self._log.warning(
                "snapshot ignored",
                extra={
                    "stream_id": stream_id,
                    "version": snapshot.version,
                    "state_schema_version": snapshot.state_schema_version,
                    "expected_state_schema_version": aggregate.state_schema_version,
                },
            )
        return loaded

    def _catch_up(
        self, aggregate: AggregateType[State, Any], stream_id: str, current: Loaded[State]
    ) -> Loaded[State]:
        if current.version == 0:
            current = self._from_snapshot(aggregate, stream_id) or current
        commits = self.store.read_commits(stream_id, after_version=current.version)
        loaded = fold_commits(aggregate, current, commits)
        if loaded.version > 0:
            self.cache.put(stream_id, loaded)
        return loaded
