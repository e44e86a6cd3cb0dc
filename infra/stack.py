"""The orders stack: composes the constructs, one per concern, and nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.admin_api import AdminApi
from infra.auth import Auth
from infra.command_api import CommandApi
from infra.dynamodb import require_every_table
from infra.event_store import EventStore
from infra.http_api import HttpApi
from infra.integration_events import IntegrationEvents
from infra.layers import Layers
from infra.live_updates import LiveUpdates
from infra.monitoring import Monitoring
from infra.projections import Projections, ProjectionSpec, registered_projections
from infra.query_api import QueryApi
from infra.read_models import ReadModels
from infra.rebuild import Rebuild
from infra.settings import Settings
from orders_core.api_routes import FunctionName
from orders_core.tables import ALL_TABLES, LIVE_CONNECTIONS, TableSpec


class OrdersStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        projections: tuple[ProjectionSpec, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.event_store = EventStore(self, "EventStore")
        self.read_models = ReadModels(self, "ReadModels")
        events, snapshots = self.event_store.events, self.event_store.snapshots
        control = self.read_models.control
        read_tables = self.read_models.read_tables
        # Every spec in orders_core.tables.ALL_TABLES, each exactly once (else the synth stops).
        self.tables: dict[TableSpec, dynamodb.Table] = {**self.event_store.tables, **self.read_models.tables}
        self.layers = Layers(self, "Layers")

        self.command_api = CommandApi(
            self, "Commands", settings=settings, layers=self.layers, events=events, snapshots=snapshots
        )
        self.query_api = QueryApi(
            self,
            "Queries",
            settings=settings,
            layers=self.layers,
            events=events,
            snapshots=snapshots,
            control=control,
            read_tables=read_tables,
        )
        # One projector for every registered read model: one reader of the events stream (of the
        # two DynamoDB Streams serves per shard; the other is kept for the change feed).
        self.projections = Projections(
            self,
            "Projections",
            settings=settings,
            layers=self.layers,
            events=events,
            control=control,
            read_tables=read_tables,
            projections=registered_projections() if projections is None else projections,
        )
        # The events stream's second reader: every order and product event, on the stack's own bus.
        self.integration_events = IntegrationEvents(
            self, "IntegrationEvents", settings=settings, layers=self.layers, events_table=events
        )
        self.rebuild = Rebuild(
            self,
            "Rebuild",
            settings=settings,
            layers=self.layers,
            events=events,
            control=control,
            read_tables=read_tables,
        )
        self.admin_api = AdminApi(
            self,
            "Admin",
            settings=settings,
            layers=self.layers,
            events=events,
            control=control,
            # Replaying parked commits writes the read models the projector feeds, and no other.
            read_tables=self.projections.tables,
            rebuild=self.rebuild.state_machine,
        )

        self.auth = Auth(self, "Auth", settings=settings)
        # Live updates (ADR 14): the WebSocket API, its connections table, and the notifier on the
        # order view's and inventory's streams (one reader each; the events stream keeps its two).
        self.live_updates = LiveUpdates(
            self,
            "Live",
            settings=settings,
            layers=self.layers,
            auth=self.auth,
            read_tables=read_tables,
            control=control,
        )
        self.tables[LIVE_CONNECTIONS] = self.live_updates.connections
        require_every_table(self.tables, ALL_TABLES)
        api_functions: dict[FunctionName, lambda_.IFunction] = {
            "command_api": self.command_api.function,
            "query_api": self.query_api.function,
            "admin_api": self.admin_api.function,
        }
        self.http_api = HttpApi(self, "Http", settings=settings, auth=self.auth, functions=api_functions)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            api=self.http_api.api,
            api_functions=api_functions,
            projector=self.projections.function,
            read_models=self.projections.read_models,
            dead_letters=self.projections.dead_letters,
            rebuild=self.rebuild.state_machine,
            rebuild_worker=self.rebuild.worker.function,
            rebuild_dead_letters=self.rebuild.dead_letters,
            tables={spec.key: table for spec, table in self.tables.items()},
            integration_publisher=self.integration_events.function,
            integration_dead_letters=self.integration_events.dead_letters,
            live_functions=self.live_updates.functions,
            live_notifier=self.live_updates.notifier,
            live_dead_letters=self.live_updates.dead_letters,
            live_stage=self.live_updates.stage,
        )

        CfnOutput(self, "ApiUrl", value=self.http_api.url, description="Base URL of the HTTP API")
        CfnOutput(self, "UserPoolId", value=self.auth.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.auth.client.user_pool_client_id)
        CfnOutput(self, "EventsTableName", value=events.table_name)
        CfnOutput(
            self,
            "LiveUpdatesUrl",
            value=self.live_updates.url,
            description="Live updates: connect with ?token=<Cognito access token> (docs/live-updates.md)",
        )
        CfnOutput(
            self,
            "OnFailureQueueUrl",
            value=self.projections.dead_letters.queue_url,
            description="Stream records the projector gave up on (older than 24 h): shard and sequence range",
        )
        CfnOutput(
            self,
            "EventBusName",
            value=self.integration_events.bus.event_bus_name,
            description="Where every order and product event is published (source orders)",
        )
        CfnOutput(self, "EventBusArn", value=self.integration_events.bus.event_bus_arn)
        CfnOutput(
            self,
            "EventArchiveArn",
            value=self.integration_events.archive.archive_arn,
            description="The bus's archive (90 days): replay with `aws events start-replay`",
        )
        CfnOutput(
            self,
            "IntegrationOnFailureQueueUrl",
            value=self.integration_events.dead_letters.queue_url,
            description="Stream records the integration publisher gave up on (older than 24 h)",
        )
        CfnOutput(
            self,
            "RebuildStateMachineArn",
            value=self.rebuild.state_machine.state_machine_arn,
            description="Rebuild workflow (started by POST /admin/rebuilds, `orders rebuild`)",
        )
        CfnOutput(
            self,
            "RebuildExportBucketName",
            value=self.rebuild.bucket.bucket_name,
            description="Where rebuilds export the events table (rebuilds/<id>/, expires after 7 days)",
        )
