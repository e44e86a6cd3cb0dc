"""Alarms on what needs a person: lag, dead letters, errors, throttles, 5xx; plus a dashboard."""

from __future__ import annotations

import json
from typing import Any

from infra.monitoring import expected_worker_errors
from infra.workflow import ASL_FILE, retry_attempts
from tests.infra.helpers import Synthesized


def _alarms(synthesized: Synthesized, metric_name: str) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric_name
    ]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    (value,) = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == name]
    return value


def _function_refs(synthesized: Synthesized, functions: list[Any]) -> list[dict[str, str]]:
    return sorted(({"Ref": synthesized.logical_id(f)} for f in functions), key=str)


def test_iterator_age_alarm_per_projection(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized, "IteratorAge")
    projections = list(synthesized.stack.projections.functions.values())
    assert sorted((_dimension(a, "FunctionName") for a in alarms), key=str) == _function_refs(
        synthesized, projections
    )
    for alarm in alarms:
        assert alarm["Statistic"] == "Maximum"
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == 5 * 60 * 1000


def test_dead_letter_depth_alarm(synthesized: Synthesized) -> None:
    (alarm,) = _alarms(synthesized, "ApproximateNumberOfMessagesVisible")
    queue = synthesized.logical_id(synthesized.stack.projections.dead_letters)
    assert _dimension(alarm, "QueueName") == {"Fn::GetAtt": [queue, "QueueName"]}
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_errors_and_throttles_alarms_for_every_function(synthesized: Synthesized) -> None:
    every_function = sorted(
        ({"Ref": logical_id} for logical_id in synthesized.of_type("AWS::Lambda::Function")), key=str
    )
    for metric in ("Errors", "Throttles"):
        alarms = _alarms(synthesized, metric)
        assert sorted((_dimension(a, "FunctionName") for a in alarms), key=str) == every_function, metric


def test_error_alarms_fire_on_the_first_error_except_the_rebuild_workers(synthesized: Synthesized) -> None:
    worker = {"Ref": synthesized.logical_id(synthesized.stack.rebuild.worker.function)}
    for alarm in _alarms(synthesized, "Errors"):
        if _dimension(alarm, "FunctionName") == worker:
            # It raises NotCaughtUp on purpose while the workflow waits for the catch-up marker
            # (retried up to N times per run); one error more than that is not a normal run.
            not_caught_up = retry_attempts(json.loads(ASL_FILE.read_text()), "NotCaughtUp")
            assert alarm["Threshold"] == expected_worker_errors() + 1 == not_caught_up + 1
        else:
            assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Period"] == 300


def test_rebuild_failures_and_timeouts_alarm(synthesized: Synthesized) -> None:
    state_machine = {"Ref": synthesized.logical_id(synthesized.stack.rebuild.state_machine)}
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        (alarm,) = _alarms(synthesized, metric)
        assert alarm["Namespace"] == "AWS/States"
        assert _dimension(alarm, "StateMachineArn") == state_machine
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_api_5xx_alarm(synthesized: Synthesized) -> None:
    (alarm,) = _alarms(synthesized, "5xx")
    assert alarm["Namespace"] == "AWS/ApiGateway"
    assert _dimension(alarm, "ApiId") == {"Ref": synthesized.logical_id(synthesized.stack.http_api.api)}


def test_alarms_do_not_fire_on_missing_data(synthesized: Synthesized) -> None:
    for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"


def test_dashboard(synthesized: Synthesized) -> None:
    (dashboard,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in (
        "API requests and errors",
        "Projection iterator age (ms)",
        "Rebuild executions",
        "Rebuild worker",
    ):
        assert title in body, title


def test_alarm_topic_is_optional(synthesized: Synthesized, context: dict[str, Any]) -> None:
    actions = [
        a["Properties"].get("AlarmActions") for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    ]
    if context.get("alarmTopicArn"):
        assert all(a == [context["alarmTopicArn"]] for a in actions)
    else:
        assert not any(actions)
