"""The projector: one function, fed by the events table's stream, that applies every batch to every
registered read model (ARCHITECTURE.md, "Read side")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.dynamodb import APPLY_ACTIONS, GAP_FILL_ACTIONS, PROJECTOR_CONTROL_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.nag import XRAY_REASON, acknowledge
from infra.settings import Settings
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, TableSpec

# How the projector's one event source mapping reads the events stream. DynamoDB Streams serves at
# most two readers per shard (more are throttled): read models share this one, and the second
# reader is kept for the outbound change feed. Registering a read model adds no reader.
#
# Documented limits (Lambda developer guide, "Lambda parameters for Amazon DynamoDB event source
# mappings", https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html, and the
# CreateEventSourceMapping API reference):
# - BatchSize: default 100, at most 10,000 (the CDK allows 1,000 for DynamoDB). 100 commits keep a
#   batch well inside the function's timeout; Lambda also ends a batch at 6 MB of payload.
# - MaximumBatchingWindowInSeconds: default 0, 0 to 300 s. Lambda invokes the function when the
#   window ends, the batch is full or the payload reaches 6 MB, whichever comes first. A 1 s window
#   trades lag for cost: on a quiet stream a batch then carries up to a second of commits, so the
#   writes a batch makes to shared rows (a day's sales, a product's totals) are paid once a second
#   instead of once per commit. Read models follow within about a second, which the API's
#   `min_version` wait (3 s) covers.
# - MaximumRetryAttempts: default -1, "infinite: failed records are retried until the record
#   expires"; an explicit count is 0 to 10,000. A read model's own failures are parked (not
#   retried), so only a store outage (or parking itself failing) fails a batch, and then retrying
#   is right for as long as the records live. -1 is the only value that does that: even 10,000
#   attempts run out in minutes when each fails fast (an AccessDenied after a bad deploy answers in
#   milliseconds), and then Lambda discards the records. The iterator age alarm calls for a person
#   after 5 minutes. (The CDK accepts only 0-10,000, so -1 is set on the template below.)
# - MaximumRecordAgeInSeconds: -1 or up to 604,800; "the data retention limit for DynamoDB Streams
#   is 24 hours", so 24 h is as long as a record can be retried at all.
# - BisectBatchOnFunctionError: a failed batch is split in two and retried; splitting does not use
#   up retries. With ReportBatchItemFailures the function names the first record to deliver again.
BATCH_SIZE = 100
MAX_BATCHING_WINDOW = Duration.seconds(1)
RETRY_ATTEMPTS = -1  # infinite: until MAX_RECORD_AGE
MAX_RECORD_AGE = Duration.hours(24)
DLQ_RETENTION = Duration.days(14)


def on_failure_queue(scope: Construct, reader: str) -> sqs.Queue:
    """Where a stream event source mapping sends what it gives up on: the shard and sequence range
    to replay, not the records themselves. ``reader``: whose mappings, for the acknowledgment."""
    queue = sqs.Queue(
        scope,
        "OnFailure",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue is itself the on-failure destination of {reader} stream event source mapping(s); "
        "nothing consumes it automatically, so it has no DLQ.",
    )
    return queue


def read_events_stream(
    function: lambda_.Function,
    events: dynamodb.ITable,
    dead_letters: sqs.IQueue,
    filters: Sequence[Mapping[str, object]] = (),
) -> lambda_.EventSourceMapping:
    """The function's one mapping on the events stream, with the settings above (the projector's
    and the integration publisher's alike). Grants the stream reads and sqs:SendMessage on the
    queue to the function's role."""
    function.add_event_source(
        sources.DynamoEventSource(
            events,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=BATCH_SIZE,
            max_batching_window=MAX_BATCHING_WINDOW,
            bisect_batch_on_error=True,
            max_record_age=MAX_RECORD_AGE,
            report_batch_item_failures=True,
            on_failure=sources.SqsDlq(dead_letters),
            filters=list(filters) or None,
        )
    )
    (mapping,) = [c for c in function.node.children if isinstance(c, lambda_.EventSourceMapping)]
    # The CDK's retry_attempts takes 0-10,000 only; -1 (the service default) is written out so
    # that the template says what it means.
    cfn_mapping = mapping.node.default_child
    assert isinstance(cfn_mapping, lambda_.CfnEventSourceMapping)
    cfn_mapping.maximum_retry_attempts = RETRY_ATTEMPTS
    return mapping


