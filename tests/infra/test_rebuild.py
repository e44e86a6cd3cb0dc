"""The rebuild workflow: the state machine runs the shared ASL file, its worker and admin function
have their settings, and the export bucket is private, TLS-only, logged and self-cleaning."""

from __future__ import annotations

import json
from typing import Any

from infra import rebuild
from infra.workflow import ASL_FILE, EXAMPLE_VALUES, placeholders, render
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, READ_MODEL_TABLES
from tests.infra.helpers import Synthesized, references, resource_text


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
    values = {name: value_of[resource_text(value)] for name, value in substitutions.items()}
    deployed = json.loads(render(_deployed_definition(synthesized), values))
    assert deployed == json.loads(render(ASL_FILE.read_text(), EXAMPLE_VALUES))
    assert deployed["States"]["ExportEvents"]["Parameters"]["TableArn"] == EXAMPLE_VALUES["EventsTableArn"]


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
    assert function["MemorySize"] == 1024
    tables = {spec: {"Ref": synthesized.logical_id(t)} for spec, t in stack.tables.items()}
    assert function["Environment"]["Variables"] == {
        EVENTS.env_var: tables[EVENTS],
        PROJECTIONS_CONTROL.env_var: tables[PROJECTIONS_CONTROL],
        **{spec.env_var: tables[spec] for spec in READ_MODEL_TABLES},
        "REBUILD_BUCKET": {"Ref": synthesized.logical_id(stack.rebuild.bucket)},
        "REBUILD_EXPORT_POLL_SECONDS": "30",
        "REBUILD_RETIRE_DELAY_SECONDS": "10",
    }
    # Readers cache the active generation for 1 s (query_api): retiring must wait longer.
    assert rebuild.RETIRE_DELAY_SECONDS > 1


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
