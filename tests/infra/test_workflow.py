"""workflows/rebuild.asl.json, rendered as a deployment renders it, is valid ASL (npm asl-validator),
and has the shape that makes a 100-million-event rebuild safe to retry, stop and time out.

cfn-lint does not look into state machine definitions, and the definition reaches CloudFormation as
a file asset, so this is the check. Without node_modules (no `npm ci`) the test is skipped on a
workstation and fails in CI (`CI=true`): an unchecked workflow must not pass as a checked one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra import workflow
from infra.workflow import ASL_FILE, ASL_VALIDATOR, EXAMPLE_VALUES

# The worker's steps (functions/rebuild_worker): every Lambda task names one of these.
WORKER_STEPS = {
    "begin",
    "export_done",
    "shuffle",
    "apply_bucket",
    "verify",
    "catch_up",
    "switch",
    "retire",
    "retirement_failed",
    "abandon",
}
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
CATCHING_TYPES = ("Task", "Map", "Parallel")


@pytest.fixture(scope="module")
def validator() -> Path:
    if not ASL_VALIDATOR.exists():
        message = f"{ASL_VALIDATOR} is missing: run `npm ci` (make synth does)"
        if workflow.validator_missing_is_fatal():
            pytest.fail(message)
        pytest.skip(message)
    return ASL_VALIDATOR


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return workflow.definition()


def _next_states(state: Mapping[str, Any]) -> set[str]:
    found = {state[key] for key in ("Next", "Default") if key in state}
    found |= {choice["Next"] for choice in state.get("Choices", [])}
    found |= {catcher["Next"] for catcher in state.get("Catch", [])}
    return found


def _reachable(
    definition: Mapping[str, Any], start: str, *, stop_at: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    """The top-level states reachable from `start` (itself included), not going past `stop_at`."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in stop_at:
            todo.extend(_next_states(definition["States"][name]))
    return seen


def _catch_targets(state: Mapping[str, Any]) -> set[str]:
    return {c["Next"] for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]}


