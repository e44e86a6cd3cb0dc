"""The admin function: operators start and follow rebuilds, see each read model's state, and list
and replay the commits a read model parked."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.dynamodb import ADMIN_CONTROL_ACTIONS, APPLY_ACTIONS, GAP_FILL_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.settings import Settings
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, TableSpec

# A replay applies parked commits to their read models within the request: as long as the HTTP
# API waits for an integration (30 s), less a second. A replay cut short is safe to run again
# (every row applies a commit at most once, and a stream is released only when all went through).
TIMEOUT = Duration.seconds(29)


class AdminApi(Construct):
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
        rebuild: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "AdminApi",
            package="admin_api",
            description="Operators: rebuilds, read models' state, parked commits and their replay",
            layers=layers.all,
            environment={
                EVENTS.env_var: events.table_name,
                PROJECTIONS_CONTROL.env_var: control.table_name,
                **{spec.env_var: table.table_name for spec, table in read_tables.items()},
                "REBUILD_STATE_MACHINE_ARN": rebuild.state_machine_arn,
            },
            log_retention=settings.log_retention,
            timeout=TIMEOUT,
        )
        role = self.handler.role
        # Control rows, runs and parked commits (orders_core.projections.control, .parking,
        # orders_core.rebuild.runs): record a run before and after starting it, list runs and their
        # progress, read each read model's generation and lag, list parked streams and release the
        # ones a replay applied.
        grant(role, control, PROJECTIONS_CONTROL, ADMIN_CONTROL_ACTIONS)
        # Replaying parked commits (POST /admin/failures/replay): read them from the events table
        # (and fill gaps), then apply them to their read models, every generation in use.
        grant(role, events, EVENTS, GAP_FILL_ACTIONS)
        for spec, table in read_tables.items():
            grant(role, table, spec, APPLY_ACTIONS)
        # Start a rebuild, and nothing else: states:StartExecution on this state machine only.
        rebuild.grant_start_execution(role)
        self.function = self.handler.function
