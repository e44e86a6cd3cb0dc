"""The event envelope, and the commit that carries one command's events.

One command produces one commit: its events share the commit's metadata (who, why, when),
so the metadata is stored once per commit and copied into each envelope on read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

JsonData = Mapping[str, Any]


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: sorts lexically in time order."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class NewEvent:
    """An event a command decided on, not yet stored."""

    type: str
    data: JsonData
    schema_version: int = 1
    event_id: str = field(default_factory=lambda: str(uuid4()))


@dataclass(frozen=True)
class CommitMetadata:
    """Who, why and when: shared by every event of one commit."""

    command_id: str
    correlation_id: str
    causation_id: str
    actor: str
    recorded_at: str
    # Hash of the request that produced the commit; lets a retried command with the
    # same id be told apart from a different request reusing that id.
    command_fingerprint: str = ""


@dataclass(frozen=True)
class EventEnvelope:
    event_id: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: JsonData
    recorded_at: str
    correlation_id: str
    causation_id: str
    command_id: str
    actor: str

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": dict(self.data),
            "recorded_at": self.recorded_at,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "command_id": self.command_id,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class Commit:
    """A stored commit: the events of one command, at versions first_version.. in order."""

    stream_id: str
    first_version: int
    events: tuple[NewEvent, ...]
    metadata: CommitMetadata

    @property
    def last_version(self) -> int:
        return self.first_version + len(self.events) - 1

    def envelopes(self) -> list[EventEnvelope]:
        meta = self.metadata
        return [
            EventEnvelope(
                event_id=event.event_id,
                stream_id=self.stream_id,
                version=self.first_version + offset,
                type=event.type,
                schema_version=event.schema_version,
                data=event.data,
                recorded_at=meta.recorded_at,
                correlation_id=meta.correlation_id,
                causation_id=meta.causation_id,
                command_id=meta.command_id,
                actor=meta.actor,
            )
            for offset, event in enumerate(self.events)
        ]


def envelopes_of(commits: Sequence[Commit]) -> list[EventEnvelope]:
    return [envelope for commit in commits for envelope in commit.envelopes()]
