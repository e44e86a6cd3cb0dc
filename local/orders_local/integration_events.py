"""Integration events on one machine: the stack's bus on moto's EventBridge, the publisher as the
events stream's second reader, and a queue that `orders events` reads what is published from.

`LocalIntegrationEvents` stands in for infra/integration_events.py: it creates the bus and its
archive (moto keeps the archive's events; its replays are not worth relying on), and a rule that
copies every event of source `orders` into a followers' queue, as any consumer's rule would. A
StreamPoller of its own (its own name, so its own checkpoints: an independent reader, like the
stack's second event source mapping) runs the publisher function's handler over the events
table's stream. While it runs, a state file (`~/.orders-local/integration-events.json`) says
where the queue is, so that `orders events --follow` in another terminal can find it.

`follow()` prints the events the queue holds, one line each (or the event's JSON), deleting them
as it goes, and with `keep_following` waits for more until stopped. The queue has one reader at a
time in mind: two followers would share its messages between them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from integration_publisher.handler import handler_for

from orders_core import composition
from orders_core.integration.eventbridge import EventBridgeBus
from orders_core.integration.events import SOURCE
from orders_core.integration.port import EventBus
from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    PollerSettings,
    StreamPoller,
    prepare_reader,
    sqs_on_failure,
)

logger = logging.getLogger(__name__)

# As the stack's mapping (infra/integration_events.py): batches of 100, bisect. Retries end after 5
# here (the stack retries until a record is 24 h old, which the local poller does not model): a
# record that keeps failing goes to the failure queue instead of holding the stream for good.
SETTINGS = PollerSettings(
    batch_size=100, maximum_retry_attempts=5, poll_interval_seconds=0.05, idle_poll_max_seconds=0.25
)
POLLER_NAME = "integration-publisher"
STATE_FILE_NAME = "integration-events.json"
# Credentials moto accepts, for a follower in a process that has none of its own.
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# A follower's long poll: short enough that it notices a stop soon.
FOLLOW_WAIT_SECONDS = 1


def default_state_file() -> Path:
    # Resolved per call, not at import, so a changed HOME (tests) is honoured.
    return Path.home() / ".orders-local" / STATE_FILE_NAME


@dataclass(frozen=True)
class LocalBus:
    """Where the local integration events are: what the state file holds."""

    endpoint_url: str | None
    region: str
    bus_name: str
    bus_arn: str
    archive_name: str
    queue_url: str
    pid: int

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)  # a follower never reads half a file

    @classmethod
    def read(cls, path: Path) -> LocalBus:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class LocalNames:
    """The local resources' names, from the table prefix (`orders` -> the bus `orders-local`, as the
    stack names its bus `orders-<stage>`)."""

    bus: str
    archive: str
    followers_rule: str
    followers_queue: str
    failure_queue: str
    checkpoint_table: str

    @classmethod
    def for_prefix(cls, prefix: str) -> LocalNames:
        return cls(
            bus=f"{prefix}-local",
            archive=f"{prefix}-local-events",
            followers_rule=f"{prefix}-local-followers",
            followers_queue=f"{prefix}-integration-events",
            failure_queue=f"{prefix}-integration-failures",
            checkpoint_table=f"{prefix}-checkpoints",
        )


class LocalIntegrationEvents:
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        events_table: str,
        table_prefix: str = "orders",
        region: str | None = None,
        state_file: Path | None = None,
        event_bus: EventBus | None = None,
        settings: PollerSettings = SETTINGS,
    ) -> None:
        """``event_bus`` stands in for the EventBridge adapter (tests put a faulty one in between)."""
        self._endpoint_url = endpoint_url
        self._events_table = events_table
        self.names = LocalNames.for_prefix(table_prefix)
        self._region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._state_file = state_file or default_state_file()
        self._event_bus = event_bus
        self._settings = settings
        self.poller: StreamPoller | None = None
        self.bus: LocalBus | None = None
        self.archive_arn = ""
        self.failure_queue_url = ""

    def _client(self, service: Any) -> Any:
        return boto3.client(service, endpoint_url=self._endpoint_url, region_name=self._region)

    def start(self, *, poll_in_background: bool = True) -> LocalBus:
        """Create what is missing (an endpoint that kept them is reused), start the publisher's
        poller (or leave it to ``drain()``), and write the state file."""
        events, sqs, dynamodb = self._client("events"), self._client("sqs"), self._client("dynamodb")
        names = self.names
        with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
            events.create_event_bus(Name=names.bus)
        bus_arn = events.describe_event_bus(Name=names.bus)["Arn"]
        pattern = json.dumps({"source": [SOURCE]})
        with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
            events.create_archive(ArchiveName=names.archive, EventSourceArn=bus_arn, EventPattern=pattern)
        self.archive_arn = events.describe_archive(ArchiveName=names.archive)["ArchiveArn"]
        queue_url = sqs.create_queue(QueueName=names.followers_queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        queue_arn = attributes["Attributes"]["QueueArn"]
        rule = events.put_rule(Name=names.followers_rule, EventBusName=names.bus, EventPattern=pattern)
        # What AWS needs for a rule to deliver to a queue (moto does not check it): the queue lets
        # EventBridge send, for this rule only.
        policy = _queue_policy(queue_arn, rule["RuleArn"])
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
        target = {"Id": "followers", "Arn": queue_arn}
        events.put_targets(Rule=names.followers_rule, EventBusName=names.bus, Targets=[target])
        self.failure_queue_url = prepare_reader(dynamodb, sqs, names.checkpoint_table, names.failure_queue)
        stream_arn = dynamodb.describe_table(TableName=self._events_table)["Table"]["LatestStreamArn"]

        bus = self._event_bus or EventBridgeBus(events, names.bus)
        publisher = composition.Root(composition.Settings(), event_bus=bus).integration_publisher
        self.poller = StreamPoller(
            POLLER_NAME,
            streams_client=self._client("dynamodbstreams"),
            stream_arn=stream_arn,
            handler=handler_for(publisher),
            checkpoints=DynamoDBCheckpointStore(dynamodb, names.checkpoint_table),
            on_failure=sqs_on_failure(sqs, self.failure_queue_url),
            settings=self._settings,
            region=self._region,
        )
        if poll_in_background:
            self.poller.start()
        self.bus = LocalBus(
            endpoint_url=self._endpoint_url,
            region=self._region,
            bus_name=names.bus,
            bus_arn=bus_arn,
            archive_name=names.archive,
            queue_url=queue_url,
            pid=os.getpid(),
        )
        self.bus.write(self._state_file)
        logger.info("integration events: %s publishes to %s (follow: %s)", stream_arn, bus_arn, queue_url)
        return self.bus

    def drain(self, timeout: float = 10.0) -> None:
        """Poll until a poll finds nothing new; TimeoutError if records keep coming."""
        if self.poller is None:
            raise RuntimeError("LocalIntegrationEvents is not started")
        self.poller.drain(timeout)

    def stop(self) -> None:
        """Stop the poller and remove the state file if it is still this process's."""
        if self.poller is not None:
            self.poller.stop()
        self.poller = None
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError, KeyError):
            if self.bus is not None and LocalBus.read(self._state_file) == self.bus:
                self._state_file.unlink()
        self.bus = None


