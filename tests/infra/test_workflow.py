"""workflows/rebuild.asl.json, rendered as a deployment renders it, is valid ASL (npm asl-validator).

cfn-lint does not look into state machine definitions, and the definition reaches CloudFormation as
a file asset, so this is the check. Without node_modules (no `npm ci`) the test is skipped on a
workstation and fails in CI (`CI=true`): an unchecked workflow must not pass as a checked one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import workflow
from infra.workflow import ASL_FILE, ASL_VALIDATOR, EXAMPLE_VALUES


@pytest.fixture(scope="module")
def validator() -> Path:
    if not ASL_VALIDATOR.exists():
        message = f"{ASL_VALIDATOR} is missing: run `npm ci` (make synth does)"
        if workflow.validator_missing_is_fatal():
            pytest.fail(message)
        pytest.skip(message)
    return ASL_VALIDATOR


def test_missing_validator_fails_in_ci() -> None:
    assert workflow.validator_missing_is_fatal({"CI": "true"})
    assert workflow.validator_missing_is_fatal({"CI": "1"})
    assert not workflow.validator_missing_is_fatal({})


def test_placeholders_are_the_three_the_stack_fills() -> None:
    assert workflow.placeholders(ASL_FILE.read_text()) == {
        "RebuildWorkerArn",
        "EventsTableArn",
        "ExportBucket",
    }


def test_rendering_needs_a_value_for_every_placeholder() -> None:
    text = ASL_FILE.read_text()
    with pytest.raises(ValueError, match="missing: \\['ExportBucket'\\]"):
        workflow.render(text, {k: v for k, v in EXAMPLE_VALUES.items() if k != "ExportBucket"})
    with pytest.raises(ValueError, match="unused: \\['Extra'\\]"):
        workflow.render(text, {**EXAMPLE_VALUES, "Extra": "x"})
    assert "${" not in workflow.render(text, EXAMPLE_VALUES)


def test_rendered_workflow_is_valid_asl(validator: Path) -> None:
    result = workflow.validate_rendered()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_validator_rejects_a_broken_workflow(validator: Path, tmp_path: Path) -> None:
    # An empty "passed" must mean "checked": a definition with a dangling Next fails.
    definition = json.loads(workflow.render(ASL_FILE.read_text(), EXAMPLE_VALUES))
    definition["States"]["Begin"]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    result = workflow.validate(broken)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr


def test_catch_up_retries_are_bounded() -> None:
    # The worker's error alarm tolerates exactly this many NotCaughtUp errors per run.
    definition = json.loads(ASL_FILE.read_text())
    assert 0 < workflow.retry_attempts(definition, "NotCaughtUp") <= 20
    assert workflow.retry_attempts(definition, "NoSuchError") == 0
