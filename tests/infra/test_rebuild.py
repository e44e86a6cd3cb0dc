"""The rebuild workflow: the state machine runs the shared ASL file sized by the stack's settings,
its worker and admin function have their settings, the export bucket is private, TLS-only, logged
and self-cleaning, and runs that end without their own Abandon reach the worker through a rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra import rebuild
from infra.settings import RebuildSettings, Settings
from infra.stack import OrdersStack
from infra.workflow import ASL_FILE, EXAMPLE_VALUES, NUMERIC_PLACEHOLDERS, placeholders, render
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, READ_MODEL_TABLES
from tests.infra.helpers import Synthesized, references, resource_text

DEFAULTS = RebuildSettings()


def _properties(synthesized: Synthesized, construct: Any) -> dict[str, Any]:
    properties: dict[str, Any] = synthesized.resources[synthesized.logical_id(construct)]["Properties"]
    return properties


def _state_machine(synthesized: Synthesized) -> dict[str, Any]:
    (state_machine,) = synthesized.of_type("AWS::StepFunctions::StateMachine").values()
    return state_machine


def _deployed_definition(synthesized: Synthesized) -> str:
    """The definition file CloudFormation reads (DefinitionS3Location), from the staged assets."""
    key = _state_machine(synthesized)["Properties"]["DefinitionS3Location"]["Key"]
    manifest = json.loads((synthesized.outdir / f"{synthesized.stack.artifact_id}.assets.json").read_text())
    (source,) = [
        entry["source"]["path"]
        for entry in manifest["files"].values()
        if any(d["objectKey"] == key for d in entry["destinations"].values())
    ]
    return (synthesized.outdir / source).read_text()


def test_one_standard_state_machine_traced_and_logging_everything(
    synthesized: Synthesized, context: dict[str, Any]
) -> None:
    properties = _state_machine(synthesized)["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    ((log_group, _),) = references(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    group = synthesized.resources[log_group]["Properties"]
    assert group["RetentionInDays"] == context["logRetentionDays"]
    assert group["LogGroupName"].startswith("/aws/vendedlogs/states/")


def test_the_state_machine_runs_the_shared_asl_file(synthesized: Synthesized) -> None:
    # What CloudFormation gets is the file itself, byte for byte: no copy to drift from the local run.
    assert _deployed_definition(synthesized) == ASL_FILE.read_text()


def test_the_placeholders_are_filled_with_the_stacks_resources(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    substitutions = _state_machine(synthesized)["Properties"]["DefinitionSubstitutions"]
    assert set(substitutions) == placeholders(ASL_FILE.read_text())
    # The numbers from the stack's settings (defaults: sized for 100 million events, ADR 9).
    assert {name: substitutions[name] for name in NUMERIC_PLACEHOLDERS} == {
        "RebuildTimeoutSeconds": str(DEFAULTS.timeout_seconds),
        "ShuffleConcurrency": str(DEFAULTS.shuffle_concurrency),
        "ApplyConcurrency": str(DEFAULTS.apply_concurrency),
    }
    assert resource_text(substitutions["RebuildWorkerArn"]) == (
        f"<{synthesized.logical_id(stack.rebuild.worker.function)}.Arn>"
    )
    assert (
        resource_text(substitutions["EventsTableArn"])
        == f"<{synthesized.logical_id(stack.event_store.events)}.Arn>"
    )
    # Ref of a bucket is its name.
    assert resource_text(substitutions["ExportBucket"]) == f"<{synthesized.logical_id(stack.rebuild.bucket)}>"


def test_the_deployed_definition_renders_like_the_asl_file(synthesized: Synthesized) -> None:
    # CloudFormation renders the staged file with DefinitionSubstitutions. Give each stack resource
    # an example value, render what is deployed, and compare with the shared file rendered as the
    # local run and asl-validator see it: same states, each placeholder filled by the right resource.
    stack = synthesized.stack
    value_of = {
        f"<{synthesized.logical_id(stack.rebuild.worker.function)}.Arn>": EXAMPLE_VALUES["RebuildWorkerArn"],
        f"<{synthesized.logical_id(stack.event_store.events)}.Arn>": EXAMPLE_VALUES["EventsTableArn"],
        f"<{synthesized.logical_id(stack.rebuild.bucket)}>": EXAMPLE_VALUES["ExportBucket"],
    }
    substitutions = _state_machine(synthesized)["Properties"]["DefinitionSubstitutions"]
    values = {
        name: value_of.get(resource_text(value), resource_text(value))
        for name, value in substitutions.items()
    }
    deployed = json.loads(render(_deployed_definition(synthesized), values))
    example = {**EXAMPLE_VALUES, **{name: values[name] for name in NUMERIC_PLACEHOLDERS}}
    assert deployed == json.loads(render(ASL_FILE.read_text(), example))
    assert deployed["States"]["ExportEvents"]["Parameters"]["TableArn"] == EXAMPLE_VALUES["EventsTableArn"]
    assert deployed["TimeoutSeconds"] == DEFAULTS.timeout_seconds == 6 * 3600
    assert deployed["States"]["ApplyBuckets"]["MaxConcurrency"] == DEFAULTS.apply_concurrency
    assert deployed["States"]["ShuffleExportFiles"]["MaxConcurrency"] == DEFAULTS.shuffle_concurrency


def test_export_bucket_is_private_encrypted_logged_and_expires_scratch(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    bucket_id = synthesized.logical_id(stack.rebuild.bucket)
    bucket = synthesized.resources[bucket_id]
    properties = bucket["Properties"]
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == rebuild.PREFIX == "rebuilds/"
    assert rule["ExpirationInDays"] == 7
    assert rule["Status"] == "Enabled"
    assert properties["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": synthesized.logical_id(stack.rebuild.access_logs)
    }
    # Kept on stack deletion, and no auto-delete custom resource empties it.
    assert bucket["DeletionPolicy"] == "Retain"
    assert not synthesized.of_type("Custom::S3AutoDeleteObjects")


def test_buckets_refuse_plain_http(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    for bucket in (stack.rebuild.bucket, stack.rebuild.access_logs):
        bucket_id = synthesized.logical_id(bucket)
        (policy,) = [
            p["Properties"]["PolicyDocument"]
            for p in synthesized.of_type("AWS::S3::BucketPolicy").values()
            if p["Properties"]["Bucket"] == {"Ref": bucket_id}
        ]
        (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Action"] == "s3:*"


def test_access_log_bucket_is_private_and_kept(synthesized: Synthesized) -> None:
    bucket = synthesized.resources[synthesized.logical_id(synthesized.stack.rebuild.access_logs)]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert "BucketEncryption" in bucket["Properties"]


def test_worker_settings(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    function = _properties(synthesized, stack.rebuild.worker.function)
    assert function["Handler"] == "rebuild_worker.handler.lambda_handler"
    assert function["Timeout"] == 15 * 60
    assert function["MemorySize"] == DEFAULTS.worker_memory_mb == 2048
    tables = {spec: {"Ref": synthesized.logical_id(t)} for spec, t in stack.tables.items()}
    assert function["Environment"]["Variables"] == {
        EVENTS.env_var: tables[EVENTS],
        PROJECTIONS_CONTROL.env_var: tables[PROJECTIONS_CONTROL],
        **{spec.env_var: tables[spec] for spec in READ_MODEL_TABLES},
        "REBUILD_BUCKET": {"Ref": synthesized.logical_id(stack.rebuild.bucket)},
        "REBUILD_EXPORT_POLL_SECONDS": "30",
        "REBUILD_EXPORT_POLL_LIMIT": "240",
        "REBUILD_RETIRE_DELAY_SECONDS": "10",
        "REBUILD_BUCKETS": str(DEFAULTS.buckets),
    }
    # Readers cache the active generation for 1 s (query_api): retiring must wait longer.
    assert rebuild.RETIRE_DELAY_SECONDS > 1
    # The export poll gives up well before the execution's timeout does.
    export_budget = rebuild.EXPORT_POLL_LIMIT * rebuild.EXPORT_POLL_SECONDS
    assert export_budget <= DEFAULTS.timeout_seconds // 2


def test_admin_settings(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    function = _properties(synthesized, stack.admin_api.function)
    assert function["Handler"] == "admin_api.handler.lambda_handler"
    # Replaying parked commits reads the events table and writes the read models.
    assert function["Environment"]["Variables"] == {
        EVENTS.env_var: {"Ref": synthesized.logical_id(stack.event_store.events)},
        PROJECTIONS_CONTROL.env_var: {"Ref": synthesized.logical_id(stack.read_models.control)},
        **{
            spec.env_var: {"Ref": synthesized.logical_id(stack.read_models.table(spec))}
            for spec in READ_MODEL_TABLES
        },
        "REBUILD_STATE_MACHINE_ARN": {"Ref": synthesized.logical_id(stack.rebuild.state_machine)},
    }
    # As long as the HTTP API waits for it (30 s): a replay runs within the request.
    assert function["Timeout"] == 29


def test_outputs_name_the_state_machine_and_the_bucket(synthesized: Synthesized) -> None:
    outputs = synthesized.json["Outputs"]
    stack = synthesized.stack
    assert outputs["RebuildStateMachineArn"]["Value"] == {
        "Ref": synthesized.logical_id(stack.rebuild.state_machine)
    }
    assert outputs["RebuildExportBucketName"]["Value"] == {
        "Ref": synthesized.logical_id(stack.rebuild.bucket)
    }


def test_defaults_are_sized_for_100_million_events() -> None:
    # ADR 9, "Throughput": ~26 million orders over 1,024 buckets is ~25,000 per apply worker, which
    # fits Lambda's 15 minutes at 400 WCU/s (100 workers sharing a table's 40,000); the larger map
    # is what a run holds of the account's Lambda concurrency (1,000 by default).
    assert DEFAULTS.buckets == 1024
    assert 64 <= DEFAULTS.apply_concurrency <= 100
    assert DEFAULTS.shuffle_concurrency == 64
    assert DEFAULTS.peak_concurrency == 100 < 1000
    assert DEFAULTS.timeout_minutes == 360


def _rule(template: dict[str, Any]) -> dict[str, Any]:
    (rule,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    return rule


def test_runs_that_end_without_abandoning_go_to_the_worker(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    rule = _rule(synthesized.json)
    assert rule["State"] == "ENABLED"
    assert "EventBusName" not in rule  # the default bus, where Step Functions sends status changes
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "stateMachineArn": [{"Ref": synthesized.logical_id(stack.rebuild.state_machine)}],
            "status": ["ABORTED", "TIMED_OUT", "FAILED"],
        },
    }
    (target,) = rule["Targets"]
    worker = synthesized.logical_id(stack.rebuild.worker.function)
    dead_letters = synthesized.logical_id(stack.rebuild.dead_letters)
    # The whole event (no Input): the worker finds the run by the execution's name.
    assert target["Arn"] == {"Fn::GetAtt": [worker, "Arn"]}
    assert "Input" not in target and "InputPath" not in target and "InputTransformer" not in target
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 6 * 3600, "MaximumRetryAttempts": 20}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead_letters, "Arn"]}}


def test_a_failed_abandon_is_retried_then_kept(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    (config,) = synthesized.of_type("AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]
    assert properties["FunctionName"] == {"Ref": synthesized.logical_id(stack.rebuild.worker.function)}
    assert properties["MaximumRetryAttempts"] == 2
    assert properties["DestinationConfig"] == {
        "OnFailure": {
            "Destination": {"Fn::GetAtt": [synthesized.logical_id(stack.rebuild.dead_letters), "Arn"]}
        }
    }
    queue = synthesized.resources[synthesized.logical_id(stack.rebuild.dead_letters)]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    # EventBridge may send to it, for this rule only.
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": synthesized.logical_id(stack.rebuild.dead_letters)}]
    ]
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": {"Fn::GetAtt": [synthesized.logical_id(stack.rebuild.status_change_rule), "Arn"]}
        }
    }


@pytest.fixture(scope="module")
def resized(
    synthesized: Synthesized, context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[OrdersStack, dict[str, Any]]:
    """The stack with every rebuild setting given on the command line (`-c key=value`, strings)."""
    overrides = {
        "rebuildBuckets": "256",
        "rebuildApplyConcurrency": "7",
        "rebuildShuffleConcurrency": "5",
        "rebuildWorkerMemoryMb": "3008",
        "rebuildTimeoutMinutes": "90",
    }
    outdir: Path = tmp_path_factory.mktemp("resized")
    app = App(context={**context, **overrides}, outdir=str(outdir), builtin_cloud_formation_validation=False)
    stack = OrdersStack(app, "Resized", settings=Settings.from_node(app.node))
    return stack, dict(Template.from_stack(stack).to_json())


def test_the_settings_size_the_workflow_and_the_worker(resized: tuple[OrdersStack, dict[str, Any]]) -> None:
    stack, template = resized
    resources = template["Resources"]
    (machine,) = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    substitutions = machine["DefinitionSubstitutions"]
    assert {name: substitutions[name] for name in NUMERIC_PLACEHOLDERS} == {
        "RebuildTimeoutSeconds": "5400",
        "ShuffleConcurrency": "5",
        "ApplyConcurrency": "7",
    }
    worker = stack.resolve(stack.rebuild.worker.function.node.default_child.logical_id)  # type: ignore[union-attr]
    function = resources[worker]["Properties"]
    assert function["MemorySize"] == 3008
    assert function["Environment"]["Variables"]["REBUILD_BUCKETS"] == "256"


def test_the_local_stand_in_matches_the_rule() -> None:
    # orders_local.rebuild_runner.ExecutionWatcher delivers what this rule would, for the same statuses.
    from orders_local import rebuild_runner

    assert rebuild_runner.ENDED_WITHOUT_SUCCESS == rebuild.ABANDONED_STATUSES
    assert rebuild_runner.STATUS_CHANGE == rebuild.STATUS_CHANGE
    assert DEFAULTS.worker_memory_mb == rebuild_runner.WORKER_MEMORY_MB
