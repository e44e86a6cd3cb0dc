"""The query function: reads the read models, their control rows, an order's history; writes nothing."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.dynamodb import CONTROL_READ_ACTIONS, GAP_FILL_ACTIONS, READ_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.settings import Settings
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, SNAPSHOTS, TableSpec


class QueryApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: Layers,
        events: dynamodb.ITable,
        snapshots: dynamodb.ITable,
        control: dynamodb.ITable,
        read_tables: Mapping[TableSpec, dynamodb.ITable],
    ) -> None:
        super().__init__(scope, construct_id)
        # composition.Root.projection builds every read model (it needs the events table's name
        # too); the active generation comes from the control table.
        environment = {
            EVENTS.env_var: events.table_name,
            SNAPSHOTS.env_var: snapshots.table_name,
            PROJECTIONS_CONTROL.env_var: control.table_name,
        }
        environment.update({spec.env_var: table.table_name for spec, table in read_tables.items()})
        self.handler = PythonFunction(
            self,
            "QueryApi",
            package="query_api",
            description="Order, customer, sales and inventory queries (read-only)",
            layers=layers.all,
            environment=environment,
            log_retention=settings.log_retention,
            timeout=Duration.seconds(10),
        )
        # An order's history and temporal queries: read_commits (Query), nothing else.
        grant(self.handler.role, events, EVENTS, GAP_FILL_ACTIONS)
        for spec, table in read_tables.items():
            grant(self.handler.role, table, spec, READ_ACTIONS, indexes=True)
        grant(self.handler.role, control, PROJECTIONS_CONTROL, CONTROL_READ_ACTIONS)
        # Temporal reads (`?as_of=`, `?at_version=`): the newest snapshot at or before a version
        # (Query on the table) or a time (Query on the by_time index). Never written from here.
        grant(self.handler.role, snapshots, SNAPSHOTS, ["dynamodb:Query"], indexes=True)
        self.function = self.handler.function
