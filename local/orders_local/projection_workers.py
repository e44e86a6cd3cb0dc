"""The projector's stream poller: the local stand-in for the stack's one event source mapping
that feeds every read model (functions/projections, orders_core.projections.fanout).

With ``own_process`` (what ``orders serve`` does when its functions run as instances) the poller
runs in a process of its own, ``python -m orders_local.projection_workers``, as the projector is
a function of its own on AWS: its boto3 parsing and its projections no longer take the GIL from
moto and the gateway. Same poller, checkpoints and failure queue either way; ``drain()`` asks it
to poll until the stream is read, wherever it runs.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any

import boto3
from projections.handler import handler_for

from orders_core import composition
from orders_local.helper_processes import READY, Helper, connect_to_main, send_or_exit
from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    PollerSettings,
    StreamPoller,
    prepare_reader,
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
START_TIMEOUT_SECONDS = 60.0

# Between the main process and the poller's: requests, and the answers to a drain.
_DRAIN, _DRAINED, _TIMED_OUT, _FAILED = "drain", "drained", "timed out", "failed"


class ProjectionWorkers:
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        events_table: str,
        checkpoint_table: str,
        failure_queue: str,
        settings: PollerSettings = SETTINGS,
        own_process: bool = False,
    ) -> None:
        if own_process and settings != SETTINGS:
            raise ValueError("a poller in its own process runs with the stack's SETTINGS")
        self._endpoint_url = endpoint_url
        self._events_table = events_table
        self._checkpoint_table = checkpoint_table
        self._failure_queue = failure_queue
        self._settings = settings
        self._own_process = own_process
        self.poller: StreamPoller | None = None  # in this process
        self.process: Helper | None = None  # or in its own
        self._line = threading.Lock()  # one drain at a time on the process's line
        self.failure_queue_url = ""

    def start(self) -> None:
        dynamodb: Any = boto3.client("dynamodb", endpoint_url=self._endpoint_url)
        sqs: Any = boto3.client("sqs", endpoint_url=self._endpoint_url)
        self.failure_queue_url = prepare_reader(dynamodb, sqs, self._checkpoint_table, self._failure_queue)
        stream_arn = dynamodb.describe_table(TableName=self._events_table)["Table"]["LatestStreamArn"]
        if self._own_process:
            self.process = Helper(
                "the projector's poller",
                __name__,
                stream_arn,
                self._checkpoint_table,
                self.failure_queue_url,
                self._endpoint_url or "",
            )
            self.process.wait_ready(START_TIMEOUT_SECONDS)
        else:
            self.poller = _start_poller(
                stream_arn, self._checkpoint_table, self.failure_queue_url, self._endpoint_url, self._settings
            )
        logger.info("the projector follows %s for every read model", stream_arn)

    def drain(self, timeout: float = 10.0) -> None:
        """Poll until a poll finds nothing new; TimeoutError if records keep coming."""
        if self.poller is not None:
            self.poller.drain(timeout)
        if self.process is not None:
            with self._line:
                self.process.connection.send((_DRAIN, timeout))
                outcome, detail = self.process.connection.recv()
            if outcome == _TIMED_OUT:
                raise TimeoutError(detail)
            if outcome == _FAILED:
                raise RuntimeError(f"the projector's poller failed to drain: {detail}")

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        self.poller = None
        if self.process is not None:
            # It stops its poller when it reads the end of its line (a batch in hand is finished).
            self.process.stop(timeout=15.0)
        self.process = None


def _start_poller(
    stream_arn: str,
    checkpoint_table: str,
    failure_queue_url: str,
    endpoint_url: str | None,
    settings: PollerSettings,
) -> StreamPoller:
    dynamodb: Any = boto3.client("dynamodb", endpoint_url=endpoint_url)
    streams: Any = boto3.client("dynamodbstreams", endpoint_url=endpoint_url)
    sqs: Any = boto3.client("sqs", endpoint_url=endpoint_url)
    poller = StreamPoller(
        POLLER_NAME,
        streams_client=streams,
        stream_arn=stream_arn,
        handler=handler_for(composition.root().projector),
        checkpoints=DynamoDBCheckpointStore(dynamodb, checkpoint_table),
        on_failure=sqs_on_failure(sqs, failure_queue_url),
        settings=settings,
    )
    poller.start()
    return poller


def main(argv: Sequence[str]) -> int:
    """The poller's own process: start it, drain it when asked, stop it when the line closes."""
    connection, (stream_arn, checkpoint_table, failure_queue_url, endpoint_url) = connect_to_main(argv)
    composition.use(composition.Root(composition.Settings.from_environ()))
    poller = _start_poller(stream_arn, checkpoint_table, failure_queue_url, endpoint_url or None, SETTINGS)
    send_or_exit(connection, READY)
    try:
        while True:
            try:
                request, timeout = connection.recv()
            except (EOFError, OSError):
                return 0  # the main process closed the line: stopping, or gone
            if request != _DRAIN:
                raise ValueError(f"unknown request {request!r}")
            try:
                poller.drain(timeout)
                reply = (_DRAINED, "")
            except TimeoutError as exc:
                reply = (_TIMED_OUT, str(exc))
            except Exception as exc:
                logger.exception("the projector's poller failed to drain")
                reply = (_FAILED, f"{type(exc).__name__}: {exc}")
            send_or_exit(connection, reply)
    finally:
        poller.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
