"""Least privilege: one role per function, each allowed exactly what its code does."""

from __future__ import annotations

import pytest

from infra.dynamodb import (
    CONTROL_ACTIONS,
    CONTROL_LIVE_ACTIONS,
    CONTROL_READ_ACTIONS,
    READ_ACTIONS,
    REBUILD_ACTIONS,
    WRITE_ACTIONS,
)
from infra.projections import registered_projections
from orders_core.tables import PROJECTIONS_CONTROL, READ_MODEL_TABLES, SNAPSHOTS
from tests.infra.helpers import (
    Statement,
    Synthesized,
    actions_on,
    all_actions,
    permissions,
    resource_text,
    role_statements,
)

# The three the project started with; the registry may hold more, and each gets the same treatment.
REQUIRED_PROJECTIONS = {"customer_orders", "sales_analytics", "inventory"}
PROJECTION_NAMES = tuple(p.name for p in registered_projections())

DYNAMODB_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:ImportTable",
}
# Every function may write its own logs and traces; nothing else is common to all.
BASELINE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# What CloudWatch Logs delivery and X-Ray need for a state machine: no resource-level permissions.
STATE_MACHINE_ANY_RESOURCE = {
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}


def _statements(synthesized: Synthesized, function: object) -> list[Statement]:
    role = function.role  # type: ignore[attr-defined]
    return role_statements(synthesized, synthesized.logical_id(role))


def _ids(synthesized: Synthesized) -> tuple[str, dict[str, str]]:
    stack = synthesized.stack
    events = synthesized.logical_id(stack.event_store.events)
    reads = {spec.key: synthesized.logical_id(stack.read_models.table(spec)) for spec in READ_MODEL_TABLES}
    return events, reads


def _id(synthesized: Synthesized, spec: object) -> str:
    return synthesized.logical_id(synthesized.stack.tables[spec])  # type: ignore[index]


def _arn(logical_id: str) -> str:
    return f"<{logical_id}.Arn>"


def _function_roles(synthesized: Synthesized) -> dict[str, str]:
    """Function logical id -> its role's logical id."""
    return {
        logical_id: function["Properties"]["Role"]["Fn::GetAtt"][0]
        for logical_id, function in synthesized.of_type("AWS::Lambda::Function").items()
    }


def _state_machine_role(synthesized: Synthesized) -> str:
    return synthesized.logical_id(synthesized.stack.rebuild.state_machine.role)


def test_every_function_has_its_own_role(synthesized: Synthesized) -> None:
    roles = list(_function_roles(synthesized).values())
    # command, query, admin, rebuild worker, one per projection
    assert len(roles) == len(set(roles)) == 4 + len(PROJECTION_NAMES)
    assert _state_machine_role(synthesized) not in roles


def test_no_wildcard_actions_anywhere(synthesized: Synthesized) -> None:
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if "*" in a], statement


def test_wildcard_resources_only_where_the_service_has_no_resource_arns(synthesized: Synthesized) -> None:
    allowed = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams"}
    for role_id in _function_roles(synthesized).values():
        for statement in role_statements(synthesized, role_id):
            if ("*", "") in statement.targets():
                assert statement.actions <= allowed, statement
    for statement in role_statements(synthesized, _state_machine_role(synthesized)):
        if ("*", "") in statement.targets():
            assert statement.actions <= STATE_MACHINE_ANY_RESOURCE, statement


def test_command_role_appends_events_and_snapshots_only(synthesized: Synthesized) -> None:
    events, reads = _ids(synthesized)
    snapshots = _id(synthesized, SNAPSHOTS)
    statements = _statements(synthesized, synthesized.stack.command_api.function)
    assert permissions(statements, prefix="dynamodb:") == {
        ("dynamodb:PutItem", _arn(events)),
        ("dynamodb:Query", _arn(events)),
        # orders_core.snapshots.dynamodb: save (PutItem), latest (Query on the table, not the index)
        ("dynamodb:PutItem", _arn(snapshots)),
        ("dynamodb:Query", _arn(snapshots)),
    }
    for table in reads.values():
        assert actions_on(statements, table) == set()
    assert set(all_actions(statements)) == BASELINE | {"dynamodb:PutItem", "dynamodb:Query"}


