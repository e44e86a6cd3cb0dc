"""Alarms on what needs a person: lag, parked commits, dead letters, errors, throttles, 5xx; plus a
dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from infra.application import build
from infra.monitoring import TABLE_OPERATIONS, Concern, expected_worker_errors
from infra.projections import registered_projections
from infra.settings import DEVELOPMENT_STAGES
from infra.workflow import definition, retry_attempts
from orders_core.live import notifier as live_notifier
from orders_core.tables import READ_MODEL_TABLES
from tests.infra.helpers import Synthesized, resource_text


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


def test_iterator_age_alarm_on_the_projector(synthesized: Synthesized) -> None:
    # One per stream reader: the projector's here, the integration publisher's in
    # tests/infra/test_integration_events.py.
    projector = {"Ref": synthesized.logical_id(synthesized.stack.projections.function)}
    (alarm,) = [a for a in _alarms(synthesized, "IteratorAge") if _dimension(a, "FunctionName") == projector]
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 5 * 60 * 1000


def test_iterator_age_alarm_on_the_live_notifier(synthesized: Synthesized) -> None:
    notifier = {"Ref": synthesized.logical_id(synthesized.stack.live_updates.notifier)}
    (alarm,) = [a for a in _alarms(synthesized, "IteratorAge") if _dimension(a, "FunctionName") == notifier]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 5 * 60 * 1000
    assert "live updates" in alarm["AlarmDescription"]


def test_parked_commits_alarm_per_read_model(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized, "ParkedCommits")
    names = [p.name for p in registered_projections()]
    # One per read model (product_sales too, once registered), each on its own.
    assert set(names) >= {"customer_orders", "sales_analytics", "inventory", "customer_summary"}
    assert sorted(_dimension(a, "projection") for a in alarms) == sorted(names)
    for alarm in alarms:
        name = _dimension(alarm, "projection")
        # The projector's EMF metric: exactly its dimension set, or the alarm watches nothing.
        assert alarm["Namespace"] == "Orders"
        assert sorted(d["Name"] for d in alarm["Dimensions"]) == ["projection", "service"]
        assert _dimension(alarm, "service") == "orders-projections"
        assert alarm["Statistic"] == "Sum"
        assert alarm["Period"] == 300
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        description = alarm["AlarmDescription"]
        assert name in description
        assert "orders failures" in description
        assert description.index("orders failures") < description.index("orders replay-failures")


def test_dead_letter_depth_alarms(synthesized: Synthesized) -> None:
    # The projector's, the integration publisher's and the live notifier's on-failure queues, and the runs the
    # status-change rule could not abandon.
    stack = synthesized.stack
    alarms = {
        _dimension(a, "QueueName")["Fn::GetAtt"][0]: a
        for a in _alarms(synthesized, "ApproximateNumberOfMessagesVisible")
    }
    queues = [
        stack.projections.dead_letters,
        stack.integration_events.dead_letters,
        stack.live_updates.dead_letters,
        stack.rebuild.dead_letters,
    ]
    assert sorted(alarms) == sorted(synthesized.logical_id(q) for q in queues)
    for alarm in alarms.values():
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (
        "could not be abandoned"
        in alarms[synthesized.logical_id(stack.rebuild.dead_letters)]["AlarmDescription"]
    )


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
            not_caught_up = retry_attempts(definition(), "NotCaughtUp")
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
        "Projector iterator age and lag (ms)",
        "Parked commits by read model",
        "Rebuild executions",
        "Rebuild worker",
    ):
        assert title in body, title
    # ParkedCommits of every read model, and the projector's lag, as the projector emits them.
    graphs = {w["properties"].get("title"): _graphed(w) for w in _dashboard_widgets(dashboard)}
    assert sorted(graphs["Parked commits by read model"], key=str) == sorted(
        (
            ("Orders", "ParkedCommits", {"service": "orders-projections", "projection": p.name})
            for p in registered_projections()
        ),
        key=str,
    )
    assert ("Orders", "ProjectionLag", {"service": "orders-projections"}) in graphs[
        "Projector iterator age and lag (ms)"
    ]


def _graphed(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of each line of a graph."""
    lines = []
    for line in widget["properties"].get("metrics", []):
        values = [v for v in line if not isinstance(v, dict)]
        namespace, name, *dimensions = values
        lines.append((namespace, name, dict(zip(dimensions[::2], dimensions[1::2], strict=True))))
    return lines