def _lambda_tasks(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in workflow.states(definition):
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            yield name, state


def test_missing_validator_fails_in_ci() -> None:
    assert workflow.validator_missing_is_fatal({"CI": "true"})
    assert workflow.validator_missing_is_fatal({"CI": "1"})
    assert not workflow.validator_missing_is_fatal({})


def test_placeholders_are_the_ones_the_stack_fills() -> None:
    assert workflow.placeholders(ASL_FILE.read_text()) == {
        "RebuildWorkerArn",
        "EventsTableArn",
        "ExportBucket",
        "RebuildTimeoutSeconds",
        "ShuffleConcurrency",
        "ApplyConcurrency",
    }
    assert set(EXAMPLE_VALUES) > workflow.NUMERIC_PLACEHOLDERS


def test_rendering_needs_a_value_for_every_placeholder() -> None:
    text = ASL_FILE.read_text()
    with pytest.raises(ValueError, match="missing: \\['ExportBucket'\\]"):
        workflow.render(text, {k: v for k, v in EXAMPLE_VALUES.items() if k != "ExportBucket"})
    with pytest.raises(ValueError, match="unused: \\['Extra'\\]"):
        workflow.render(text, {**EXAMPLE_VALUES, "Extra": "x"})
    assert "${" not in workflow.render(text, EXAMPLE_VALUES)


def test_numeric_placeholders_stand_bare_and_take_whole_numbers() -> None:
    text = ASL_FILE.read_text()
    for name in workflow.NUMERIC_PLACEHOLDERS:
        assert f": ${{{name}}}" in text, name  # outside quotes: rendered, an integer
        with pytest.raises(ValueError, match=f"{name} stands outside quotes"):
            workflow.render(text, {**EXAMPLE_VALUES, name: "64; DROP"})


def test_rendered_workflow_is_valid_asl(validator: Path) -> None:
    result = workflow.validate_rendered()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_validator_rejects_a_broken_workflow(validator: Path, tmp_path: Path) -> None:
    # An empty "passed" must mean "checked": a definition with a dangling Next fails.
    definition = workflow.definition()
    definition["States"]["Begin"]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    result = workflow.validate(broken)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr


def test_catch_up_retries_are_bounded(definition: dict[str, Any]) -> None:
    # The worker's error alarm tolerates exactly this many NotCaughtUp errors per run.
    assert 0 < workflow.retry_attempts(definition, "NotCaughtUp") <= 20
    assert workflow.retry_attempts(definition, "NoSuchError") == 0


def test_the_whole_execution_has_a_timeout(definition: dict[str, Any]) -> None:
    assert definition["TimeoutSeconds"] == int(EXAMPLE_VALUES["RebuildTimeoutSeconds"])


def test_a_retried_export_is_the_same_export(definition: dict[str, Any]) -> None:
    export = definition["States"]["ExportEvents"]
    assert export["Resource"] == "arn:aws:states:::aws-sdk:dynamodb:exportTableToPointInTime"
    # One token per run: DynamoDB answers a retried call (same token, same parameters, within 8 h)
    # with the export it already started instead of starting a second one.
    assert export["Parameters"]["ClientToken.$"] == "$.rebuild_id"
    assert export["Retry"], "throttled export requests are retried"


def test_the_export_poll_is_bounded_by_the_plan(definition: dict[str, Any]) -> None:
    states = definition["States"]
    # The count starts at 0 with the export and grows by one before each DescribeExport.
    assert states["ExportEvents"]["ResultSelector"]["polls"] == 0
    assert states["ExportEvents"]["Next"] == "CountPoll"
    count = states["CountPoll"]
    assert count["Type"] == "Pass"
    assert count["Parameters"]["polls.$"] == "States.MathAdd($.export.polls, 1)"
    assert count["ResultPath"] == "$.export"
    # The loop: count, wait, describe, decide, and back to counting.
    exits = {"ExportFinished", "ExportFailed", "ExportTooSlow"}
    loop = _reachable(definition, "CountPoll", stop_at=exits)
    assert loop >= {"WaitForExport", "DescribeExport", "ExportDone"}
    assert count["Next"] == "WaitForExport"
    assert states["WaitForExport"]["Next"] == "DescribeExport"
    assert states["DescribeExport"]["Next"] == "ExportDone"
    choices = states["ExportDone"]["Choices"]
    (limit,) = [c for c in choices if c.get("NumericGreaterThanEqualsPath")]
    assert limit == {
        "Variable": "$.export.polls",
        "NumericGreaterThanEqualsPath": "$.plan.result.export_poll_limit",
        "Next": "ExportTooSlow",
    }
    assert states["ExportDone"]["Default"] == "CountPoll"
    assert states["ExportTooSlow"]["Next"] == "Abandon"
    assert states["ExportTooSlow"]["ResultPath"] == "$.error"


def test_the_shuffle_reads_only_this_exports_data_files(definition: dict[str, Any]) -> None:
    states = definition["States"]
    (completed,) = [c for c in states["ExportDone"]["Choices"] if c.get("StringEquals") == "COMPLETED"]
    assert completed["Next"] == "ExportFinished"
    finished = states["ExportFinished"]
    assert finished["Parameters"]["Payload"] == {
        "step": "export_done",
        "rebuild_id.$": "$.rebuild_id",
        "export_arn.$": "$.export.arn",
    }
    assert finished["ResultPath"] == "$.exported"
    assert finished["Next"] == "ShuffleExportFiles"
    reader = states["ShuffleExportFiles"]["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    # <export prefix>/AWSDynamoDB/<this export's id>/data/: not a duplicate export's files, nor
    # its manifests.
    assert reader["Parameters"]["Prefix.$"] == "$.exported.result.data_prefix"


@pytest.mark.parametrize(
    ("state", "concurrency"),
    [("ShuffleExportFiles", "ShuffleConcurrency"), ("ApplyBuckets", "ApplyConcurrency")],
)
def test_shuffle_and_apply_are_distributed_maps_sized_by_configuration(
    state: str, concurrency: str, definition: dict[str, Any]
) -> None:
    text = ASL_FILE.read_text()
    mapped = definition["States"][state]
    assert mapped["Type"] == "Map"
    # Standard child executions: a bucket's apply may take Lambda's 15 minutes (Express: 5).
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert mapped["MaxConcurrency"] == int(EXAMPLE_VALUES[concurrency])
    assert f'"MaxConcurrency": ${{{concurrency}}}' in text
    # Any failed item fails the map (no tolerated failures), and the map is caught.
    assert "ToleratedFailurePercentage" not in mapped and "ToleratedFailureCount" not in mapped
    assert _catch_targets(mapped) == {"Abandon"}
    assert mapped["ResultPath"] is None
    # The children return nothing: the map's result stays far below 256 KiB at any bucket count.
    (inner,) = mapped["ItemProcessor"]["States"].values()
    assert inner["OutputPath"] is None


def test_apply_maps_over_the_plans_buckets(definition: dict[str, Any]) -> None:
    apply = definition["States"]["ApplyBuckets"]
    assert apply["ItemsPath"] == "$.plan.result.buckets"
    assert "ItemReader" not in apply
    assert apply["ItemSelector"] == {"rebuild_id.$": "$.rebuild_id", "bucket.$": "$$.Map.Item.Value"}


def test_retire_is_a_loop_over_pages(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert states["StartRetiring"]["Result"]["result"]["cursor"] is None
    assert states["StartRetiring"]["ResultPath"] == "$.retired"
    retire = states["Retire"]
    assert retire["Parameters"]["Payload"]["cursor.$"] == "$.retired.result.cursor"
    assert retire["ResultPath"] == "$.retired"
    assert retire["Next"] == "RetireMore"
    more = states["RetireMore"]
    assert more["Choices"] == [{"Variable": "$.retired.result.more", "BooleanEquals": True, "Next": "Retire"}]
    assert states[more["Default"]]["Type"] == "Succeed"


def test_after_the_switch_failures_end_in_success_with_retirement_left(definition: dict[str, Any]) -> None:
    states = definition["States"]
    caught = {"RetirementFailed"}
    after = _reachable(definition, states["Switch"]["Next"], stop_at=caught) - caught
    assert "Retire" in after and "Abandon" not in after and "RebuildFailed" not in after
    catching = [name for name in after if states[name]["Type"] in CATCHING_TYPES]
    assert catching and all(_catch_targets(states[name]) == {"RetirementFailed"} for name in catching)
    failed = states["RetirementFailed"]
    assert failed["Parameters"]["Payload"] == {
        "step": "retirement_failed",
        "rebuild_id.$": "$.rebuild_id",
        "error.$": "$.error",
    }
    assert states[failed["Next"]]["Type"] == "Succeed"
    # If even that fails, the execution fails and the status-change rule calls the worker again.
    assert {states[name]["Type"] for name in _catch_targets(failed)} == {"Fail"}


def test_before_the_switch_failures_abandon(definition: dict[str, Any]) -> None:
    states = definition["States"]
    before = _reachable(definition, "Begin", stop_at={"Switch", "Abandon"}) - {"Abandon"}
    catching = [name for name in before if states[name]["Type"] in CATCHING_TYPES]
    expected = {"Begin", "ExportEvents", "ShuffleExportFiles", "ApplyBuckets", "Verify", "CatchUp", "Switch"}
    assert expected <= set(catching)
    assert all(_catch_targets(states[name]) == {"Abandon"} for name in catching)


def test_abandon_that_fails_still_ends_the_execution(definition: dict[str, Any]) -> None:
    states = definition["States"]
    abandon = states["Abandon"]
    assert states[abandon["Next"]]["Type"] == "Fail"
    (target,) = _catch_targets(abandon)
    assert states[target]["Type"] == "Fail"
    assert states[target]["CausePath"] == abandon["Catch"][0]["ResultPath"] + ".Cause"


def test_every_lambda_task_is_a_worker_step_retried_on_lambda_errors(definition: dict[str, Any]) -> None:
    steps = set()
    for name, state in _lambda_tasks(definition):
        assert state["Parameters"]["FunctionName"] == EXAMPLE_VALUES["RebuildWorkerArn"], name
        steps.add(state["Parameters"]["Payload"]["step"])
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        # The worker's steps are idempotent, so a step that ran but whose answer was lost is
        # simply run again.
        assert retried >= LAMBDA_SERVICE_ERRORS, name
    assert steps == WORKER_STEPS
