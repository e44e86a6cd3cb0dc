"""Projection functions: one per registered projection, each fed by the events table's stream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.dynamodb import CONTROL_LIVE_ACTIONS, WRITE_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.nag import XRAY_REASON, acknowledge
from infra.settings import Settings
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, TableSpec

# How each projection's event source mapping reads the stream (ARCHITECTURE.md, "Read side").
BATCH_SIZE = 100
RETRY_ATTEMPTS = 5
MAX_RECORD_AGE = Duration.hours(24)
DLQ_RETENTION = Duration.days(14)

LIST_STREAMS_REASON = (
    "dynamodb:ListStreams supports no resource-level permissions ('*' only); the event source "
    "mapping's grant adds it, and the stream reads themselves are scoped to the events table's stream."
)


@dataclass(frozen=True)
class ProjectionSpec:
    name: str  # PROJECTION_NAME, as orders_core's registry knows it
    table: TableSpec  # the read model it owns (and the only table it may write)

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


def registered_projections() -> tuple[ProjectionSpec, ...]:
    """The one list of projections: orders_core's registry. Registering a projection there gives it
    a function, a stream subscription and alarms here."""
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
        # Where the event source mappings send what they give up on (after retries, bisection or
        # when a record outlives MAX_RECORD_AGE): the shard and sequence range to replay, not the
        # records themselves. One queue for all projections; each message names its function.
        self.dead_letters = sqs.Queue(
            self,
            "OnFailure",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter (on-failure) destination of the projections' "
            "stream event source mappings; nothing consumes it automatically, so it has no DLQ.",
        )
        self.functions: dict[str, lambda_.Function] = {}
        for projection in projections:
            if projection.table not in read_tables:
                raise ValueError(
                    f"projection {projection.name!r} writes {projection.table.key!r}, which is not in "
                    "orders_core.tables.READ_MODEL_TABLES (so the stack builds no such table)"
                )
            handler = PythonFunction(
                self,
                projection.construct_id,
                package="projections",
                description=f"Projection {projection.name}: events stream -> its read model",
                layers=layers.all,
                environment={
                    "PROJECTION_NAME": projection.name,
                    EVENTS.env_var: events.table_name,
                    PROJECTIONS_CONTROL.env_var: control.table_name,
                    projection.table.env_var: read_tables[projection.table].table_name,
                },
                log_retention=settings.log_retention,
                timeout=Duration.seconds(60),
                any_resource_reason=f"{XRAY_REASON} {LIST_STREAMS_REASON}",
            )
            # Gap fill: read the commits a row has not seen yet.
            grant(handler.role, events, EVENTS, ["dynamodb:Query", "dynamodb:GetItem"])
            # Every generation of its own read model (the live projection writes the active one and
            # the one a rebuild is building), and no other read model.
            grant(handler.role, read_tables[projection.table], projection.table, WRITE_ACTIONS)
            # The control row on every batch (which generations to write), its lag and the rebuild
            # markers it has delivered.
            grant(handler.role, control, PROJECTIONS_CONTROL, CONTROL_LIVE_ACTIONS)
            # Grants the stream reads and sqs:SendMessage on the queue to the function's role.
            handler.function.add_event_source(
                sources.DynamoEventSource(
                    events,
                    starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                    batch_size=BATCH_SIZE,
                    bisect_batch_on_error=True,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_record_age=MAX_RECORD_AGE,
                    report_batch_item_failures=True,
                    on_failure=sources.SqsDlq(self.dead_letters),
                )
            )
            self.functions[projection.name] = handler.function
