"""Given / when / then for pure aggregates: past events, a command, the events it decides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from orders_core.domain.aggregate import AggregateType
from orders_core.domain.events import DomainEvent


class Scenario:
    def __init__(self, aggregate: AggregateType[Any, Any], history: Sequence[DomainEvent]) -> None:
        self._aggregate = aggregate
        self._state = aggregate.fold(aggregate.initial_state, history)
        self._command: Any = None

    def when(self, command: Any) -> Scenario:
        self._command = command
        return self

    def then(self, *expected: DomainEvent) -> list[DomainEvent]:
        decided = list(self._aggregate.decide(self._state, self._command))
        assert decided == list(expected)
        return decided

    def then_decided(self, count: int) -> list[DomainEvent]:
        decided = list(self._aggregate.decide(self._state, self._command))
        assert len(decided) == count
        return decided

    def then_refused(
        self, error: type[Exception], match: str | None = None
    ) -> pytest.ExceptionInfo[Exception]:
        with pytest.raises(error, match=match) as refused:
            self._aggregate.decide(self._state, self._command)
        return refused


def given(aggregate: AggregateType[Any, Any], *history: DomainEvent) -> Scenario:
    return Scenario(aggregate, history)
