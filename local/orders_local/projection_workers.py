"""One stream poller per projection: the local stand-in for the projections' event source mappings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import boto3
from projections.handler import handler_for

from orders_core import composition
from orders_core.projections.registry import NAMES
from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    PollerSettings,
    StreamPoller,
    checkpoint_table_request,
    sqs_on_failure,
)

logger = logging.getLogger(__name__)

# As the stack configures the event source mappings (see infra/): batches of 100, 5 retries, bisect.
SETTINGS = PollerSettings(batch_size=100, maximum_retry_attempts=5, poll_interval_seconds=0.1)


class ProjectionWorkers:
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        events_table: str,
        checkpoint_table: str,
        failure_queue: str,
        names: Sequence[str] = NAMES,
        settings: PollerSettings = SETTINGS,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._events_table = events_table
        self._checkpoint_table = checkpoint_table
        self._failure_queue = failure_queue
        self._names = tuple(names)
        self._settings = settings
        self.pollers: dict[str, StreamPoller] = {}
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
        checkpoints = DynamoDBCheckpointStore(dynamodb, self._checkpoint_table)
        for name in self._names:
            poller = StreamPoller(
                f"projection-{name}",
                streams_client=streams,
                stream_arn=stream_arn,
                handler=handler_for(composition.root().live_projection(name)),
                checkpoints=checkpoints,
                on_failure=sqs_on_failure(sqs, self.failure_queue_url),
                settings=self._settings,
            )
            poller.start()
            self.pollers[name] = poller
            logger.info("projection %s follows %s", name, stream_arn)

    def drain(self, timeout: float = 10.0) -> None:
        for poller in self.pollers.values():
            poller.drain(timeout)

    def stop(self) -> None:
        for poller in self.pollers.values():
            poller.stop()
        self.pollers = {}
