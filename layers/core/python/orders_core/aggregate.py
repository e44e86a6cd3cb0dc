"""What the application needs to know about an aggregate type: pure functions and names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

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

    def stream_id(self, aggregate_id: str) -> str:
        return f"{self.stream_prefix}{aggregate_id}"

    def aggregate_id(self, stream_id: str) -> str:
        return stream_id.removeprefix(self.stream_prefix)

    def fold(self, state: State, events: Sequence[DomainEvent]) -> State:
        for event in events:
            state = self.evolve(state, event)
        return state
