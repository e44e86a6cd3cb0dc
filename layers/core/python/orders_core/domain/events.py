"""Base class of domain events, and the registry that turns stored events back into them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from orders_core.envelope import NewEvent


class EventPart(BaseModel):
    """A value nested inside an event (a line, an address): immutable, no extra fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DomainEvent(BaseModel):
    """A fact, named in the past tense. Money fields are Decimal; stored as strings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def to_new_event(self) -> NewEvent:
        return NewEvent(
            type=self.event_type,
            schema_version=self.schema_version,
            data=self.model_dump(mode="json"),
        )


class EventRegistry:
    """Maps stored (type, data) back to domain event classes."""

    def __init__(self, event_classes: Iterable[type[DomainEvent]]) -> None:
        self._classes: dict[str, type[DomainEvent]] = {cls.event_type: cls for cls in event_classes}

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._classes

    def load(self, event_type: str, data: Mapping[str, Any]) -> DomainEvent:
        try:
            cls = self._classes[event_type]
        except KeyError:
            raise ValueError(f"unknown event type {event_type!r}") from None
        return cls.model_validate(data)
