"""Integration publisher function: adapter from the events stream's batches to the event bus.

The second reader of the events table's stream (DynamoDB Streams serves two per shard; the first
is the projector). Each batch goes to orders_core.integration.publisher, which publishes every
order and product event at least once; Powertools' BatchProcessor reports the records to deliver
again, from the first one the bus did not take.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from orders_core import composition
from orders_core.integration import publisher
from orders_core.integration.publisher import IntegrationPublisher

logger = Logger(service=publisher.SERVICE)


def handle_stream(event: dict[str, Any], context: Any, target: IntegrationPublisher) -> dict[str, Any]:
    records = event.get("Records", [])
    outcome = target.publish_records(records)
    publisher.report(outcome, len(records), logger)

    def record_handler(record: DynamoDBRecord) -> None:
        failure = outcome.failures.get((record.dynamodb.sequence_number if record.dynamodb else None) or "")
        if failure is not None:
            raise failure

    # A processor per batch: it keeps the batch's results, and the local poller shares this module.
    # A batch that failed whole (the bus out of reach) is reported record by record, not raised:
    # Lambda then retries it from its first record instead of bisecting it for nothing.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


def handler_for(target: IntegrationPublisher) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda-shaped handler bound to one publisher (the local run and tests build their own)."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_stream(event, context, target)

    return handle


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_stream(event, context, composition.root().integration_publisher)
