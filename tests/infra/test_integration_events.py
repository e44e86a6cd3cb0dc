"""Integration events in the stack: the bus (named per stage) with its archive, the publisher
function as the events stream's second reader, its least privilege, alarms and outputs.

The stream keeps its two readers at most (DynamoDB Streams throttles a shard read by more): the
projector for every read model, and the publisher for everything outside the service."""

from __future__ import annotations

import json
from typing import Any

from orders_core.integration.events import PUBLISHED_AGGREGATES, SOURCE
from orders_core.integration.publisher import SERVICE as PUBLISHER_SERVICE
from tests.infra.helpers import Synthesized, all_actions, permissions, references, role_statements

STREAM_READERS_PER_SHARD = 2
STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
BASELINE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _ids(synthesized: Synthesized) -> dict[str, str]:
    stack = synthesized.stack
    feed = stack.integration_events
    return {
        "bus": synthesized.logical_id(feed.bus),
        "archive": synthesized.logical_id(feed.archive),
        "publisher": synthesized.logical_id(feed.function),
        "role": synthesized.logical_id(feed.handler.role),
        "queue": synthesized.logical_id(feed.dead_letters),
        "events": synthesized.logical_id(stack.event_store.events),
        "projector": synthesized.logical_id(stack.projections.function),
    }


def _stream_readers(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Function logical id -> its event source mapping, for every mapping on the events stream."""
    stream = {"Fn::GetAtt": [_ids(synthesized)["events"], "StreamArn"]}
    return {
        mapping["Properties"]["FunctionName"]["Ref"]: mapping["Properties"]
        for mapping in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["EventSourceArn"] == stream
    }


def test_the_events_stream_has_two_readers_the_projector_and_the_publisher(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    readers = _stream_readers(synthesized)
    assert len(readers) <= STREAM_READERS_PER_SHARD
    assert set(readers) == {ids["projector"], ids["publisher"]}


def test_the_bus_is_named_per_stage(synthesized: Synthesized, context: dict[str, Any]) -> None:
    bus = synthesized.resources[_ids(synthesized)["bus"]]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == f"orders-{context['stage']}"


def test_the_archive_keeps_every_orders_event_for_90_days(
    synthesized: Synthesized, context: dict[str, Any]
) -> None:
    ids = _ids(synthesized)
    archive = synthesized.resources[ids["archive"]]["Properties"]
    assert archive["SourceArn"] == {"Fn::GetAtt": [ids["bus"], "Arn"]}
    assert archive["EventPattern"] == {"source": [SOURCE]}
    assert archive["RetentionDays"] == 90
    assert archive["ArchiveName"] == f"orders-{context['stage']}-events"
    (only,) = synthesized.of_type("AWS::Events::Archive")
    assert only == ids["archive"]


def test_publisher_mapping_settings(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    mapping = _stream_readers(synthesized)[ids["publisher"]]
    # The projector's settings (tests/infra/test_projections.py), for the same reasons.
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 100
    assert mapping["MaximumBatchingWindowInSeconds"] == 1
    assert mapping["BisectBatchOnFunctionError"] is True
    # A bus out of reach must not cost events: retried for as long as the records live.
    assert mapping["MaximumRetryAttempts"] == -1
    assert mapping["MaximumRecordAgeInSeconds"] == 24 * 3600
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
    }
    # One batch per shard at a time: a stream's events go out in order.
    assert "ParallelizationFactor" not in mapping
    ((pattern,),) = [[json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]]
    assert pattern == {
        "eventName": ["INSERT"],
        "dynamodb": {
            "NewImage": {"stream_id": {"S": [{"prefix": a.stream_prefix} for a in PUBLISHED_AGGREGATES]}}
        },
    }


def test_publisher_function(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    function = synthesized.resources[ids["publisher"]]["Properties"]
    assert function["Handler"] == "integration_publisher.handler.lambda_handler"
    assert function["Description"] == "Integration events: events stream -> the event bus"
    assert function["Timeout"] == 60
    # The bus's name and nothing else: it reads no table, only the stream.
    assert function["Environment"]["Variables"] == {"INTEGRATION_EVENT_BUS": {"Ref": ids["bus"]}}


def test_publisher_role_holds_exactly_what_its_code_calls(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    statements = role_statements(synthesized, ids["role"])
    assert permissions(statements, prefix="events:") == {("events:PutEvents", f"<{ids['bus']}.Arn>")}
    assert permissions(statements, prefix="dynamodb:") == {
        *((action, f"<{ids['events']}.StreamArn>") for action in STREAM_READS),
        ("dynamodb:ListStreams", "*"),
    }
    queue = f"<{ids['queue']}.Arn>"
    sqs = permissions(statements, prefix="sqs:")
    assert ("sqs:SendMessage", queue) in sqs
    assert sqs <= {(a, queue) for a in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")}
    others = {a for a in all_actions(statements) if not a.startswith(("dynamodb:", "sqs:", "events:"))}
    assert others == BASELINE


def test_only_the_publisher_puts_events_on_the_bus(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    for function_id, function in synthesized.of_type("AWS::Lambda::Function").items():
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        puts = {a for a in all_actions(role_statements(synthesized, role)) if a.startswith("events:")}
        assert puts == ({"events:PutEvents"} if function_id == ids["publisher"] else set()), function_id
    # Nobody else was given the bus through a resource policy either.
    assert not synthesized.of_type("AWS::Events::EventBusPolicy")


def test_on_failure_queue_is_encrypted_tls_only_and_keeps_14_days(synthesized: Synthesized) -> None:
    queue_id = _ids(synthesized)["queue"]
    queue = synthesized.resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [
        p["Properties"]
        for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _alarms(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()]


def test_alarms_on_the_publishers_lag_failures_and_dead_letters(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    alarms = _alarms(synthesized)

    def on(dimension: str, value: Any, metric: str) -> dict[str, Any]:
        (alarm,) = [
            a
            for a in alarms
            if a.get("MetricName") == metric
            and {"Name": dimension, "Value": value} in a.get("Dimensions", [])
        ]
        return alarm

    age = on("FunctionName", {"Ref": ids["publisher"]}, "IteratorAge")
    assert age["Threshold"] == 5 * 60 * 1000 and age["ComparisonOperator"] == "GreaterThanThreshold"
    depth = on("QueueName", {"Fn::GetAtt": [ids["queue"], "QueueName"]}, "ApproximateNumberOfMessagesVisible")
    assert depth["Threshold"] == 1
    failures = on("service", PUBLISHER_SERVICE, "PublishFailures")
    # The EMF metric's whole dimension set, or the alarm watches nothing.
    assert failures["Dimensions"] == [{"Name": "service", "Value": PUBLISHER_SERVICE}]
    assert failures["Namespace"] == "Orders"
    assert failures["Statistic"] == "Sum" and failures["Threshold"] == 1
    for metric in ("Errors", "Throttles"):
        assert on("FunctionName", {"Ref": ids["publisher"]}, metric)["Threshold"] == 1


def test_outputs_name_the_bus_and_its_archive(synthesized: Synthesized) -> None:
    ids = _ids(synthesized)
    outputs = synthesized.json["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": ids["bus"]}
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": [ids["bus"], "Arn"]}
    assert references(outputs["EventArchiveArn"]["Value"]) == {(ids["archive"], "Arn")}
    assert references(outputs["IntegrationOnFailureQueueUrl"]["Value"]) == {(ids["queue"], "Ref")}