TIMEOUT = Duration.seconds(60)

LIST_STREAMS_REASON = (
    "dynamodb:ListStreams supports no resource-level permissions ('*' only); the event source "
    "mapping's grant adds it, and the stream reads themselves are scoped to the events table's stream."
)


@dataclass(frozen=True)
class ProjectionSpec:
    name: str  # the read model's name, as orders_core's registry knows it
    table: TableSpec  # the table it writes (every generation of it)

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


def registered_projections() -> tuple[ProjectionSpec, ...]:
    """The one list of read models: orders_core's registry. Registering one there gives it a place
    in the projector (its table's name and grants), a ParkedCommits alarm, and a place in the query,
    rebuild and admin functions; it adds no function and no stream reader."""
    from orders_core.projections.registry import REGISTRY

    return tuple(ProjectionSpec(r.name, r.table) for r in REGISTRY.values())


class Projections(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: Layers,
        events: dynamodb.ITable,
        control: dynamodb.ITable,
        read_tables: Mapping[TableSpec, dynamodb.ITable],
        projections: Sequence[ProjectionSpec],
    ) -> None:
        super().__init__(scope, construct_id)
        for projection in projections:
            if projection.table not in read_tables:
                raise ValueError(
                    f"projection {projection.name!r} writes {projection.table.key!r}, which is not in "
                    "orders_core.tables.READ_MODEL_TABLES (so the stack builds no such table)"
                )
        # The read models the projector feeds, and the tables they own (each once, in stack order).
        self.read_models: tuple[str, ...] = tuple(p.name for p in projections)
        owned = {p.table for p in projections}
        self.tables: dict[TableSpec, dynamodb.ITable] = {
            spec: table for spec, table in read_tables.items() if spec in owned
        }
        # Where the event source mapping sends what it gives up on (records older than
        # MAX_RECORD_AGE): the shard and sequence range to replay, not the records themselves.
        self.dead_letters = on_failure_queue(self, "the projector's")
        environment = {
            EVENTS.env_var: events.table_name,
            PROJECTIONS_CONTROL.env_var: control.table_name,
            **{spec.env_var: table.table_name for spec, table in self.tables.items()},
        }
        # PROJECTION_CONTROL_TTL_SECONDS stays at its default (10 s, how long the projector caches
        # each read model's control row): the rebuild worker waits that long after a claim, reading
        # the same default, so the two change together or not at all.
        self.handler = PythonFunction(
            self,
            "Projector",
            package="projections",
            description="Projector: events stream -> every registered read model",
            layers=layers.all,
            environment=environment,
            log_retention=settings.log_retention,
            timeout=TIMEOUT,
            any_resource_reason=f"{XRAY_REASON} {LIST_STREAMS_REASON}",
        )
        self.function = self.handler.function
        role = self.handler.role
        # Gap fill: the commits a row has not seen yet (read_commits: Query; read_commit: GetItem).
        grant(role, events, EVENTS, GAP_FILL_ACTIONS)
        # Every generation of every read model it feeds (the active one and the one a rebuild is
        # building); deleting a generation is the rebuild worker's, not the projector's.
        for spec, table in self.tables.items():
            grant(role, table, spec, APPLY_ACTIONS)
        # Control rows (cached), rebuild markers, its heartbeat, and the parked commits.
        grant(role, control, PROJECTIONS_CONTROL, PROJECTOR_CONTROL_ACTIONS)
        self.mapping = read_events_stream(self.function, events, self.dead_letters)