def _queue_policy(queue_arn: str, rule_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
    )


# -- following ----------------------------------------------------------------------------------------


def event_line(event: Mapping[str, Any]) -> str:
    """A published event as one line:
    `<recorded_at> <type> <stream> v<version> <event_id> correlation=<correlation_id>`."""
    detail = event.get("detail") or {}
    return (
        f"{detail.get('recorded_at', event.get('time', '?'))} {event.get('detail-type', '?')} "
        f"{detail.get('stream_id', '?')} v{detail.get('version', '?')} {detail.get('event_id', '?')} "
        f"correlation={detail.get('correlation_id', '?')}"
    )


def _order(event: Mapping[str, Any]) -> tuple[str, str, int]:
    detail = event.get("detail") or {}
    version = detail.get("version")
    return str(detail.get("recorded_at", "")), str(detail.get("stream_id", "")), int(version or 0)


def follow(
    bus: LocalBus,
    out: TextIO,
    *,
    keep_following: bool,
    as_json: bool = False,
    stop: threading.Event | None = None,
    wait_seconds: int = FOLLOW_WAIT_SECONDS,
    sqs_client: Any = None,
) -> int:
    """Print (and take off the queue) what was published, oldest first within each read; with
    ``keep_following`` wait for more until ``stop`` is set (or Ctrl-C). Without it, stop at the
    first read that waited ``wait_seconds`` for nothing. How many were printed."""
    credentials: dict[str, Any] = MOTO_CREDENTIALS if bus.endpoint_url else {}
    sqs: Any = sqs_client or boto3.client(
        "sqs", endpoint_url=bus.endpoint_url, region_name=bus.region, **credentials
    )
    printed = 0
    while stop is None or not stop.is_set():
        reply = sqs.receive_message(
            QueueUrl=bus.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        messages = reply.get("Messages", [])
        if not messages:
            if keep_following:
                continue
            return printed
        received = [(json.loads(m["Body"]), m) for m in messages]
        for event, _ in sorted(received, key=lambda pair: _order(pair[0])):
            print(json.dumps(event, separators=(",", ":")) if as_json else event_line(event), file=out)
            printed += 1
        out.flush()
        sqs.delete_message_batch(
            QueueUrl=bus.queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                for n, (_, message) in enumerate(received)
            ],
        )
    return printed
