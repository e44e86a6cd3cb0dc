"""The rebuild workflow (ADR 9): a Step Functions state machine from workflows/rebuild.asl.json, its
worker function, and the bucket the events table is exported to.

The state machine exports the events table to `rebuilds/<id>/export` (DynamoDB writes the files
with the state machine role's credentials), shuffles the export's files and applies the buckets
with two Distributed Maps (child workflow executions of this state machine) and calls the worker
for every other step. The definition is the one file the local run uses too: the stack only fills
its placeholders (ARNs, the execution's timeout, the maps' concurrency: `RebuildSettings`).

An execution that ends without its own Abandon (stopped, timed out, or failed even to abandon)
would keep its projection claimed: an EventBridge rule on the state machine's status changes
(ABORTED, TIMED_OUT, FAILED) hands the event to the worker, which abandons that run. What the
rule cannot deliver, or the worker fails on three times, lands in a dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from infra.dynamodb import CONTROL_ACTIONS, GAP_FILL_ACTIONS, REBUILD_ACTIONS, grant
from infra.lambda_function import PythonFunction
from infra.layers import Layers
from infra.nag import IAM5_ANY_RESOURCE, acknowledge
from infra.settings import RebuildSettings, Settings
from infra.workflow import ASL_FILE, placeholders
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, TableSpec

# Everything a run writes lives under this prefix: rebuilds/<id>/export (DynamoDB's export) and
# rebuilds/<id>/buckets (the shuffle), see orders_core.rebuild.steps.
PREFIX = "rebuilds/"
# Retire deletes a successful run's objects; a failed run's stay for inspection this long.
SCRATCH_EXPIRY = Duration.days(7)
ACCESS_LOG_EXPIRY = Duration.days(365)
# The worker's settings (orders_core.composition.Settings, read by Root.rebuild_steps).
EXPORT_POLL_SECONDS = 30
# DescribeExport polls before the run gives up on its export: 240 x 30 s = 2 hours, about four
# times what an export of 100 million events is expected to take (ADR 9), well inside the
# execution's timeout. A stuck export must not hold the claim (and double every live write) for ever.
EXPORT_POLL_LIMIT = 240
# Longer than the query function caches the active generation (1 s), with room for slow readers.
RETIRE_DELAY_SECONDS = 10
WORKER_TIMEOUT = Duration.minutes(15)
# Sizing (buckets, map concurrency, worker memory, the execution's timeout): infra.settings.RebuildSettings.

# The executions the status-change rule hands to the worker: every way a run can end without
# its own Abandon having released the claim (and FAILED, which Abandon's own end also is: the
# worker's abandon is idempotent).
ABANDONED_STATUSES = ("ABORTED", "TIMED_OUT", "FAILED")
STATUS_CHANGE = "Step Functions Execution Status Change"
# EventBridge retries a failed delivery (a throttled invoke) with backoff for this long, then
# puts the event on the dead-letter queue; Lambda retries a failed abandon twice, then the same.
STATUS_EVENT_MAX_AGE = Duration.hours(6)
STATUS_EVENT_RETRIES = 20
DEAD_LETTER_RETENTION = Duration.days(14)

LOG_DELIVERY_REASON = (
    "Step Functions' logging to CloudWatch Logs needs the logs:*LogDelivery*, PutResourcePolicy, "
    "DescribeResourcePolicies and DescribeLogGroups actions, which support no resource-level "
    "permissions ('*' only); added by the CDK for LogOptions."
)
SFN_XRAY_REASON = (
    "X-Ray's PutTraceSegments, PutTelemetryRecords, GetSamplingRules and GetSamplingTargets support "
    "no resource-level permissions ('*' only); added by tracing_enabled."
)


SCRATCH_REASON = (
    f"Scoped to the export bucket's {PREFIX} prefix, where each run writes under its own "
    "rebuilds/<id>/ (export files from DynamoDB, shuffle buckets): object keys are created "
    "per run, so they can only be named by prefix."
)
# The state machine's executions end <name>:<id>; the Distributed Map's child executions
# <name>/<map run>:<id>.
EXECUTION_SUFFIXES = (":*", "/*")


class Rebuild(Construct):
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
        definition_file: Path = ASL_FILE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sizing: RebuildSettings = settings.rebuild
        self.access_logs = self._access_logs_bucket()
        self.bucket = self._exports_bucket()
        self.worker = self._worker(settings, layers, events, control, read_tables)
        self._grant_worker(events, control, read_tables)
        substitutions = self._substitutions(definition_file, events)
        self.log_group = self._log_group(settings)
        self.state_machine = self._state_machine(definition_file, substitutions)
        self._grant_state_machine(events)
        self.executions_policy = self._executions_policy()
        self.dead_letters = self._dead_letters()
        self.status_change_rule = self._status_change_rule()

    # -- the export bucket -------------------------------------------------------------------------

    def _access_logs_bucket(self) -> s3.Bucket:
        # Who read or wrote the exports (a full copy of the event log) is recorded in S3 server
        # access logs. Both buckets are kept when the stack goes, without auto-delete: the access
        # logs are the audit trail of those copies and outlive the stack, and the exports expire by
        # themselves (lifecycle rule on the exports). Auto-delete would also add a custom-resource
        # function allowed to delete every object in the bucket.
        # (cdk-nag's S1 accepts a bucket that is itself a server access log destination.)
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery supports SSE-S3 only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=ACCESS_LOG_EXPIRY)],
        )

    def _exports_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Exports",
            # SSE-S3: DynamoDB's export and the worker need no KMS grants; with a customer key every
            # writer (including DynamoDB, through the state machine role) would need kms permissions.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="exports/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireRebuildScratch",
                    prefix=PREFIX,
                    expiration=SCRATCH_EXPIRY,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )

    def _scratch_objects(self) -> str:
        return self.bucket.arn_for_objects(f"{PREFIX}*")

    def _list_scratch(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{PREFIX}*"]}},
        )

    def _scratch_finding(self) -> str:
        """The cdk-nag finding on a grant to the scratch objects (see SCRATCH_REASON)."""
        return f"AwsSolutions-IAM5[Resource::<{self._ref(self.bucket)}.Arn>/{PREFIX}*]"

    # -- the worker --------------------------------------------------------------------------------

    def _worker(
        self,
        settings: Settings,
        layers: Layers,
        events: dynamodb.ITable,
        control: dynamodb.ITable,
        read_tables: Mapping[TableSpec, dynamodb.ITable],
    ) -> PythonFunction:
        environment = {
            EVENTS.env_var: events.table_name,
            PROJECTIONS_CONTROL.env_var: control.table_name,
            "REBUILD_BUCKET": self.bucket.bucket_name,
            "REBUILD_EXPORT_POLL_SECONDS": str(EXPORT_POLL_SECONDS),
            "REBUILD_EXPORT_POLL_LIMIT": str(EXPORT_POLL_LIMIT),
            "REBUILD_RETIRE_DELAY_SECONDS": str(RETIRE_DELAY_SECONDS),
            "REBUILD_BUCKETS": str(self.sizing.buckets),
        }
        environment.update({spec.env_var: table.table_name for spec, table in read_tables.items()})
        return PythonFunction(
            self,
            "Worker",
            package="rebuild_worker",
            description="Rebuild workflow steps: claim, shuffle, apply, verify, catch up, switch, retire",
            layers=layers.all,
            environment=environment,
            log_retention=settings.log_retention,
            timeout=WORKER_TIMEOUT,
            memory_size=self.sizing.worker_memory_mb,
        )

    def _grant_worker(
        self,
        events: dynamodb.ITable,
        control: dynamodb.ITable,
        read_tables: Mapping[TableSpec, dynamodb.ITable],
    ) -> None:
        role = self.worker.role
        # The events table: the catch-up marker commit (conditional PutItem) and the projections'
        # gap fill (Query). Nothing else: no update, no delete, no batch write.
        grant(role, events, EVENTS, ["dynamodb:PutItem", *GAP_FILL_ACTIONS])
        # Any read model (the run's projection is chosen at run time): applying the new generation,
        # then deleting the old one (Scan + BatchWriteItem) on retire, or the partial one on abandon.
        for spec, table in read_tables.items():
            grant(role, table, spec, REBUILD_ACTIONS)
        grant(role, control, PROJECTIONS_CONTROL, CONTROL_ACTIONS)
        role.add_to_principal_policy(self._list_scratch())
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[self._scratch_objects()],
            )
        )
        acknowledge(role, self._scratch_finding(), SCRATCH_REASON)

    # -- the state machine -------------------------------------------------------------------------

    def _substitutions(self, definition_file: Path, events: dynamodb.ITable) -> dict[str, str]:
        """What the stack fills the definition's placeholders with: exactly the file's placeholders."""
        definition = definition_file.read_text()
        substitutions = {
            "RebuildWorkerArn": self.worker.function.function_arn,
            "EventsTableArn": events.table_arn,
            "ExportBucket": self.bucket.bucket_name,
            # Bare numbers in the file (see infra.workflow).
            "RebuildTimeoutSeconds": str(self.sizing.timeout_seconds),
            "ShuffleConcurrency": str(self.sizing.shuffle_concurrency),
            "ApplyConcurrency": str(self.sizing.apply_concurrency),
        }
        if placeholders(definition) != set(substitutions):
            raise ValueError(
                f"{definition_file} has placeholders {sorted(placeholders(definition))}; the stack "
                f"fills {sorted(substitutions)}: make them agree in infra/rebuild.py"
            )
        return substitutions

    def _log_group(self, settings: Settings) -> logs.LogGroup:
        # Vended-logs prefix: Step Functions then needs no entry per log group in the account's
        # CloudWatch Logs resource policy (which is limited in size).
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/orders-{settings.stage}-rebuild",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _state_machine(self, definition_file: Path, substitutions: dict[str, str]) -> sfn.StateMachine:
        return sfn.StateMachine(
            self,
            "StateMachine",
            comment="Rebuild one read model into a new generation (workflows/rebuild.asl.json)",
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions=substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )

    def _grant_state_machine(self, events: dynamodb.ITable) -> None:
        state_machine = self.state_machine
        # Every Task that calls Lambda calls the worker, by its unqualified ARN: nothing else.
        state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.worker.function.function_arn]
            )
        )
        # ExportEvents / DescribeExport (aws-sdk integrations, the role's own credentials).
        state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:ExportTableToPointInTime"], resources=[events.table_arn])
        )
        state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:DescribeExport"], resources=[f"{events.table_arn}/export/*"]
            )
        )
        # DynamoDB writes the export with the caller's credentials: these on the run's prefix.
        state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
                resources=[self._scratch_objects()],
            )
        )
        # The Distributed Map's ItemReader (s3:listObjectsV2 on the export prefix).
        state_machine.add_to_role_policy(self._list_scratch())
        role = state_machine.role
        acknowledge(role, IAM5_ANY_RESOURCE, f"{LOG_DELIVERY_REASON} {SFN_XRAY_REASON}")
        acknowledge(role, self._scratch_finding(), SCRATCH_REASON)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{self._ref(events)}.Arn>/export/*]",
            "DescribeExport takes the export's ARN, <events table ARN>/export/<export id>, and the id is "
            "created by each ExportTableToPointInTime call: only the events table's exports are named.",
        )

    def _executions_policy(self) -> iam.Policy:
        # The Distributed Map runs its iterations as child workflow executions of this state
        # machine (<name>/<map run>:<id>): the parent starts, describes and stops them. In a
        # policy of its own (as the CDK does for DistributedMap), because it names the state
        # machine, which itself depends on its role's default policy.
        stack = Stack.of(self)
        executions = [
            stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{self.state_machine.state_machine_name}{suffix}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for suffix in EXECUTION_SUFFIXES
        ]
        policy = iam.Policy(
            self,
            "ExecutionsPolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn]
                ),
                iam.PolicyStatement(
                    actions=["states:DescribeExecution", "states:StopExecution"], resources=executions
                ),
            ],
        )
        self.state_machine.role.attach_inline_policy(policy)
        for suffix in EXECUTION_SUFFIXES:
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                f"execution:<{self._ref(self.state_machine)}.Name>{suffix}]",
                "Execution ARNs end in ids Step Functions generates (this state machine's executions and "
                "the Distributed Map's child executions, <name>/<map run>:<id>): only this state "
                "machine's executions are named.",
            )
        return policy

    # -- runs that end without their own Abandon -----------------------------------------------------

    def _dead_letters(self) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "AbandonDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the rebuild status-change rule's target and "
            "the on-failure destination of the worker's asynchronous invocations; an operator reads it "
            "(alarm RebuildAbandonDeadLetters), so it has no DLQ of its own.",
        )
        return queue

    def _status_change_rule(self) -> eventbridge.Rule:
        """Executions of this state machine that end ABORTED, TIMED_OUT or FAILED go to the worker
        (the whole event: it finds the run by the execution's name) to be abandoned."""
        function = self.worker.function
        # The worker is invoked asynchronously by EventBridge: Lambda retries a failed abandon twice,
        # then hands the event to the same queue.
        function.configure_async_invoke(
            retry_attempts=2,
            max_event_age=STATUS_EVENT_MAX_AGE,
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        return eventbridge.Rule(
            self,
            "StatusChange",
            description="Rebuild executions ending ABORTED, TIMED_OUT or FAILED: the worker abandons the run",
            event_pattern=eventbridge.EventPattern(
                source=["aws.states"],
                detail_type=[STATUS_CHANGE],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": list(ABANDONED_STATUSES),
                },
            ),
            targets=[
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=self.dead_letters,
                    max_event_age=STATUS_EVENT_MAX_AGE,
                    retry_attempts=STATUS_EVENT_RETRIES,
                )
            ],
        )

    def _ref(self, construct: IConstruct) -> str:
        """The logical id cdk-nag shows for a construct's resource in a finding."""
        element = construct.node.default_child
        assert element is not None
        logical_id = Stack.of(self).resolve(element.logical_id)  # type: ignore[attr-defined]
        assert isinstance(logical_id, str)
        return logical_id
