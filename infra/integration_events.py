"""Integration events: the stack's own event bus, its archive, and the publisher function that
feeds it from the events stream, as that stream's second reader (ADR 15)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.nag import XRAY_REASON
from infra.projections import LIST_STREAMS_REASON, on_failure_queue, read_events_stream
from infra.settings import Settings
from orders_core.integration.events import PUBLISHED_AGGREGATES, SOURCE

# The publisher's event source mapping reads the events stream as the projector's does
# (infra/projections.py says why each setting, with the documented limits): batches of up to 100
# records within 1 s, bisected on a function error, retried for as long as records live (24 h; a
# bus out of reach must not cost events), failures reported per record, and what is given up on
# sent to its own on-failure queue. It is the stream's second reader: DynamoDB Streams serves at
# most two per shard, so any further consumer subscribes to the bus, not to the stream.
#
# The function publishes one request of at most 10 entries at a time and retries refused entries
# 3 times (about 0.6 s of pauses), on a client with 2 s connect and 5 s read timeouts and 3 SDK
# attempts: a batch of 100 commits (some 300 events, 30 requests) stays far inside 60 s.
TIMEOUT = Duration.seconds(60)
# How long a consumer can go back with a replay. The events table is the record of everything;
# the archive is the consumers' way back after an outage or a bug of theirs, and 90 days covers a
# quarter's incidents at EventBridge's archive price (per GB stored and per GB archived).
ARCHIVE_RETENTION = Duration.days(90)


def stream_filter() -> dict[str, object]:
    """Lambda's filter on the mapping: new commits of published aggregates only. Commits are only
    ever inserted, and a rebuild's catch-up markers never leave the service; the function skips
    both as well (the local run does not filter), so the filter only saves invocations."""
    prefixes = [{"prefix": aggregate.stream_prefix} for aggregate in PUBLISHED_AGGREGATES]
    return {
        "eventName": lambda_.FilterRule.is_equal("INSERT"),
        "dynamodb": {"NewImage": {"stream_id": {"S": prefixes}}},
    }


class IntegrationEvents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: Layers,
        events_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        # Named per stage, so that consumers in other stacks and accounts can find it; rules on it
        # select this service's events by `source: ["orders"]` and `detail-type`.
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"orders-{settings.stage}")
        self.archive = self.bus.archive(
            "Archive",
            archive_name=f"orders-{settings.stage}-events",
            description="Every integration event the orders service published, for consumers' replays",
            event_pattern=events.EventPattern(source=[SOURCE]),
            retention=ARCHIVE_RETENTION,
        )
        # The stream positions (shard, sequence range) the mapping gave up on: 24 h old records.
        self.dead_letters = on_failure_queue(self, "the integration publisher's")
        self.handler = PythonFunction(
            self,
            "Publisher",
            package="integration_publisher",
            description="Integration events: events stream -> the event bus",
            layers=layers.all,
            environment={"INTEGRATION_EVENT_BUS": self.bus.event_bus_name},
            log_retention=settings.log_retention,
            timeout=TIMEOUT,
            any_resource_reason=f"{XRAY_REASON} {LIST_STREAMS_REASON}",
        )
        self.function = self.handler.function
        # events:PutEvents on this bus, nothing else: the function reads no table, only the stream.
        self.bus.grant_put_events_to(self.handler.role)
        self.mapping = read_events_stream(
            self.function, events_table, self.dead_letters, [lambda_.FilterCriteria.filter(stream_filter())]
        )
