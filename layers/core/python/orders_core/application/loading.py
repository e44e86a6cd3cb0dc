"""An aggregate as loaded: folded from its commits (or a snapshot), with its recent command ids.

Idempotency lives here: each commit records the command id that produced it, and every loaded
aggregate keeps the ids of its most recent commands. A retried command finds its id there and
gets the first answer back without appending: no extra table, no extra request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from orders_core.domain.aggregate import AggregateType
from orders_core.domain.events import EventRegistry
from orders_core.envelope import Commit, EventEnvelope
from orders_core.snapshots.port import Snapshot

State = TypeVar("State")

RECENT_COMMANDS_KEPT = 100


@dataclass(frozen=True)
class CommandRecord:
    fingerprint: str
    first_version: int
    last_version: int
    correlation_id: str


@dataclass(frozen=True)
class Loaded(Generic[State]):
    state: State
    version: int
    recent_commands: Mapping[str, CommandRecord]
    last_recorded_at: str = ""
    # When the stream's first commit was recorded (an order's placed_at); "" until it is known.
    first_recorded_at: str = ""

    @classmethod
    def empty(cls, aggregate: AggregateType[State, Any]) -> Loaded[State]:
        return cls(aggregate.initial_state, 0, MappingProxyType({}))


def fold_commits(
    aggregate: AggregateType[State, Any], start: Loaded[State], commits: Sequence[Commit]
) -> Loaded[State]:
    state = start.state
    version = start.version
    recent: OrderedDict[str, CommandRecord] = OrderedDict(start.recent_commands)
    last_recorded_at = start.last_recorded_at
    first_recorded_at = start.first_recorded_at
    for commit in commits:
        for event in commit.events:
            state = aggregate.evolve(
                state, aggregate.events.load(event.type, event.data, event.schema_version)
            )
        version = commit.last_version
        meta = commit.metadata
        if commit.first_version == 1:
            first_recorded_at = meta.recorded_at
        recent[meta.command_id] = CommandRecord(
            meta.command_fingerprint, commit.first_version, commit.last_version, meta.correlation_id
        )
        recent.move_to_end(meta.command_id)
        while len(recent) > RECENT_COMMANDS_KEPT:
            recent.popitem(last=False)
        last_recorded_at = max(last_recorded_at, meta.recorded_at)
    return Loaded(state, version, MappingProxyType(dict(recent)), last_recorded_at, first_recorded_at)


def snapshot_of(aggregate: AggregateType[State, Any], stream_id: str, loaded: Loaded[State]) -> Snapshot:
    """What a snapshot of `loaded` holds: the state as the aggregate type encodes it, and the
    recent command ids, so that a retry is still recognised after a load from the snapshot."""
    if aggregate.state_to_snapshot is None:
        raise ValueError(f"aggregate type {aggregate.name} has no snapshot encoding")
    return Snapshot(
        stream_id=stream_id,
        version=loaded.version,
        aggregate=aggregate.name,
        state_schema_version=aggregate.state_schema_version,
        state=aggregate.state_to_snapshot(loaded.state),
        recent_commands=tuple(
            (command_id, r.fingerprint, r.first_version, r.last_version, r.correlation_id)
            for command_id, r in loaded.recent_commands.items()
        ),
        first_recorded_at=loaded.first_recorded_at,
        last_recorded_at=loaded.last_recorded_at,
    )


def loaded_from_snapshot(aggregate: AggregateType[State, Any], snapshot: Snapshot) -> Loaded[State] | None:
    """The loaded aggregate a snapshot stands for; None when this code must not trust it."""
    if (
        aggregate.state_from_snapshot is None
        or snapshot.aggregate != aggregate.name
        or snapshot.state_schema_version != aggregate.state_schema_version
    ):
        return None  # written by other (older or newer) code: its state may mean something else
    try:
        state = aggregate.state_from_snapshot(snapshot.state)
        recent = {
            str(command_id): CommandRecord(str(fingerprint), int(first), int(last), str(correlation_id))
            for command_id, fingerprint, first, last, correlation_id in snapshot.recent_commands
        }
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None  # damaged: the events are still there to fold
    return Loaded(
        state,
        snapshot.version,
        MappingProxyType(recent),
        snapshot.last_recorded_at,
        snapshot.first_recorded_at,
    )


def in_current_schema(events: EventRegistry, envelope: EventEnvelope) -> EventEnvelope:
    """The envelope with its data upcast to the current schema version of its type."""
    current = events.current_version(envelope.type)
    if envelope.schema_version == current:
        return envelope
    data = dict(events.upcast(envelope.type, envelope.data, envelope.schema_version))
    return replace(envelope, data=data, schema_version=current)
