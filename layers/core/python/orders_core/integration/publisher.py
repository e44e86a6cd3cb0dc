"""A batch of the events stream's records, published on the event bus at least once.

The second reader of the events stream (the projector is the first) hands each batch here. Every
event of every commit becomes one entry (orders_core.integration.events), in stream order; the
entries go out in PutEvents requests of at most 10 entries and 256 KB, one request at a time, and
no request holds two commits of one stream.

At least once: entries a request did not take (FailedEntryCount, an ErrorCode each) are sent
again, a bounded number of times with a growing pause; if some still fail, publishing stops
there and that entry's record and every later one are reported failed, so Lambda delivers them
again (ReportBatchItemFailures): no commit of a stream goes out before the stream's earlier
commits are all out. (Within one commit, an event the bus refused goes out after its siblings
that it took.) Entries of those records that did go out will go out again: consumers drop
duplicates by `event_id`. A record that cannot become entries (an event this code cannot read, one too large
for the bus) stops publishing the same way, and is retried until it expires from the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orders_core import telemetry
from orders_core.integration.events import BusEntry, entries_of, requests_of
from orders_core.integration.port import EntryFailure, EventBus, EventBusUnavailable
from orders_core.store.stream_records import commit_from_stream_record

SERVICE = "orders-integration-events"
StreamRecord = Mapping[str, Any]

# Sends of one request's failed entries before their record is given back to Lambda; the SDK's
# client retries throttled requests on its own beneath this (composition.events_client).
PUBLISH_ATTEMPTS = 3
FIRST_PAUSE_SECONDS = 0.2


class PublishLog(Protocol):
    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


class EntriesNotPublished(Exception):
    """The bus kept refusing entries of this record after every attempt."""


class HeldBack(Exception):
    """Not published in this delivery: an earlier record of the batch failed, and this one waits
    behind it so that a stream's events never go out past a gap."""


def sequence_number(record: StreamRecord) -> str:
    return str(record.get("dynamodb", {}).get("SequenceNumber", ""))


@dataclass
class PublishOutcome:
    """What one batch came to."""

    published: int = 0  # entries the bus took (a resent entry counts once)
    resent: int = 0  # entries sent again after the bus refused them
    commits: int = 0  # commits whose events all went out
    correlation_ids: list[str] = field(default_factory=list)
    # Sequence number -> why, for the first record that failed and every record after it.
    failures: dict[str, Exception] = field(default_factory=dict)
    # The first of them (Lambda delivers the batch again from it), and why it failed.
    first_failed: str | None = None
    first_failure: Exception | None = None


class IntegrationPublisher:
    def __init__(
        self,
        bus: EventBus,
        *,
        attempts: int = PUBLISH_ATTEMPTS,
        first_pause_seconds: float = FIRST_PAUSE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._bus = bus
        self._attempts = attempts
        self._first_pause = first_pause_seconds
        self._sleep = sleep

    def publish_records(self, records: Sequence[StreamRecord]) -> PublishOutcome:
        outcome = PublishOutcome()
        entries: list[BusEntry] = []
        record_of_entry: list[int] = []
        commit_of_entry: list[tuple[str, int]] = []
        stop_at, why = len(records), None
        for position, record in enumerate(records):
            try:
                commit = commit_from_stream_record(record)
                events = entries_of(commit) if commit is not None else []
            except Exception as error:  # an unreadable record: everything from it on waits
                stop_at, why = position, error
                break
            if commit is not None and events:
                outcome.correlation_ids.append(commit.metadata.correlation_id)
            entries += events
            record_of_entry += [position] * len(events)
            if commit is not None:
                commit_of_entry += [(commit.stream_id, commit.first_version)] * len(events)
        for request in requests_of(entries, commit_of_entry):
            failed = self._publish(request, entries, outcome)
            if failed:
                position, failure = min(((record_of_entry[i], f) for i, f in failed), key=lambda p: p[0])
                if position < stop_at:
                    stop_at, why = position, _not_published(failure)
                break
        outcome.commits = len({p for p in record_of_entry if p < stop_at})
        outcome.correlation_ids = list(dict.fromkeys(outcome.correlation_ids))
        if why is not None:
            outcome.first_failed, outcome.first_failure = sequence_number(records[stop_at]), why
            held = HeldBack(f"held back behind record {sequence_number(records[stop_at])}: {why}")
            for position in range(stop_at, len(records)):
                outcome.failures[sequence_number(records[position])] = why if position == stop_at else held
        return outcome

    def _publish(
        self, request: list[int], entries: Sequence[BusEntry], outcome: PublishOutcome
    ) -> list[tuple[int, EntryFailure]]:
        """Send one request's entries until the bus took them all or the attempts ran out; the
        entries it still refused (index into `entries`, the last failure)."""
        pending = list(request)
        failures: list[EntryFailure] = []
        for attempt in range(self._attempts):
            if attempt:
                outcome.resent += len(pending)
                self._sleep(self._first_pause * 2 ** (attempt - 1))
            try:
                failures = self._bus.publish([entries[i] for i in pending])
            except EventBusUnavailable as error:
                failures = [EntryFailure(n, "Unavailable", str(error)) for n in range(len(pending))]
            outcome.published += len(pending) - len(failures)
            pending = [pending[f.position] for f in failures]
            if not pending:
                return []
        return list(zip(pending, failures, strict=True))


def _not_published(failure: EntryFailure) -> EntriesNotPublished:
    return EntriesNotPublished(f"the bus refused an entry: {failure.error_code} {failure.message}".rstrip())


def report(outcome: PublishOutcome, records: int, log: PublishLog) -> None:
    """One log line per batch (and a warning when records go back to the stream), and the
    EventsPublished and PublishFailures metrics the stack alarms on."""
    with telemetry.invocation_metrics(SERVICE) as metrics:
        if outcome.published:
            metrics.count("EventsPublished", outcome.published)
        if outcome.resent:
            metrics.count("EntriesResent", outcome.resent)
        if outcome.failures:
            metrics.count("PublishFailures", len(outcome.failures))
        metrics.metadata("correlation_ids", outcome.correlation_ids)
    fields = {
        "records": records,
        "commits": outcome.commits,
        "published": outcome.published,
        "resent": outcome.resent,
    }
    if outcome.failures:
        log.warning(
            "records not published, delivered again from the first",
            extra={
                **fields,
                "failed_records": len(outcome.failures),
                "first_sequence_number": outcome.first_failed,
                "error": repr(outcome.first_failure),
            },
        )
    else:
        log.info("batch published", extra=fields)
