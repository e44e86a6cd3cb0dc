"""One Lambda function as every function here is built: arm64, newest Python, own role and logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import bytecode
from infra.bytecode import PYTHON_VERSION
from infra.nag import IAM5_ANY_RESOURCE, RUNTIME_ONE_BEHIND_REASON, XRAY_REASON, acknowledge

# The newest Python runtime whose bytecode this machine can compile (ADR 13: 3.14 exists, but no
# 3.14 interpreter does here, and a cold start without bytecode costs twice as much); the
# dependencies layer and the staged code are built for the same version (infra/bytecode.py).
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64

if RUNTIME.name != f"python{PYTHON_VERSION}":
    raise RuntimeError(f"bytecode.PYTHON_VERSION ({PYTHON_VERSION}) must match RUNTIME ({RUNTIME.name})")


def function_code(package: str) -> lambda_.Code:
    """The asset of one function: `functions/<package>/` as staged with its bytecode, and nothing
    else (no siblings). The asset root holds the packages, so the handler path is
    `<package>.handler.lambda_handler`.
    """
    bytecode.stage_code()
    return lambda_.Code.from_asset(
        str(bytecode.STAGED_FUNCTIONS), exclude=["*", f"!{package}", f"!{package}/**", "**/.*"]
    )


class PythonFunction(Construct):
    """A function with its own role (nothing granted but its logs and tracing), its own log group
    with the stage's retention, JSON logs, and X-Ray tracing. Callers grant the rest.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: str,
        description: str,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        timeout: Duration,
        memory_size: int = 512,
        any_resource_reason: str = XRAY_REASON,
    ) -> None:
        super().__init__(scope, construct_id)
        self.package = package
        # An explicit role: the CDK's default one carries the AWSLambdaBasicExecutionRole managed
        # policy (logs:* on every log group); this one may write only to its own log group.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {package} function",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{package}.handler.lambda_handler",
            code=function_code(package),
            layers=list(layers),
            role=self.role,
            environment=dict(environment),
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        # The only statements with Resource '*': X-Ray's, and whatever the caller explains.
        acknowledge(self.role, IAM5_ANY_RESOURCE, any_resource_reason)
        acknowledge(self.function, "AwsSolutions-L1", RUNTIME_ONE_BEHIND_REASON)