def test_query_role_reads_and_never_writes(synthesized: Synthesized) -> None:
    events, reads = _ids(synthesized)
    statements = _statements(synthesized, synthesized.stack.query_api.function)
    actions = set(all_actions(statements))
    assert not actions & DYNAMODB_WRITES
    assert actions - BASELINE == set(READ_ACTIONS)
    assert actions_on(statements, events) == set(READ_ACTIONS)
    for table in reads.values():
        assert actions_on(statements, table) == set(READ_ACTIONS)
    # The generation readers use, and snapshots for temporal reads.
    assert actions_on(statements, _id(synthesized, PROJECTIONS_CONTROL)) == set(CONTROL_READ_ACTIONS)
    assert actions_on(statements, _id(synthesized, SNAPSHOTS)) == {"dynamodb:Query"}
    # No S3, no Step Functions, no Lambda.
    assert not [a for a in actions if a.startswith(("s3:", "states:", "lambda:"))]


def test_query_role_reads_indexes_by_exact_arn(synthesized: Synthesized) -> None:
    statements = _statements(synthesized, synthesized.stack.query_api.function)
    index_suffixes = [
        part
        for s in statements
        for r in s.resources
        if isinstance(r, dict) and "Fn::Join" in r
        for part in r["Fn::Join"][1]
        if isinstance(part, str)
    ]
    expected = [f"/index/{i.name}" for spec in (*READ_MODEL_TABLES, SNAPSHOTS) for i in spec.indexes]
    assert sorted(index_suffixes) == sorted(expected)


def test_the_projections_are_the_registered_ones() -> None:
    assert set(PROJECTION_NAMES) >= REQUIRED_PROJECTIONS | {"customer_summary"}


