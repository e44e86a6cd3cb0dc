"""Projections read the events stream through event source mappings with a dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from infra.projections import registered_projections
from tests.infra.helpers import Synthesized

# The three the project started with; the registry may hold more, and each gets the same treatment.
REQUIRED_PROJECTIONS = {"customer_orders", "sales_analytics", "inventory"}
PROJECTION_NAMES = tuple(p.name for p in registered_projections())


def _mapping(synthesized: Synthesized, name: str) -> dict[str, Any]:
    function_id = synthesized.logical_id(synthesized.stack.projections.functions[name])
    found = [
        m["Properties"]
        for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert len(found) == 1
    return found[0]


def test_one_function_and_mapping_per_projection(synthesized: Synthesized) -> None:
    assert set(synthesized.stack.projections.functions) == set(PROJECTION_NAMES) >= REQUIRED_PROJECTIONS
    assert len(synthesized.of_type("AWS::Lambda::EventSourceMapping")) == len(PROJECTION_NAMES)


@pytest.mark.parametrize("name", PROJECTION_NAMES)
def test_event_source_mapping_settings(synthesized: Synthesized, name: str) -> None:
    events = synthesized.logical_id(synthesized.stack.event_store.events)
    queue = synthesized.logical_id(synthesized.stack.projections.dead_letters)
    mapping = _mapping(synthesized, name)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [events, "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 100
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 5
    assert mapping["MaximumRecordAgeInSeconds"] == 24 * 3600
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}}


@pytest.mark.parametrize("name", PROJECTION_NAMES)
def test_projection_function_environment(synthesized: Synthesized, name: str) -> None:
    stack = synthesized.stack
    spec = {p.name: p for p in registered_projections()}[name].table
    function = synthesized.resources[synthesized.logical_id(stack.projections.functions[name])]
    assert function["Properties"]["Handler"] == "projections.handler.lambda_handler"
    assert function["Properties"]["Environment"]["Variables"] == {
        "PROJECTION_NAME": name,
        "EVENTS_TABLE": {"Ref": synthesized.logical_id(stack.event_store.events)},
        "PROJECTIONS_CONTROL_TABLE": {"Ref": synthesized.logical_id(stack.read_models.control)},
        spec.env_var: {"Ref": synthesized.logical_id(stack.read_models.table(spec))},
    }


def test_on_failure_queue_is_encrypted_tls_only_and_keeps_14_days(synthesized: Synthesized) -> None:
    queue_id = synthesized.logical_id(synthesized.stack.projections.dead_letters)
    queue = synthesized.resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [
        p["Properties"]
        for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
