"""Stream records of the events table delivered to a projection: decode, apply, report.

An adapter between Lambda's DynamoDB Streams batches and the pure projections: it decodes each
record into a commit, applies the batch as a whole (coalesced: one write per read row), and
answers which records failed, by sequence number, so that Lambda retries from the first one.
Every commit gets one log line with the ids of the command that caused it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from orders_core import telemetry
from orders_core.envelope import Commit
from orders_core.projections.base import Projection
from orders_core.projections.fanout import Delivery
from orders_core.store.stream_records import commit_from_stream_record

SERVICE = "orders-projections"
StreamRecord = Mapping[str, Any]


class ProjectionLog(Protocol):
    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


class LagRecorder(Protocol):
    def record_lag(self, now_ms: int, oldest_record_ms: int | None) -> None: ...


def sequence_number(record: StreamRecord) -> str:
    return str(record.get("dynamodb", {}).get("SequenceNumber", ""))


def project_records(
    records: Sequence[StreamRecord], target: Projection, log: ProjectionLog
) -> dict[str, Exception]:
    """Apply the records' commits to `target`; the failed records' sequence numbers, with why."""
    errors: dict[str, Exception] = {}
    commits: list[Commit] = []
    sequence_of_commit: list[str] = []
    for record in records:
        try:
            commit = commit_from_stream_record(record)
        except Exception as error:  # a record we cannot read is a poison record: report it
            errors[sequence_number(record)] = error
            continue
        if commit is not None:
            commits.append(commit)
            sequence_of_commit.append(sequence_number(record))
    unreadable = len(errors)
    failures = target.process(commits)
    for position, failure in failures.items():
        errors.setdefault(sequence_of_commit[position], failure)
    _report(target.name, commits, failures, unreadable, log)
    return errors


def record_lag(records: Sequence[StreamRecord], target: LagRecorder) -> None:
    """How far behind the stream the batch ran (its oldest record's age): a metric, and the
    target's own (bounded) record for operators."""
    times = [r.get("dynamodb", {}).get("ApproximateCreationDateTime") for r in records]
    known = [float(t) for t in times if t is not None]
    now_ms = int(time.time() * 1000)
    oldest_ms = int(min(known) * 1000) if known else None
    if oldest_ms is not None:
        with telemetry.invocation_metrics(SERVICE) as metrics:
            metrics.milliseconds("ProjectionLag", max(0, now_ms - oldest_ms))
    target.record_lag(now_ms, oldest_ms)


def report_parking(deliveries: Sequence[Delivery], log: ProjectionLog) -> None:
    """One warning per stream a read model parked, and the ParkedCommits metric per read model
    (the stack alarms on it)."""
    for delivery in deliveries:
        if not delivery.parked:
            continue
        with telemetry.invocation_metrics(SERVICE, projection=delivery.projection) as metrics:
            metrics.count("ParkedCommits", sum(len(v) for v in delivery.parked.values()))
        for stream_id, versions in delivery.parked.items():
            log.warning(
                "commits parked",
                extra={
                    "projection": delivery.projection,
                    "stream_id": stream_id,
                    "versions": versions,
                    "error": delivery.errors.get(stream_id, ""),
                },
            )


def _report(
    name: str, commits: list[Commit], failures: dict[int, Exception], unreadable: int, log: ProjectionLog
) -> None:
    with telemetry.invocation_metrics(SERVICE, projection=name) as metrics:
        projected = 0
        for position, commit in enumerate(commits):
            meta = commit.metadata
            fields = {
                "projection": name,
                "stream_id": commit.stream_id,
                "first_version": commit.first_version,
                "last_version": commit.last_version,
                "correlation_id": meta.correlation_id,
                "causation_id": meta.causation_id,
                "command_id": meta.command_id,
            }
            failure = failures.get(position)
            if failure is None:
                projected += len(commit.events)
                log.info("commit projected", extra=fields)
            else:
                log.warning("commit not projected", extra={**fields, "error": repr(failure)})
        if projected:
            metrics.count("EventsProjected", projected)
        if failures or unreadable:
            metrics.count("ProjectionFailures", len(failures) + unreadable)
        metrics.metadata("correlation_ids", list(dict.fromkeys(c.metadata.correlation_id for c in commits)))
