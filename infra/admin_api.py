"""The admin function: operators start and follow rebuilds, see each read model's state, and list
and replay the commits a read model parked."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.dynamodb import ADMIN_CONTROL_ACTIONS, GAP_FILL_ACTIONS, RELEASE_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.nag import acknowledge
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
        rebuild: sfn.StateMachine,
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
        # and releasing a claim a dead run holds deletes (a bounded part of) its partial generation.
        for spec, table in read_tables.items():
            grant(role, table, spec, RELEASE_ACTIONS)
        # Start a rebuild; before releasing a claim, see whether its execution still runs.
        rebuild.grant_start_execution(role)
        stack = Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{rebuild.state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        machine = rebuild.node.default_child
        assert machine is not None
        machine_id = stack.resolve(machine.logical_id)  # type: ignore[attr-defined]
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:<{machine_id}.Name>:*]",
            "DescribeExecution on this state machine's executions (named after the rebuild ids this "
            "function creates): `orders rebuild --release` refuses while the run's execution runs.",
        )
        self.function = self.handler.function
