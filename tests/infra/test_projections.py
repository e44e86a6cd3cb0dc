"""One projector reads the events stream for every registered read model, through one event source
mapping with a dead-letter queue: DynamoDB Streams serves at most two readers per shard, and the
second is the integration publisher's (tests/infra/test_integration_events.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.projections import ProjectionSpec, registered_projections
from infra.settings import Settings
from infra.stack import OrdersStack
from orders_core.tables import CUSTOMER_ORDERS, READ_MODEL_TABLES, TableSpec
from tests.infra.helpers import Synthesized

# The read models the project has; the registry may hold more, and each is fed the same way.
REQUIRED_PROJECTIONS = {"customer_orders", "sales_analytics", "inventory", "customer_summary"}
PROJECTION_NAMES = tuple(p.name for p in registered_projections())
# DynamoDB Streams throttles a shard read by more than two processes.
STREAM_READERS_PER_SHARD = 2


def _events_stream(events_logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [events_logical_id, "StreamArn"]}


def _stream_mappings(template: dict[str, Any], events_logical_id: str) -> list[dict[str, Any]]:
    """Every event source mapping that reads the events table's stream."""
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["EventSourceArn"] == _events_stream(events_logical_id)
    ]


def _projector_mappings(
    template: dict[str, Any], events_logical_id: str, projector_logical_id: str
) -> list[dict[str, Any]]:
    """The mappings on the events stream that feed the projector."""
    return [
        m
        for m in _stream_mappings(template, events_logical_id)
        if m["FunctionName"] == {"Ref": projector_logical_id}
    ]


def _mapping(synthesized: Synthesized) -> dict[str, Any]:
    events = synthesized.logical_id(synthesized.stack.event_store.events)
    projector = synthesized.logical_id(synthesized.stack.projections.function)
    (mapping,) = _projector_mappings(synthesized.json, events, projector)
    return mapping


def test_every_registered_read_model_is_fed_by_the_projector(synthesized: Synthesized) -> None:
    assert set(PROJECTION_NAMES) >= REQUIRED_PROJECTIONS
    assert synthesized.stack.projections.read_models == PROJECTION_NAMES


def test_the_events_stream_has_at_most_two_readers(synthesized: Synthesized) -> None:
    events = synthesized.logical_id(synthesized.stack.event_store.events)
    assert len(_stream_mappings(synthesized.json, events)) <= STREAM_READERS_PER_SHARD


def test_every_read_model_shares_one_reader_leaving_the_other_for_the_change_feed(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack
    events = synthesized.logical_id(stack.event_store.events)
    projector = {"Ref": synthesized.logical_id(stack.projections.function)}
    publisher = {"Ref": synthesized.logical_id(stack.integration_events.function)}
    # Two mappings: the projector's for every read model, and the change feed's (integration events).
    readers = sorted((r["FunctionName"] for r in _stream_mappings(synthesized.json, events)), key=str)
    assert readers == sorted([projector, publisher], key=str)


def test_event_source_mapping_settings(synthesized: Synthesized) -> None:
    queue = synthesized.logical_id(synthesized.stack.projections.dead_letters)
    mapping = _mapping(synthesized)
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 100
    # Up to a second of commits per batch: shared rows are written once a second, not per commit.
    assert mapping["MaximumBatchingWindowInSeconds"] == 1
    assert mapping["BisectBatchOnFunctionError"] is True
    # Failed batches (a store out of reach) are retried for as long as the records live.
    assert mapping["MaximumRetryAttempts"] == -1
    assert mapping["MaximumRecordAgeInSeconds"] == 24 * 3600
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}}
    assert "ParallelizationFactor" not in mapping  # one batch per shard at a time: commits in order


