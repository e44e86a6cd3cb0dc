"""Projection function: applies a batch of events-table stream records to one read model.

The batch is applied as a whole (coalesced: one write per read row), then Powertools'
BatchProcessor reports each record that failed, so Lambda retries from the first failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from orders_core import bootstrap
from orders_core.envelope import Commit
from orders_core.projections.base import Projection, commit_from_stream_record

logger = Logger(service="orders-projections")

_projection: Projection | None = None


def projection() -> Projection:
    global _projection
    if _projection is None:
        _projection = bootstrap.projection(os.environ["PROJECTION_NAME"])
    return _projection


def use_projection(replacement: Projection | None) -> None:
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
    for position, failure in target.process(commits).items():
        errors.setdefault(sequence_of_commit[position], failure)

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


def handler_for(target: Projection) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda-shaped handler bound to one projection (the local run has all three in one process)."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, target)

    return handle


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_batch(event, context, projection())
