"""What the application needs to know about an aggregate type: pure functions and names."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from orders_core.domain.events import DomainEvent, EventRegistry

State = TypeVar("State")
Command = TypeVar("Command")


@dataclass(frozen=True)
class AggregateType(Generic[State, Command]):
    name: str
    stream_prefix: str
    initial_state: State
    decide: Callable[[State, Command], Sequence[DomainEvent]]
    evolve: Callable[[State, DomainEvent], State]
    events: EventRegistry
    # How the state travels in a snapshot (JSON-ready), and the version of that shape: a
    # snapshot of another version is ignored. Without both functions the type is never snapshotted.
    state_schema_version: int = 1
    state_to_snapshot: Callable[[State], Mapping[str, Any]] | None = None
    state_from_snapshot: Callable[[Mapping[str, Any]], State] | None = None

    @property
    def snapshots_supported(self) -> bool:
        return self.state_to_snapshot is not None and self.state_from_snapshot is not None

    def stream_id(self, aggregate_id: str) -> str:
        return f"{self.stream_prefix}{aggregate_id}"

    def aggregate_id(self, stream_id: str) -> str:
        return stream_id.removeprefix(self.stream_prefix)

    def fold(self, state: State, events: Sequence[DomainEvent]) -> State:
        for event in events:
            state = self.evolve(state, event)
        return state
