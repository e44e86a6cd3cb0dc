"""The live notifier's stream pollers: the local stand-in for the stack's two event source
mappings on the order view's and inventory's tables (infra/live_updates.py).

One StreamPoller per table (its own name, so its own checkpoints: each is the only reader of its
table's stream, as on AWS), both running the live notifier function's handler
(functions/live_notifier) with the composition root's notifier, whose pusher is an
`apigatewaymanagementapi` client pointed at `LIVE_CONNECTIONS_ENDPOINT` (the local LiveServer's
@connections API): the same code path as on AWS. Records the notifier gives up on go to a queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import boto3
from live_notifier.handler import handler_for

from orders_core import composition
from orders_core.live.notifier import LiveNotifier
from orders_core.projections import customer_orders, inventory
from orders_core.tables import CUSTOMER_ORDERS, INVENTORY, TableSpec
from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    PollerSettings,
    StreamPoller,
    prepare_reader,
    sqs_on_failure,
)

logger = logging.getLogger(__name__)

# As the stack's mappings (infra/live_updates.py): batches of 100, bisect, 10 retries, then the
# failure queue; from the newest record (nobody was connected to hear older ones). No batching
# window: a push follows its view within a poll.
SETTINGS = PollerSettings(
    batch_size=100,
    maximum_retry_attempts=10,
    poll_interval_seconds=0.05,
    idle_poll_max_seconds=0.25,
    starting_position="LATEST",
)
FOLLOWED: tuple[tuple[TableSpec, str], ...] = (
    (CUSTOMER_ORDERS, customer_orders.NAME),
    (INVENTORY, inventory.NAME),
)


def poller_name(spec: TableSpec) -> str:
    return f"live-notifier-{spec.key.replace('_', '-')}"


class LiveFeed:
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        table_names: Mapping[str, str],
        checkpoint_table: str,
        failure_queue: str,
        notifier: LiveNotifier | None = None,
        settings: PollerSettings = SETTINGS,
    ) -> None:
        """`table_names`: table name by TableSpec key (LocalSystem.table_names). `notifier`: the
        composition root's when None (built on start, after LIVE_CONNECTIONS_ENDPOINT is set)."""
        self._endpoint_url = endpoint_url
        self._table_names = dict(table_names)
        self._checkpoint_table = checkpoint_table
        self._failure_queue = failure_queue
        self._notifier = notifier
        self._settings = settings
        self.pollers: list[StreamPoller] = []
        self.failure_queue_url = ""

    def _client(self, service: Any) -> Any:
        return boto3.client(service, endpoint_url=self._endpoint_url)

    def start(self, *, poll_in_background: bool = True) -> None:
        dynamodb, sqs = self._client("dynamodb"), self._client("sqs")
        self.failure_queue_url = prepare_reader(dynamodb, sqs, self._checkpoint_table, self._failure_queue)
        notifier = self._notifier or composition.root().live_notifier
        tables = {self._table_names[spec.key]: name for spec, name in FOLLOWED}
        handler = handler_for(notifier, tables)
        streams = self._client("dynamodbstreams")
        for spec, _ in FOLLOWED:
            described = dynamodb.describe_table(TableName=self._table_names[spec.key])["Table"]
            poller = StreamPoller(
                poller_name(spec),
                streams_client=streams,
                stream_arn=described["LatestStreamArn"],
                handler=handler,
                checkpoints=DynamoDBCheckpointStore(dynamodb, self._checkpoint_table),
                on_failure=sqs_on_failure(sqs, self.failure_queue_url),
                settings=self._settings,
            )
            if poll_in_background:
                poller.start()
            self.pollers.append(poller)
            logger.info("live notifier follows %s", described["LatestStreamArn"])

    def drain(self, timeout: float = 10.0) -> None:
        """Poll every stream until a poll finds nothing new; TimeoutError if records keep coming."""
        for poller in self.pollers:
            poller.drain(timeout)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
