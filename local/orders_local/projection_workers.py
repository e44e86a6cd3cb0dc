"""The projector's stream poller: the local stand-in for the stack's one event source mapping
that feeds every read model (functions/projections, orders_core.projections.fanout)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import boto3
from projections.handler import handler_for

from orders_core import composition
from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    PollerSettings,
    StreamPoller,
    checkpoint_table_request,
    sqs_on_failure,
)

logger = logging.getLogger(__name__)

# As the stack configures the event source mapping (infra/projections.py): batches of 100, 5
# retries, bisect. No batching window here: the local run keeps a command visible in its view
# within half a second; an idle stream is polled at most every 0.25 s.
SETTINGS = PollerSettings(
    batch_size=100, maximum_retry_attempts=5, poll_interval_seconds=0.05, idle_poll_max_seconds=0.25
)
POLLER_NAME = "projector"


class ProjectionWorkers:
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        events_table: str,
        checkpoint_table: str,
        failure_queue: str,
        settings: PollerSettings = SETTINGS,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._events_table = events_table
        self._checkpoint_table = checkpoint_table
        self._failure_queue = failure_queue
        self._settings = settings
        self.poller: StreamPoller | None = None
        self.failure_queue_url = ""

    def start(self) -> None:
        dynamodb: Any = boto3.client("dynamodb", endpoint_url=self._endpoint_url)
        streams: Any = boto3.client("dynamodbstreams", endpoint_url=self._endpoint_url)
        sqs: Any = boto3.client("sqs", endpoint_url=self._endpoint_url)
        # An external endpoint may have kept the table: then resume from the checkpoints it holds.
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(**checkpoint_table_request(self._checkpoint_table))
        self.failure_queue_url = sqs.create_queue(QueueName=self._failure_queue)["QueueUrl"]
        stream_arn = dynamodb.describe_table(TableName=self._events_table)["Table"]["LatestStreamArn"]
        self.poller = StreamPoller(
            POLLER_NAME,
            streams_client=streams,
            stream_arn=stream_arn,
            handler=handler_for(composition.root().projector),
            checkpoints=DynamoDBCheckpointStore(dynamodb, self._checkpoint_table),
            on_failure=sqs_on_failure(sqs, self.failure_queue_url),
            settings=self._settings,
        )
        self.poller.start()
        logger.info("the projector follows %s for every read model", stream_arn)

    def drain(self, timeout: float = 10.0) -> None:
        if self.poller is not None:
            self.poller.drain(timeout)

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        self.poller = None
