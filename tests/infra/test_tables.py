"""Tables are built from orders_core.tables' specs: the same keys the local run creates, and every
spec in ALL_TABLES has exactly one table (a new spec cannot be forgotten)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aws_cdk import App
from aws_cdk import aws_dynamodb as dynamodb

from infra import application
from infra import stack as stack_module
from infra.dynamodb import require_every_table
from orders_core.tables import (
    ALL_TABLES,
    EVENTS,
    PROJECTIONS_CONTROL,
    READ_MODEL_TABLES,
    SNAPSHOTS,
    TableSpec,
)
from tests.infra.helpers import Synthesized


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    """The parts of a table definition that TableSpec.create_table_request also describes."""
    return {
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GlobalSecondaryIndexes": [
            {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
            for index in properties.get("GlobalSecondaryIndexes", [])
        ],
    }


def _expected(spec: TableSpec) -> dict[str, Any]:
    request = spec.create_table_request("any")
    return {
        "KeySchema": request["KeySchema"],
        "AttributeDefinitions": sorted(request["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GlobalSecondaryIndexes": request.get("GlobalSecondaryIndexes", []),
    }


def _table(synthesized: Synthesized, spec: TableSpec) -> dict[str, Any]:
    return synthesized.resources[synthesized.logical_id(synthesized.stack.tables[spec])]


def test_every_spec_in_all_tables_has_exactly_one_table(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    assert set(stack.tables) == set(ALL_TABLES)
    logical_ids = {synthesized.logical_id(stack.tables[spec]) for spec in ALL_TABLES}
    # One resource per spec, and no table that no spec describes.
    assert logical_ids == set(synthesized.of_type("AWS::DynamoDB::Table"))
    assert len(logical_ids) == len(ALL_TABLES)


def test_a_spec_without_a_table_stops_the_synth(
    monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]
) -> None:
    forgotten = TableSpec(key="forgotten", partition_key=("pk", "S"))
    monkeypatch.setattr(stack_module, "ALL_TABLES", (*ALL_TABLES, forgotten))
    with pytest.raises(ValueError, match="no table for forgotten: build it in infra/"):
        application.build(App(context=context))


def test_a_table_without_a_spec_stops_the_synth() -> None:
    stray = TableSpec(key="stray", partition_key=("pk", "S"))
    tables = cast("dict[TableSpec, dynamodb.ITable]", {stray: object()})
    with pytest.raises(ValueError, match=r"stray not in orders_core\.tables\.ALL_TABLES"):
        require_every_table(tables, ())


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda s: s.key)
def test_tables_come_from_their_specs(synthesized: Synthesized, spec: TableSpec) -> None:
    table = _table(synthesized, spec)["Properties"]
    assert _schema(table) == _expected(spec)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    # Only the events table streams (the projections' feed).
    assert ("StreamSpecification" in table) is spec.stream


def test_events_table_keys_come_from_the_spec(synthesized: Synthesized) -> None:
    table = _table(synthesized, EVENTS)["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": EVENTS.partition_key[0], "KeyType": "HASH"},
        {"AttributeName": EVENTS.sort_key[0] if EVENTS.sort_key else None, "KeyType": "RANGE"},
    ]


def test_events_table_streams_new_images(synthesized: Synthesized) -> None:
    assert _table(synthesized, EVENTS)["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_events_table_is_protected(synthesized: Synthesized) -> None:
    table = _table(synthesized, EVENTS)
    properties = table["Properties"]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda s: s.key)
def test_every_table_is_encrypted_with_kms(synthesized: Synthesized, spec: TableSpec) -> None:
    assert _table(synthesized, spec)["Properties"]["SSESpecification"] == {"SSEEnabled": True}


@pytest.mark.parametrize("spec", [*READ_MODEL_TABLES, SNAPSHOTS], ids=lambda s: s.key)
def test_derived_tables_have_no_backup_and_go_with_the_stack(
    synthesized: Synthesized, spec: TableSpec
) -> None:
    # Read models are rebuilt from the events table, snapshots are folds of it.
    table = _table(synthesized, spec)
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is False
    assert table["DeletionPolicy"] == "Delete"


def test_control_table_has_point_in_time_recovery(synthesized: Synthesized) -> None:
    # Not derived: the active generations and the rebuild runs cannot be recomputed.
    table = _table(synthesized, PROJECTIONS_CONTROL)
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    # It describes the read-model tables, which go with the stack.
    assert table["DeletionPolicy"] == "Delete"


def test_functions_find_tables_under_the_specs_env_vars(synthesized: Synthesized) -> None:
    refs = {spec.env_var: {"Ref": synthesized.logical_id(t)} for spec, t in synthesized.stack.tables.items()}
    seen = set()
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            if name.endswith("_TABLE"):
                assert value == refs[name], name
                seen.add(name)
    # Every table is used by some function.
    assert seen == set(refs)