def _dashboard_widgets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard body's widgets, references to resources shown as `<LogicalId>` (Ref) or
    `<LogicalId.Attribute>` (Fn::GetAtt)."""
    separator, parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"]
    body = str(separator).join(resource_text(part) for part in parts)
    widgets: list[dict[str, Any]] = json.loads(body)["widgets"]
    return widgets


def test_dashboard_shows_the_live_notifier(synthesized: Synthesized) -> None:
    live = synthesized.stack.live_updates
    notifier = {"FunctionName": f"<{synthesized.logical_id(live.notifier)}>"}
    on_failure_queue = {"QueueName": f"<{synthesized.logical_id(live.dead_letters)}.QueueName>"}
    websocket_stage = {"ApiId": f"<{synthesized.logical_id(live.api)}>", "Stage": live.stage.stage_name}
    (dashboard,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    widgets = {w["properties"].get("title"): w for w in _dashboard_widgets(dashboard)}
    row = [
        widgets["Live notifier iterator age (ms)"],
        widgets["Live notifier invocations, errors, on-failure queue"],
        widgets["Live notifier: what it told, and what it could not"],
        widgets["Live updates WebSocket API: connects, messages, errors"],
    ]
    assert len({w["y"] for w in row}) == 1, "one row"
    iterator_age, invocations, told, websocket = (_graphed(w) for w in row)
    # Its own EMF metrics, under the dimension its handler writes them with
    service = {"service": live_notifier.SERVICE}
    assert sorted(told) == sorted(
        ("Orders", metric, service)
        for metric in (
            live_notifier.UPDATES_ANNOUNCED,
            live_notifier.ALERTS_RAISED,
            live_notifier.MESSAGES_DELIVERED,
            live_notifier.CONNECTIONS_GONE,
            live_notifier.CHANGES_NOT_PUSHED,
        )
    )
    assert iterator_age == [("AWS/Lambda", "IteratorAge", notifier)]
    assert sorted(invocations, key=str) == sorted(
        [
            ("AWS/Lambda", "Invocations", notifier),
            ("AWS/Lambda", "Errors", notifier),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", on_failure_queue),
        ],
        key=str,
    )
    assert sorted(websocket) == sorted(
        ("AWS/ApiGateway", metric, websocket_stage)
        for metric in ("ConnectCount", "MessageCount", "ClientError", "ExecutionError")
    )


def test_every_alarm_belongs_to_exactly_one_concern(synthesized: Synthesized) -> None:
    monitoring = synthesized.stack.monitoring
    concerns = [c for c in monitoring.node.children if isinstance(c, Concern)]
    assert {type(c).__name__ for c in concerns} == {
        "ApiMonitoring",
        "FunctionsMonitoring",
        "ProjectorMonitoring",
        "PublisherMonitoring",
        "LiveNotifierMonitoring",
        "RebuildsMonitoring",
        "TablesMonitoring",
    }
    by_concern = [alarm for concern in concerns for alarm in concern.alarms]
    assert len({id(alarm) for alarm in by_concern}) == len(by_concern), "an alarm in two concerns"
    assert sorted(map(id, by_concern)) == sorted(map(id, monitoring.alarms))
    for concern in concerns:
        assert all(alarm.node.scope is concern for alarm in concern.alarms), type(concern).__name__
    assert sorted(synthesized.logical_id(alarm) for alarm in by_concern) == sorted(
        synthesized.of_type("AWS::CloudWatch::Alarm")
    )


def test_alarm_topic_is_optional_for_dev_only(synthesized: Synthesized, context: dict[str, Any]) -> None:
    actions = [
        a["Properties"].get("AlarmActions") for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    ]
    if context.get("alarmTopicArn"):
        assert all(a == [context["alarmTopicArn"]] for a in actions)
    else:
        assert context["stage"] in DEVELOPMENT_STAGES
        assert not any(actions)


def test_a_stage_other_than_dev_needs_an_alarm_topic(context: dict[str, Any]) -> None:
    app = App(context={**context, "stage": "prod"})
    with pytest.raises(ValueError, match="'alarmTopicArn' is missing for stage 'prod'"):
        build(app)


# A stage other than dev names its app clients' redirect URLs (infra/settings.py, AuthSettings).
PROD_AUTH_URLS = {
    "authWebCallbackUrls": "https://shop.example.com/callback",
    "authWebLogoutUrls": "https://shop.example.com/",
    "authMobileCallbackUrls": "com.example.shop://callback",
    "authMobileLogoutUrls": "com.example.shop://signed-out",
}


def test_with_a_topic_every_alarm_notifies_it(context: dict[str, Any], tmp_path: Path) -> None:
    topic = "arn:aws:sns:eu-west-1:123456789012:orders-prod-alarms"
    app = App(
        context={**context, "stage": "prod", "alarmTopicArn": topic, **PROD_AUTH_URLS},
        outdir=str(tmp_path),
        builtin_cloud_formation_validation=False,
    )
    stack = build(app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    alarms = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert len(alarms) > 20
    for alarm in alarms:
        assert alarm["AlarmActions"] == [topic], alarm["AlarmDescription"]
        assert alarm["OKActions"] == [topic], alarm["AlarmDescription"]
    # A second stage in the same account: its own API and dashboard names.
    (api,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Api" and r["Properties"]["ProtocolType"] == "HTTP"
    ]
    assert api["Properties"]["Name"] == "orders-prod"


def test_dashboard_name_holds_stage_and_region(synthesized: Synthesized, context: dict[str, Any]) -> None:
    # Dashboard names are global to the account: the same stage in two regions must not collide.
    (dashboard,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == {
        "Fn::Join": ["-", [f"orders-{context['stage']}", {"Ref": "AWS::Region"}, "overview"]]
    }


def test_http_api_is_named_per_stage(synthesized: Synthesized, context: dict[str, Any]) -> None:
    (api,) = synthesized.of_http_api("AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["Name"] == f"orders-{context['stage']}"


def test_projection_failures_alarm(synthesized: Synthesized) -> None:
    # Partial-batch failures the projector reports (and retries): not Lambda errors.
    (alarm,) = _alarms(synthesized, "ProjectionFailures")
    assert alarm["Namespace"] == "Orders"
    assert sorted(d["Name"] for d in alarm["Dimensions"]) == ["projection", "service"]
    assert _dimension(alarm, "service") == "orders-projections"
    assert _dimension(alarm, "projection") == "projector"
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_rebuild_aborted_alarm(synthesized: Synthesized) -> None:
    state_machine = {"Ref": synthesized.logical_id(synthesized.stack.rebuild.state_machine)}
    (alarm,) = _alarms(synthesized, "ExecutionsAborted")
    assert alarm["Namespace"] == "AWS/States"
    assert _dimension(alarm, "StateMachineArn") == state_machine
    assert alarm["Threshold"] == 1


def _table_alarms(synthesized: Synthesized, metric_name: str) -> dict[str, dict[str, Any]]:
    """Logical id of the table -> its alarm on the per-operation metric, summed over operations."""
    found: dict[str, dict[str, Any]] = {}
    for resource in synthesized.of_type("AWS::CloudWatch::Alarm").values():
        alarm = resource["Properties"]
        stats = [q["MetricStat"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        if not stats or any(s["Metric"]["MetricName"] != metric_name for s in stats):
            continue
        tables = {_dimension(s["Metric"], "TableName")["Ref"] for s in stats}
        operations = {_dimension(s["Metric"], "Operation") for s in stats}
        (table,) = tables
        assert operations == {o.value for o in TABLE_OPERATIONS}
        assert len(stats) <= 10  # a metric-math alarm holds at most 10 metrics
        (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
        assert expression.count("FILL(") == len(stats)  # an idle operation counts as 0
        found[table] = alarm
    return found


def test_throttle_and_system_error_alarms_per_table(synthesized: Synthesized) -> None:
    every_table = set(synthesized.of_type("AWS::DynamoDB::Table"))
    events = synthesized.logical_id(synthesized.stack.event_store.events)
    reads = {synthesized.logical_id(synthesized.stack.read_models.table(s)) for s in READ_MODEL_TABLES}
    assert {events} | reads <= every_table
    for metric in ("ThrottledRequests", "SystemErrors"):
        alarms = _table_alarms(synthesized, metric)
        assert set(alarms) == every_table, metric
        for alarm in alarms.values():
            assert alarm["Threshold"] == 1
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert alarm["TreatMissingData"] == "notBreaching"
