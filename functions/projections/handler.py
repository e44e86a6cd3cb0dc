"""Projector function: adapter from the events stream's batches to every registered read model.

The one reader of the events table's stream that read models use (DynamoDB Streams serves two
readers per shard; the other is kept for the outbound change feed). The batch goes to each read
model (orders_core.stream_delivery, orders_core.projections.fanout); a read model that fails on a
commit parks it; Powertools' BatchProcessor reports the records to deliver again only when
parking itself failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from orders_core import composition, stream_delivery
from orders_core.projections.base import Projection
from orders_core.projections.fanout import Projector

logger = Logger(service=stream_delivery.SERVICE)


def handle_batch(event: dict[str, Any], context: Any, target: Projection) -> dict[str, Any]:
    errors = stream_delivery.project_records(event.get("Records", []), target, logger)

    def record_handler(record: DynamoDBRecord) -> None:
        sequence = (record.dynamodb.sequence_number if record.dynamodb else None) or ""
        failure = errors.get(sequence)
        if failure is not None:
            logger.warning("record failed", sequence_number=sequence, error=repr(failure))
            raise failure

    # A processor per batch: it keeps the batch's results, and local pollers share this module.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


def handle_stream(event: dict[str, Any], context: Any, target: Projector) -> dict[str, Any]:
    response = handle_batch(event, context, target)
    stream_delivery.report_parking(target.last_deliveries, logger)
    stream_delivery.record_lag(event.get("Records", []), target)
    return response


def handler_for(target: Projector) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda-shaped handler bound to one projector (the local run and tests build their own)."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_stream(event, context, target)

    return handle


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_stream(event, context, composition.root().projector)
