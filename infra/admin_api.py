"""The admin function: operators start and follow rebuilds and see each projection's state."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.dynamodb import CONTROL_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.settings import Settings
from orders_core.tables import PROJECTIONS_CONTROL


class AdminApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: Layers,
        control: dynamodb.ITable,
        rebuild: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "AdminApi",
            package="admin_api",
            description="Operators: start and follow read-model rebuilds, list projections",
            layers=layers.all,
            environment={
                PROJECTIONS_CONTROL.env_var: control.table_name,
                "REBUILD_STATE_MACHINE_ARN": rebuild.state_machine_arn,
            },
            log_retention=settings.log_retention,
            timeout=Duration.seconds(10),
        )
        # Control rows and runs (orders_core.projections.control, orders_core.rebuild.runs): record a
        # run before and after starting it, list runs and their progress, read each projection's
        # generation and lag.
        grant(self.handler.role, control, PROJECTIONS_CONTROL, CONTROL_ACTIONS)
        # Start a rebuild, and nothing else: states:StartExecution on this state machine only.
        rebuild.grant_start_execution(self.handler.role)
        self.function = self.handler.function
