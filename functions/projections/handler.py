"""Projection function: applies a batch of events-table stream records to one read model.

The batch is applied as a whole (coalesced: one write per read row), then Powertools'
BatchProcessor reports each record that failed, so Lambda retries from the first failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from orders_core import bootstrap, telemetry
from orders_core.envelope import Commit
from orders_core.projections.base import Projection, commit_from_stream_record
from orders_core.projections.live import LiveProjection

SERVICE = "orders-projections"
logger = Logger(service=SERVICE)

_projection: LiveProjection | None = None


def projection() -> LiveProjection:
    global _projection
    if _projection is None:
        _projection = bootstrap.live_projection(os.environ["PROJECTION_NAME"])
    return _projection


def use_projection(replacement: LiveProjection | None) -> None:
    """Let tests and the local run choose the projection (and so its stores)."""
    global _projection
    _projection = replacement


def handle_batch(event: dict[str, Any], context: Any, target: Projection) -> dict[str, Any]:
    records = event.get("Records", [])
    errors: dict[str, Exception] = {}
    commits: list[Commit] = []
    sequence_of_commit: list[str] = []
    for record in records:
        sequence = record.get("dynamodb", {}).get("SequenceNumber", "")
        try:
            commit = commit_from_stream_record(record)
        except Exception as error:  # a record we cannot read is a poison record: report it
            errors[sequence] = error
            continue
        if commit is not None:
            commits.append(commit)
            sequence_of_commit.append(sequence)
    unreadable = len(errors)
    failures = target.process(commits)
    for position, failure in failures.items():
        errors.setdefault(sequence_of_commit[position], failure)
    _report(target.name, commits, failures, unreadable)

    def record_handler(record: DynamoDBRecord) -> None:
        sequence = (record.dynamodb.sequence_number if record.dynamodb else None) or ""
        failure = errors.get(sequence)
        if failure is not None:
            logger.warning("record failed", sequence_number=sequence, error=repr(failure))
            raise failure

    # A processor per batch: it keeps the batch's results, and local pollers share this module.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


def _report(name: str, commits: list[Commit], failures: dict[int, Exception], unreadable: int) -> None:
    """One log line per commit, with the ids of the command that caused it, and the batch's metrics."""
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
                logger.info("commit projected", extra=fields)
            else:
                logger.warning("commit not projected", extra={**fields, "error": repr(failure)})
        if projected:
            metrics.count("EventsProjected", projected)
        if failures or unreadable:
            metrics.count("ProjectionFailures", len(failures) + unreadable)
        metrics.metadata("correlation_ids", list(dict.fromkeys(c.metadata.correlation_id for c in commits)))


def _oldest_record_ms(event: dict[str, Any]) -> int | None:
    times = [r.get("dynamodb", {}).get("ApproximateCreationDateTime") for r in event.get("Records", [])]
    known = [float(t) for t in times if t is not None]
    return int(min(known) * 1000) if known else None


def handle_live(event: dict[str, Any], context: Any, target: LiveProjection) -> dict[str, Any]:
    response = handle_batch(event, context, target)
    target.record_lag(int(time.time() * 1000), _oldest_record_ms(event))
    return response


def handler_for(target: LiveProjection) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda-shaped handler bound to one projection (the local run has them all in one process)."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_live(event, context, target)

    return handle


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_live(event, context, projection())
