"""Base class of domain events, and the registry that turns stored events back into them.

Events are stored forever, but their classes change. Each event type carries a schema
version; an event stored at an older version is turned into the current one by a chain of
upcasters (version n -> n+1), pure functions declared next to the event. Every reader goes
through `EventRegistry.load(type, data, schema_version)`, so aggregates, projections,
rebuilds, history and temporal queries all see the current shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from orders_core.envelope import NewEvent


class EventPart(BaseModel):
    """A value nested inside an event (a line, an address): immutable, no extra fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PastSchema(BaseModel):
    """The shape an event type had at an older schema version.

    Frozen and closed, so an upcaster sees exactly what was stored, and the event catalog can
    list the fields of every version that may still be in the events table.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class DomainEvent(BaseModel):
    """A fact, named in the past tense. Money fields are Decimal; stored as strings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    # Bump it (and add an upcaster from the previous version) whenever the fields change.
    schema_version: ClassVar[int] = 1

    def to_new_event(self) -> NewEvent:
        return NewEvent(
            type=self.event_type,
            schema_version=self.schema_version,
            data=self.model_dump(mode="json"),
        )


Old = TypeVar("Old", bound=PastSchema)


@dataclass(frozen=True)
class Upcaster(Generic[Old]):
    """Turns the stored data of `event_type` at `from_version` into data of `from_version + 1`.

    `schema` is the shape of `from_version`: stored data is validated against it before
    `upcast` runs. `example` is a payload as it was stored at that version: the catalog
    check runs it through the whole chain, so a broken hop fails CI, not a reader.
    """

    event_type: str
    from_version: int
    schema: type[Old]
    upcast: Callable[[Old], Mapping[str, Any]]
    example: Mapping[str, Any]


class UnknownEvent(ValueError):
    """A stored event this code cannot read: unknown type, or a version with no upcaster path."""


@dataclass(frozen=True)
class CatalogEntry:
    """One (type, version) an events table may hold, with the model that describes it."""

    event_type: str
    version: int
    schema: type[BaseModel]
    current: bool
    # A payload as stored at this version (older versions only).
    example: Mapping[str, Any] | None = None


class EventRegistry:
    """Maps stored (type, schema_version, data) back to domain event classes, upcasting on the way."""

    def __init__(
        self, event_classes: Iterable[type[DomainEvent]], upcasters: Iterable[Upcaster[Any]] = ()
    ) -> None:
        self._classes: dict[str, type[DomainEvent]] = {cls.event_type: cls for cls in event_classes}
        self._upcasters: dict[tuple[str, int], Upcaster[Any]] = {}
        # Kept, not raised, so that the catalog check can report every problem at once.
        self._duplicates: list[tuple[str, int]] = []
        for upcaster in upcasters:
            key = (upcaster.event_type, upcaster.from_version)
            if key in self._upcasters:
                self._duplicates.append(key)
            self._upcasters[key] = upcaster

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._classes

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def current_version(self, event_type: str) -> int:
        return self._class(event_type).schema_version

    def _class(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._classes[event_type]
        except KeyError:
            raise UnknownEvent(f"unknown event type {event_type!r}") from None

    def upcast(self, event_type: str, data: Mapping[str, Any], schema_version: int) -> Mapping[str, Any]:
        """The data of a stored event in the current schema of its type."""
        current = self.current_version(event_type)
        if schema_version > current:
            # Written by newer code (a deploy in progress): refuse rather than misread.
            raise UnknownEvent(
                f"{event_type} v{schema_version} is newer than this code understands (v{current})"
            )
        if schema_version < 1:
            raise UnknownEvent(f"{event_type} has no schema version {schema_version}")
        version = schema_version
        while version < current:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnknownEvent(f"no upcaster from {event_type} v{version} to v{version + 1}")
            data = step.upcast(step.schema.model_validate(data))
            version += 1
        return data

    def load(self, event_type: str, data: Mapping[str, Any], schema_version: int) -> DomainEvent:
        """The domain event a stored event means today: upcast to the current version, then validated."""
        cls = self._class(event_type)
        if schema_version != cls.schema_version:
            data = self.upcast(event_type, data, schema_version)
        return cls.model_validate(data)

    # -- the catalog ---------------------------------------------------------------------------

    def catalog(self) -> list[CatalogEntry]:
        """Every (type, version) that stored events may carry, oldest version first."""
        entries: list[CatalogEntry] = []
        for event_type, cls in self._classes.items():
            for version in range(1, cls.schema_version):
                step = self._upcasters.get((event_type, version))
                if step is not None:
                    entries.append(
                        CatalogEntry(event_type, version, step.schema, current=False, example=step.example)
                    )
            entries.append(CatalogEntry(event_type, cls.schema_version, cls, current=True))
        return entries

    def problems(self) -> list[str]:
        """What would make some stored event unreadable; empty when every version has a path."""
        found = [f"{t} has two upcasters from v{v}" for t, v in self._duplicates]
        for event_type, version in self._upcasters:
            if event_type not in self._classes:
                found.append(f"upcaster for unknown event type {event_type} (from v{version})")
            elif not 1 <= version < self._classes[event_type].schema_version:
                found.append(
                    f"upcaster from {event_type} v{version} is outside 1..v"
                    f"{self._classes[event_type].schema_version - 1}"
                )
        for event_type, cls in self._classes.items():
            for version in range(1, cls.schema_version):
                step = self._upcasters.get((event_type, version))
                if step is None:
                    found.append(f"{event_type} v{version} has no upcaster to v{version + 1}")
                    continue
                try:
                    self.load(event_type, step.example, version)
                except (UnknownEvent, ValidationError) as error:
                    found.append(
                        f"{event_type} v{version} example does not reach v{cls.schema_version}: {error}"
                    )
        return found
