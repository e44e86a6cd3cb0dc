"""The local stand-in for the stack's status-change rule: executions that end ABORTED, TIMED_OUT or
FAILED reach the worker as the EventBridge event the rule would deliver; others do not.

Tiny state machines on moto's interpreter, a few seconds in all: they also show that moto runs an
execution's `TimeoutSeconds` and StopExecution as AWS does."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from orders_local.lambda_events import DEFAULT_ACCOUNT_ID
from orders_local.rebuild_runner import (
    ENDED_WITHOUT_SUCCESS,
    STATUS_CHANGE,
    ExecutionWatcher,
    install_lambda_dispatch,
)

ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/watched"


@pytest.fixture
def stepfunctions(moto_session: None) -> Any:
    install_lambda_dispatch({})  # runs executions for real (moto's execute_state_machine)
    return boto3.client("stepfunctions", region_name="us-east-1")


def _machine(stepfunctions: Any, states: dict[str, Any], **top: Any) -> str:
    definition = {"StartAt": next(iter(states)), "States": states, **top}
    name = f"watched-{uuid.uuid4().hex[:8]}"
    return str(
        stepfunctions.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
            "stateMachineArn"
        ]
    )


def _start(stepfunctions: Any, machine: str, name: str) -> str:
    return str(stepfunctions.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"])


def _wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.fixture
def watched(stepfunctions: Any) -> Iterator[tuple[str, list[dict[str, Any]], ExecutionWatcher]]:
    # One state machine whose executions end as their input's name says: wait, fail or succeed.
    machine = _machine(
        stepfunctions,
        {
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$$.Execution.Name", "StringMatches": "wait-*", "Next": "Wait"},
                    {"Variable": "$$.Execution.Name", "StringMatches": "fail-*", "Next": "Fail"},
                ],
                "Default": "Done",
            },
            "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Done"},
            "Fail": {"Type": "Fail", "Error": "Broken", "Cause": "on purpose"},
            "Done": {"Type": "Succeed"},
        },
        TimeoutSeconds=2,
    )
    delivered: list[dict[str, Any]] = []
    watcher = ExecutionWatcher(stepfunctions, machine, delivered.append, interval=0.1).start()
    yield machine, delivered, watcher
    watcher.stop()


def test_stopped_timed_out_and_failed_executions_reach_the_worker(
    stepfunctions: Any, watched: tuple[str, list[dict[str, Any]], ExecutionWatcher]
) -> None:
    machine, delivered, _ = watched
    stopped = _start(stepfunctions, machine, "wait-stopped")
    timed_out = _start(stepfunctions, machine, "wait-timed-out")
    failed = _start(stepfunctions, machine, "fail-1")
    succeeded = _start(stepfunctions, machine, "ok-1")
    time.sleep(0.3)
    stepfunctions.stop_execution(executionArn=stopped, error="Operator", cause="stopped by hand")

    _wait_until(lambda: len(delivered) == 3)
    by_name = {event["detail"]["name"]: event for event in delivered}
    assert {name: event["detail"]["status"] for name, event in by_name.items()} == {
        "wait-stopped": "ABORTED",
        "wait-timed-out": "TIMED_OUT",  # the execution's TimeoutSeconds (2 s) ran out in its Wait
        "fail-1": "FAILED",
    }
    for arn, name in ((stopped, "wait-stopped"), (timed_out, "wait-timed-out"), (failed, "fail-1")):
        event = by_name[name]
        # What the rule delivers: the worker tells it by its detail-type, finds the run by name.
        assert event["source"] == "aws.states"
        assert event["detail-type"] == STATUS_CHANGE == "Step Functions Execution Status Change"
        assert event["resources"] == [arn]
        assert event["detail"]["executionArn"] == arn
        assert event["detail"]["stateMachineArn"] == machine
        assert event["account"] == DEFAULT_ACCOUNT_ID and event["region"] == "us-east-1"
        assert "step" not in event
        json.dumps(event)  # as EventBridge hands it over: plain JSON
    assert by_name["fail-1"]["detail"]["error"] == "Broken"
    assert stepfunctions.describe_execution(executionArn=succeeded)["status"] == "SUCCEEDED"
    assert set(ENDED_WITHOUT_SUCCESS) == {"ABORTED", "TIMED_OUT", "FAILED"}
    # Each once, however many times the watcher looks.
    time.sleep(0.3)
    assert len(delivered) == 3


def test_executions_that_ended_before_the_watcher_are_not_reported(stepfunctions: Any) -> None:
    machine = _machine(stepfunctions, {"Fail": {"Type": "Fail", "Error": "Old"}})
    old = _start(stepfunctions, machine, "old")
    _wait_until(lambda: stepfunctions.describe_execution(executionArn=old)["status"] == "FAILED")
    delivered: list[dict[str, Any]] = []
    watcher = ExecutionWatcher(stepfunctions, machine, delivered.append, interval=0.1).start()
    try:
        _start(stepfunctions, machine, "new")
        _wait_until(lambda: len(delivered) == 1)
        time.sleep(0.3)
        assert [event["detail"]["name"] for event in delivered] == ["new"]
    finally:
        watcher.stop()


def test_a_delivery_that_keeps_failing_is_retried_then_dead_lettered(stepfunctions: Any) -> None:
    machine = _machine(stepfunctions, {"Fail": {"Type": "Fail", "Error": "Broken"}})
    calls: list[str] = []

    def flaky(event: dict[str, Any]) -> None:
        calls.append(event["detail"]["name"])
        raise RuntimeError("worker down")

    watcher = ExecutionWatcher(stepfunctions, machine, flaky, interval=0.1, retry_pause=0.01).start()
    try:
        _start(stepfunctions, machine, "unlucky")
        _wait_until(lambda: bool(watcher.dead_letters))
        assert calls == ["unlucky"] * 3
        ((event, reason),) = watcher.dead_letters
        assert event["detail"]["name"] == "unlucky" and reason == "RuntimeError: worker down"
        assert watcher.delivered == []
    finally:
        watcher.stop()