def test_projector_function_environment(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    function = synthesized.resources[synthesized.logical_id(stack.projections.function)]["Properties"]
    assert function["Handler"] == "projections.handler.lambda_handler"
    assert function["Description"] == "Projector: events stream -> every registered read model"
    owned = {p.table for p in registered_projections()}
    assert owned == set(READ_MODEL_TABLES)
    assert function["Environment"]["Variables"] == {
        "EVENTS_TABLE": {"Ref": synthesized.logical_id(stack.event_store.events)},
        "PROJECTIONS_CONTROL_TABLE": {"Ref": synthesized.logical_id(stack.read_models.control)},
        **{spec.env_var: {"Ref": synthesized.logical_id(stack.read_models.table(spec))} for spec in owned},
    }
    # No PROJECTION_NAME: the one function feeds every read model.
    assert "PROJECTION_NAME" not in function["Environment"]["Variables"]


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


# -- stacks with other registrations ----------------------------------------------------------------


def _stack(
    context: dict[str, Any], outdir: Path, projections: tuple[ProjectionSpec, ...] | None = None
) -> tuple[OrdersStack, dict[str, Any]]:
    """A stack with these read models (default: the registry's), synthesized without cdk-nag (the
    session's fixture checks the real one)."""
    app = App(context=context, outdir=str(outdir), builtin_cloud_formation_validation=False)
    stack = OrdersStack(app, "Extra", settings=Settings.from_node(app.node), projections=projections)
    return stack, dict(Template.from_stack(stack).to_json())


def _logical_id(stack: OrdersStack, construct: Any) -> str:
    logical_id = stack.resolve(construct.node.default_child.logical_id)
    assert isinstance(logical_id, str)
    return logical_id


EXTRA = "order_digest"


@pytest.fixture(scope="module")
def one_more_read_model(
    synthesized: Synthesized, context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OrdersStack, dict[str, Any]]]:
    """The stack after registering one more read model in orders_core's registry. It writes a table
    that exists (a new TableSpec would need its table built first, test below). `synthesized` has
    built the layers a stack needs."""
    from orders_core.projections import registry

    extra = registry.Registration(EXTRA, CUSTOMER_ORDERS, registry.REGISTRY["customer_orders"].build)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry.REGISTRY, EXTRA, extra)
        assert registered_projections()[-1] == ProjectionSpec(EXTRA, CUSTOMER_ORDERS)
        yield _stack(context, tmp_path_factory.mktemp("extra"))


def test_registering_one_more_read_model_adds_no_stream_reader(
    synthesized: Synthesized, one_more_read_model: tuple[OrdersStack, dict[str, Any]]
) -> None:
    stack, template = one_more_read_model
    assert stack.projections.read_models == (*PROJECTION_NAMES, EXTRA)
    before = _stream_mappings(synthesized.json, synthesized.logical_id(synthesized.stack.event_store.events))
    after = _stream_mappings(template, _logical_id(stack, stack.event_store.events))
    # The projector's and the integration publisher's, as before.
    assert len(after) == len(before) == STREAM_READERS_PER_SHARD
    (mapping,) = _projector_mappings(
        template, _logical_id(stack, stack.event_store.events), _logical_id(stack, stack.projections.function)
    )
    assert mapping["FunctionName"] == {"Ref": _logical_id(stack, stack.projections.function)}
    # Nor a function.
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == len(synthesized.of_type("AWS::Lambda::Function"))


def test_registering_one_more_read_model_adds_its_parked_commits_alarm(
    one_more_read_model: tuple[OrdersStack, dict[str, Any]],
) -> None:
    _, template = one_more_read_model
    alarmed = [
        next(d["Value"] for d in a["Properties"]["Dimensions"] if d["Name"] == "projection")
        for a in template["Resources"].values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and a["Properties"].get("MetricName") == "ParkedCommits"
    ]
    assert sorted(alarmed) == sorted((*PROJECTION_NAMES, EXTRA))


def test_a_read_model_without_a_table_stops_the_synth(
    synthesized: Synthesized, context: dict[str, Any], tmp_path: Path
) -> None:
    unknown = TableSpec(key="nowhere", partition_key=("pk", "S"), sort_key=("sk", "S"))
    with pytest.raises(ValueError, match=r"not in orders_core\.tables\.READ_MODEL_TABLES"):
        _stack(context, tmp_path, (*registered_projections(), ProjectionSpec("nowhere", unknown)))
