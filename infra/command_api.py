"""The command function: decides and appends commits to the events table, snapshots aggregates."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.dynamodb import grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.settings import Settings
from orders_core.tables import EVENTS, SNAPSHOTS


class CommandApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: Layers,
        events: dynamodb.ITable,
        snapshots: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "CommandApi",
            package="command_api",
            description="Order and inventory commands: one conditional PutItem per command",
            layers=layers.all,
            environment={EVENTS.env_var: events.table_name, SNAPSHOTS.env_var: snapshots.table_name},
            log_retention=settings.log_retention,
            timeout=Duration.seconds(10),
        )
        # Load an aggregate (Query) and append one commit (conditional PutItem). No read tables.
        grant(self.handler.role, events, EVENTS, ["dynamodb:PutItem", "dynamodb:Query"])
        # orders_core.snapshots.dynamodb: the newest snapshot of a stream (Query, Limit 1, on the
        # table, never the by_time index) and an unconditional PutItem every N events.
        grant(self.handler.role, snapshots, SNAPSHOTS, ["dynamodb:PutItem", "dynamodb:Query"])
        self.function = self.handler.function