@pytest.mark.parametrize("name", PROJECTION_NAMES)
def test_projection_role_writes_only_its_own_table_and_the_control_table(
    synthesized: Synthesized, name: str
) -> None:
    events, reads = _ids(synthesized)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    projection = {p.name: p for p in registered_projections()}[name]
    statements = _statements(synthesized, synthesized.stack.projections.functions[name])
    own = reads[projection.table.key]
    assert actions_on(statements, own) == set(WRITE_ACTIONS)
    for other in set(reads.values()) - {own}:
        assert actions_on(statements, other) == set(), f"{name} may touch another read model"
    # The control row on every batch, its lag and the rebuild markers: no Query, no delete.
    assert actions_on(statements, control) == set(CONTROL_LIVE_ACTIONS)
    assert actions_on(statements, _id(synthesized, SNAPSHOTS)) == set()
    # The events table: gap-fill reads and the stream, never a write.
    assert actions_on(statements, events) == {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    writing = [s for s in statements if s.actions & DYNAMODB_WRITES]
    assert {target for s in writing for target, _ in s.targets()} == {own, control}
    assert not [a for a in all_actions(statements) if a.startswith(("s3:", "states:", "lambda:"))]


@pytest.mark.parametrize("name", PROJECTION_NAMES)
def test_projection_role_may_send_to_the_on_failure_queue(synthesized: Synthesized, name: str) -> None:
    queue = synthesized.logical_id(synthesized.stack.projections.dead_letters)
    statements = _statements(synthesized, synthesized.stack.projections.functions[name])
    assert "sqs:SendMessage" in actions_on(statements, queue)
    assert {a for a in all_actions(statements) if a.startswith("sqs:")} <= {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_admin_role_manages_runs_and_starts_only_the_rebuild(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    control = _id(synthesized, PROJECTIONS_CONTROL)
    state_machine = synthesized.logical_id(stack.rebuild.state_machine)
    statements = _statements(synthesized, stack.admin_api.function)
    assert permissions(statements, prefix="dynamodb:") == {(a, _arn(control)) for a in CONTROL_ACTIONS}
    # states:StartExecution on the rebuild state machine (its Ref is its ARN), and nothing else of
    # Step Functions: no stop, no describe, no other state machine.
    assert permissions(statements, prefix="states:") == {("states:StartExecution", f"<{state_machine}>")}
    assert set(all_actions(statements)) == BASELINE | set(CONTROL_ACTIONS) | {"states:StartExecution"}


def test_only_the_admin_function_starts_rebuilds(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    admin_role = synthesized.logical_id(stack.admin_api.handler.role)
    for role_id in _function_roles(synthesized).values():
        if role_id != admin_role:
            assert not [
                a for a in all_actions(role_statements(synthesized, role_id)) if a.startswith("states:")
            ]


def test_rebuild_worker_role(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    events, reads = _ids(synthesized)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    bucket = synthesized.logical_id(stack.rebuild.bucket)
    statements = _statements(synthesized, stack.rebuild.worker.function)
    expected = {
        # The events table: the marker commit (PutItem) and gap fill (GetItem, Query). No other write.
        ("dynamodb:PutItem", _arn(events)),
        ("dynamodb:GetItem", _arn(events)),
        ("dynamodb:Query", _arn(events)),
        *((action, _arn(table)) for table in reads.values() for action in REBUILD_ACTIONS),
        *((action, _arn(control)) for action in CONTROL_ACTIONS),
    }
    assert permissions(statements, prefix="dynamodb:") == expected
    assert actions_on(statements, events) & DYNAMODB_WRITES == {"dynamodb:PutItem"}
    assert actions_on(statements, _id(synthesized, SNAPSHOTS)) == set()
    # Read-model indexes are neither needed nor granted.
    assert not [r for _, r in permissions(statements) if "/index/" in r]
    assert permissions(statements, prefix="s3:") == {
        ("s3:ListBucket", _arn(bucket)),
        ("s3:GetObject", f"{_arn(bucket)}/rebuilds/*"),
        ("s3:PutObject", f"{_arn(bucket)}/rebuilds/*"),
        ("s3:DeleteObject", f"{_arn(bucket)}/rebuilds/*"),
    }
    (listing,) = [s for s in statements if "s3:ListBucket" in s.actions]
    assert listing.condition == {"StringLike": {"s3:prefix": ["rebuilds/*"]}}
    assert not [a for a in all_actions(statements) if a.startswith(("states:", "lambda:", "sqs:"))]


def test_state_machine_role(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    events = synthesized.logical_id(stack.event_store.events)
    bucket = synthesized.logical_id(stack.rebuild.bucket)
    worker = synthesized.logical_id(stack.rebuild.worker.function)
    state_machine = synthesized.logical_id(stack.rebuild.state_machine)
    statements = role_statements(synthesized, _state_machine_role(synthesized))
    executions = (
        f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{state_machine}.Name>"
    )
    scratch = f"{_arn(bucket)}/rebuilds/*"
    assert permissions(statements) - {(a, "*") for a in STATE_MACHINE_ANY_RESOURCE} == {
        # Every Lambda task calls the worker, unqualified; no other function.
        ("lambda:InvokeFunction", _arn(worker)),
        # The export of the events table, and polling it; no read or write of items.
        ("dynamodb:ExportTableToPointInTime", _arn(events)),
        ("dynamodb:DescribeExport", f"{_arn(events)}/export/*"),
        # DynamoDB writes the export with these credentials, under the run's prefix.
        ("s3:PutObject", scratch),
        ("s3:AbortMultipartUpload", scratch),
        ("s3:PutObjectAcl", scratch),
        # The Distributed Map's ItemReader lists the export.
        ("s3:ListBucket", _arn(bucket)),
        # Its child workflow executions: start (on the state machine), describe and stop (on its
        # own executions only).
        ("states:StartExecution", f"<{state_machine}>"),
        ("states:DescribeExecution", f"{executions}:*"),
        ("states:StopExecution", f"{executions}:*"),
        ("states:DescribeExecution", f"{executions}/*"),
        ("states:StopExecution", f"{executions}/*"),
    }
    (listing,) = [s for s in statements if "s3:ListBucket" in s.actions]
    assert listing.condition == {"StringLike": {"s3:prefix": ["rebuilds/*"]}}


def test_only_the_state_machine_invokes_the_worker(synthesized: Synthesized) -> None:
    worker = synthesized.logical_id(synthesized.stack.rebuild.worker.function)
    for role_id in _function_roles(synthesized).values():
        assert not [a for a in all_actions(role_statements(synthesized, role_id)) if a.startswith("lambda:")]
    # Nothing else may invoke it through a resource policy either.
    permissions_on_worker = [
        p
        for p in synthesized.of_type("AWS::Lambda::Permission").values()
        if resource_text(p["Properties"]["FunctionName"]) in (f"<{worker}>", _arn(worker))
    ]
    assert permissions_on_worker == []


def test_no_role_writes_the_events_table_beyond_appending(synthesized: Synthesized) -> None:
    # The command function and the rebuild worker's marker append with PutItem; nobody updates,
    # deletes or batch-writes the source of truth.
    events = synthesized.logical_id(synthesized.stack.event_store.events)
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        for raw in policy["Properties"]["PolicyDocument"]["Statement"]:
            statement = Statement(
                raw["Effect"],
                frozenset(raw["Action"] if isinstance(raw["Action"], list) else [raw["Action"]]),
                tuple(raw["Resource"] if isinstance(raw["Resource"], list) else [raw["Resource"]]),
            )
            if statement.names(events):
                assert statement.actions & DYNAMODB_WRITES <= {"dynamodb:PutItem"}, statement
