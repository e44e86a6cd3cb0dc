"""What a stored event becomes on the event bus, and the PutEvents limits it must fit.

Each event of a commit is one entry: Source `orders`, DetailType the event type, Time the moment
it was recorded, and a Detail that carries the envelope's identity (event_id, the consumers' key to
drop duplicates), its place in its stream (stream_id, version), the schema version, the time, the
correlation id, and the event's data upcast to the current version of its type. The actor and the
command id stay inside: they say who asked, which is no business of other services.

Limits (Amazon EventBridge API reference, PutEvents, and "Calculating PutEvents event entry
size"): at most 10 entries per request; the request's entries together under 256 KB, each entry
counted as 14 bytes for Time plus the UTF-8 bytes of Source, DetailType and Detail (and of each
Resource, which we do not send).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orders_core.application.loading import in_current_schema
from orders_core.domain.aggregate import AggregateType
from orders_core.domain.inventory import PRODUCT
from orders_core.domain.orders import ORDER
from orders_core.envelope import Commit, EventEnvelope

SOURCE = "orders"
# The aggregates whose events are published. Other streams of the events table (a rebuild's
# catch-up markers) are the service's own business and never leave it.
PUBLISHED_AGGREGATES: tuple[AggregateType[Any, Any], ...] = (ORDER, PRODUCT)

MAX_ENTRIES_PER_REQUEST = 10
MAX_REQUEST_BYTES = 256 * 1024
# What EventBridge counts for an entry's Time parameter, whatever the time.
TIME_BYTES = 14

# The fields of every Detail besides `data`, in the order they are written (the JSON Schemas list
# them too, so that the contract and the code cannot drift apart).
ENVELOPE_FIELDS = ("event_id", "stream_id", "version", "schema_version", "recorded_at", "correlation_id")


@dataclass(frozen=True)
class BusEntry:
    """One PutEvents entry (the bus's name is the adapter's business)."""

    source: str
    detail_type: str
    detail: str  # a JSON object
    time: datetime

    @property
    def size(self) -> int:
        """The entry's size as EventBridge counts it against the 256 KB of a request."""
        return TIME_BYTES + sum(
            len(text.encode("utf-8")) for text in (self.source, self.detail_type, self.detail)
        )


class UnpublishableEvent(ValueError):
    """A stored event that cannot become an entry: too large for any request."""


def published_aggregate(stream_id: str) -> AggregateType[Any, Any] | None:
    """The aggregate a stream belongs to, if its events are published."""
    for aggregate in PUBLISHED_AGGREGATES:
        if stream_id.startswith(aggregate.stream_prefix):
            return aggregate
    return None


def detail_of(envelope: EventEnvelope) -> dict[str, Any]:
    """The Detail of an envelope already in the current schema of its type."""
    return {
        "event_id": envelope.event_id,
        "stream_id": envelope.stream_id,
        "version": envelope.version,
        "schema_version": envelope.schema_version,
        "recorded_at": envelope.recorded_at,
        "correlation_id": envelope.correlation_id,
        "data": dict(envelope.data),
    }


def parse_timestamp(text: str) -> datetime:
    """An envelope's recorded_at (orders_core.envelope.format_timestamp: RFC 3339, UTC) as a time."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def entry_of(envelope: EventEnvelope) -> BusEntry:
    entry = BusEntry(
        source=SOURCE,
        detail_type=envelope.type,
        detail=json.dumps(detail_of(envelope), separators=(",", ":"), ensure_ascii=False),
        time=parse_timestamp(envelope.recorded_at),
    )
    if entry.size > MAX_REQUEST_BYTES:
        # The domain keeps events far below this (an order has at most 200 lines); an event that
        # grew past it needs a claim check (the data in S3, a link on the bus), not a retry.
        raise UnpublishableEvent(
            f"{envelope.type} {envelope.stream_id} v{envelope.version} takes {entry.size} bytes on the "
            f"bus, over PutEvents' {MAX_REQUEST_BYTES} bytes per request"
        )
    return entry


def entries_of(commit: Commit) -> list[BusEntry]:
    """The commit's events as entries, in version order; none for a stream that is not published.

    Each event is upcast to the current version of its type and validated against it, so that
    nothing leaves the service that its JSON Schema does not describe (UnknownEvent or a pydantic
    ValidationError otherwise: the record is delivered again, and the iterator age alarms).
    """
    aggregate = published_aggregate(commit.stream_id)
    if aggregate is None:
        return []
    entries = []
    for envelope in commit.envelopes():
        current = in_current_schema(aggregate.events, envelope)
        aggregate.events.load(current.type, current.data, current.schema_version)
        entries.append(entry_of(current))
    return entries


def requests_of(
    entries: Sequence[BusEntry], commits: Sequence[tuple[str, int]] | None = None
) -> list[list[int]]:
    """The entries, in order, split into PutEvents requests (positions into `entries`): each of at
    most MAX_ENTRIES_PER_REQUEST entries and MAX_REQUEST_BYTES bytes.

    `commits` names each entry's commit (stream id, first version). A request then never holds two
    commits of one stream: EventBridge may take some entries of a request and refuse others, and a
    stream's later commit must not go out while an earlier one still waits for a retry.
    """
    requests: list[list[int]] = []
    current: list[int] = []
    size = 0
    commit_of_stream: dict[str, int] = {}
    for position, entry in enumerate(entries):
        stream, first_version = commits[position] if commits is not None else ("", 0)
        full = len(current) == MAX_ENTRIES_PER_REQUEST or size + entry.size > MAX_REQUEST_BYTES
        if current and (full or commit_of_stream.get(stream, first_version) != first_version):
            requests.append(current)
            current, size, commit_of_stream = [], 0, {}
        current.append(position)
        size += entry.size
        commit_of_stream[stream] = first_version
    if current:
        requests.append(current)
    return requests
