"""Least privilege: one role per function, each allowed exactly what its code does.

Each role's DynamoDB permissions are compared as an exact set of (action, resource): an action its
code never calls fails the test as surely as a missing one. The expected sets are written out here,
not taken from infra/dynamodb.py, so widening a grant there fails too."""

from __future__ import annotations

from infra.projections import registered_projections
from orders_core.tables import INVENTORY, PROJECTIONS_CONTROL, READ_MODEL_TABLES, SNAPSHOTS, TableSpec
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
    # command, query, admin, rebuild worker, projector (one for every read model), integration publisher,
    # live updates' authorizer, routes and notifier
    assert len(roles) == len(set(roles)) == 9
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


# The query function: read models through the read store (get_many = BatchGetItem, query_partition
# and query_index = Query, on the table and its indexes), the generation readers use (get_many),
# an order's history and temporal queries (read_commits = Query on the events table; never GetItem),
# the newest snapshot at or before a version or a time (Query, table and by_time index).
QUERY_READ = {"dynamodb:BatchGetItem", "dynamodb:Query"}


def test_query_role_reads_and_never_writes(synthesized: Synthesized) -> None:
    events, reads = _ids(synthesized)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    snapshots = _id(synthesized, SNAPSHOTS)
    statements = _statements(synthesized, synthesized.stack.query_api.function)

    def with_indexes(spec: TableSpec, actions: set[str]) -> set[tuple[str, str]]:
        arn = _arn(_id(synthesized, spec))
        resources = [arn, *(f"{arn}/index/{index.name}" for index in spec.indexes)]
        return {(action, resource) for action in actions for resource in resources}

    assert permissions(statements, prefix="dynamodb:") == {
        ("dynamodb:Query", _arn(events)),
        *(p for spec in READ_MODEL_TABLES for p in with_indexes(spec, QUERY_READ)),
        ("dynamodb:BatchGetItem", _arn(control)),
        *with_indexes(SNAPSHOTS, {"dynamodb:Query"}),
    }
    actions = set(all_actions(statements))
    assert not actions & DYNAMODB_WRITES
    assert actions == BASELINE | QUERY_READ
    assert actions_on(statements, events) == {"dynamodb:Query"}
    for table in reads.values():
        assert actions_on(statements, table) == QUERY_READ
    assert actions_on(statements, snapshots) == {"dynamodb:Query"}


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


# What the read store (orders_core/readmodels/dynamodb.py) sends when a read model applies commits:
# get_many, put_next_version / put_if_newer, add_contribution, apply_atomically, query_partition.
# apply_atomically is one TransactWriteItems, which IAM authorizes per action: PutItem (state rows),
# UpdateItem (deltas), ConditionCheckItem (a delta that only checks). No GetItem (it batches), no
# delete (a generation is dropped by the rebuild worker).
APPLY = {
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
}
# Gap fill and replays on the events table: read_commits (Query). The store's read_commit (GetItem)
# has no caller, so no role holds GetItem anywhere.
GAP_FILL = {"dynamodb:Query"}
# The admin function's release of a dead run's claim: delete_partition_prefix_page (Scan + BatchWriteItem).
RELEASE = APPLY | {"dynamodb:Scan", "dynamodb:BatchWriteItem"}
# What Lambda's event source mapping needs to read the stream (granted by the CDK on the stream ARN;
# ListStreams has no resource-level permission).
STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
# The projector on the control table: control and parked rows (get_many), rebuild markers and its
# heartbeat (put_if_newer), parking a commit (add_contribution), the parked streams (query_partition).
PROJECTOR_CONTROL = {"dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"}


def _registered_tables(synthesized: Synthesized) -> set[str]:
    return {_id(synthesized, p.table) for p in registered_projections()}


def test_projector_role_holds_exactly_what_its_code_calls(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    events = synthesized.logical_id(stack.event_store.events)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    queue = synthesized.logical_id(stack.projections.dead_letters)
    statements = _statements(synthesized, stack.projections.function)
    tables = _registered_tables(synthesized)
    assert tables == {_id(synthesized, spec) for spec in READ_MODEL_TABLES}
    assert permissions(statements, prefix="dynamodb:") == {
        # Gap fill, then the stream (its ARN is the table's StreamArn attribute).
        *((action, _arn(events)) for action in GAP_FILL),
        *((action, f"<{events}.StreamArn>") for action in STREAM_READS),
        ("dynamodb:ListStreams", "*"),
        # Every read model it feeds, every generation: apply commits, nothing else.
        *((action, _arn(table)) for table in tables for action in APPLY),
        # Releasing parked streams (DeleteItem) is the admin function's.
        *((action, _arn(control)) for action in PROJECTOR_CONTROL),
    }
    # The on-failure destination, and the baseline: nothing else (no S3, Step Functions, Lambda).
    assert permissions(statements, prefix="sqs:") <= {
        (a, _arn(queue)) for a in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
    }
    assert ("sqs:SendMessage", _arn(queue)) in permissions(statements, prefix="sqs:")
    others = {a for a in all_actions(statements) if not a.startswith(("dynamodb:", "sqs:"))}
    assert others == BASELINE


def test_projector_never_writes_the_events_snapshots_or_indexes(synthesized: Synthesized) -> None:
    events = synthesized.logical_id(synthesized.stack.event_store.events)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    statements = _statements(synthesized, synthesized.stack.projections.function)
    assert actions_on(statements, events) & DYNAMODB_WRITES == set()
    assert actions_on(statements, _id(synthesized, SNAPSHOTS)) == set()
    assert not [r for _, r in permissions(statements) if "/index/" in r]
    writing = {target for s in statements if s.actions & DYNAMODB_WRITES for target, _ in s.targets()}
    assert writing == _registered_tables(synthesized) | {control}
    # No delete anywhere: a read model's row is never removed by the live path, and parked streams
    # are released by the admin function after a replay.
    assert not {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(all_actions(statements))


def test_admin_role_manages_runs_replays_parked_commits_and_starts_only_the_rebuild(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack
    events = synthesized.logical_id(stack.event_store.events)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    state_machine = synthesized.logical_id(stack.rebuild.state_machine)
    statements = _statements(synthesized, stack.admin_api.function)
    control_actions = {
        "dynamodb:BatchGetItem",  # control rows, runs, parked streams (get_many)
        "dynamodb:PutItem",  # runs, markers a replay delivers (put_if_newer)
        "dynamodb:Query",  # runs, progress, parked streams (query_partition)
        "dynamodb:DeleteItem",  # a replayed stream released (delete_if)
    }
    assert permissions(statements, prefix="dynamodb:") == {
        *((action, _arn(control)) for action in control_actions),
        # A replay reads the parked commits (and fills gaps) and applies them to the read models.
        *((action, _arn(events)) for action in GAP_FILL),
        # Releasing a claim a dead run holds deletes part of its partial generation (paged Scan).
        *((action, _arn(table)) for table in _registered_tables(synthesized) for action in RELEASE),
    }
    assert actions_on(statements, events) & DYNAMODB_WRITES == set()
    assert actions_on(statements, _id(synthesized, SNAPSHOTS)) == set()
    # states:StartExecution on the rebuild state machine (its Ref is its ARN), DescribeExecution on
    # its executions only (a release refuses while one runs), and nothing else of Step Functions.
    states = permissions(statements, prefix="states:")
    assert ("states:StartExecution", f"<{state_machine}>") in states
    assert {action for action, _ in states} == {"states:StartExecution", "states:DescribeExecution"}
    described = [resource for action, resource in states if action == "states:DescribeExecution"]
    assert described and all(":execution:" in resource for resource in described), described
    assert set(all_actions(statements)) == BASELINE | control_actions | GAP_FILL | RELEASE | {
        "states:StartExecution",
        "states:DescribeExecution",
    }


def test_only_the_admin_function_starts_rebuilds(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    admin_role = synthesized.logical_id(stack.admin_api.handler.role)
    for role_id in _function_roles(synthesized).values():
        if role_id != admin_role:
            assert not [
                a for a in all_actions(role_statements(synthesized, role_id)) if a.startswith("states:")
            ]


WORKER_ON_READ_MODELS = APPLY | {"dynamodb:Scan", "dynamodb:BatchWriteItem"}


def test_no_role_holds_get_item_or_delete_item_on_read_models(synthesized: Synthesized) -> None:
    # The read store batches its reads (BatchGetItem) and the worker deletes a generation with
    # BatchWriteItem: GetItem is called on no table, DeleteItem only on the control table (admin).
    control = _id(synthesized, PROJECTIONS_CONTROL)
    for role_id in [*_function_roles(synthesized).values(), _state_machine_role(synthesized)]:
        for action, resource in permissions(role_statements(synthesized, role_id), prefix="dynamodb:"):
            assert action != "dynamodb:GetItem", (role_id, resource)
            if action == "dynamodb:DeleteItem":
                assert resource == _arn(control), (role_id, resource)


def test_rebuild_worker_role(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    events, reads = _ids(synthesized)
    control = _id(synthesized, PROJECTIONS_CONTROL)
    bucket = synthesized.logical_id(stack.rebuild.bucket)
    statements = _statements(synthesized, stack.rebuild.worker.function)
    expected = {
        # The events table: the marker commit (PutItem) and gap fill (Query). No other write.
        ("dynamodb:PutItem", _arn(events)),
        ("dynamodb:Query", _arn(events)),
        # Every read model: apply a generation, and drop one (Scan + BatchWriteItem): no DeleteItem.
        *((action, _arn(table)) for table in reads.values() for action in WORKER_ON_READ_MODELS),
        # Runs, claims and progress: get_many, put_if_newer, query_partition.
        *(
            (action, _arn(control))
            for action in ("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:Query")
        ),
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
    assert not [a for a in all_actions(statements) if a.startswith(("states:", "lambda:"))]
    # Its asynchronous invocations (the status-change rule's) that fail go to the rule's queue.
    dead_letters = synthesized.logical_id(stack.rebuild.dead_letters)
    assert {a for a in all_actions(statements) if a.startswith("sqs:")} == {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    assert {r for s in statements if any(a.startswith("sqs:") for a in s.actions) for r in s.targets()} == {
        (dead_letters, "Arn")
    }


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


def test_only_the_state_machine_and_the_status_change_rule_invoke_the_worker(
    synthesized: Synthesized,
) -> None:
    worker = synthesized.logical_id(synthesized.stack.rebuild.worker.function)
    rule = synthesized.logical_id(synthesized.stack.rebuild.status_change_rule)
    for role_id in _function_roles(synthesized).values():
        assert not [a for a in all_actions(role_statements(synthesized, role_id)) if a.startswith("lambda:")]
    # Through a resource policy: EventBridge, for the status-change rule only.
    permissions_on_worker = [
        p["Properties"]
        for p in synthesized.of_type("AWS::Lambda::Permission").values()
        if resource_text(p["Properties"]["FunctionName"]) in (f"<{worker}>", _arn(worker))
    ]
    assert permissions_on_worker == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [worker, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule, "Arn"]},
        }
    ]


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


# Live updates (infra/live_updates.py; tests/infra/test_live_updates.py checks each in detail): the
# connections table through orders_core.live.dynamodb (BatchGetItem, BatchWriteItem, conditional
# PutItem, Query), a product's summary and the active generations (BatchGetItem), the two read-model
# streams, and PostToConnection on this API's stage only.
LIVE_ROUTES = {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}
LIVE_NOTIFIER = {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query"}


def test_live_update_roles_hold_exactly_what_their_code_calls(synthesized: Synthesized) -> None:
    live = synthesized.stack.live_updates
    connections = _arn(synthesized.logical_id(live.connections))
    routes = _statements(synthesized, live.routes_handler.function)
    assert permissions(routes, prefix="dynamodb:") == {(action, connections) for action in LIVE_ROUTES}
    assert set(all_actions(routes)) == BASELINE | LIVE_ROUTES
    authorizer = _statements(synthesized, live.authorizer_handler.function)
    assert set(all_actions(authorizer)) == BASELINE
    notifier = _statements(synthesized, live.notifier)
    reads = {(a, r) for a, r in permissions(notifier, prefix="dynamodb:") if not r.endswith(".StreamArn>")}
    assert reads == {
        *((action, connections) for action in LIVE_NOTIFIER),
        ("dynamodb:BatchGetItem", _arn(_id(synthesized, INVENTORY))),
        ("dynamodb:BatchGetItem", _arn(_id(synthesized, PROJECTIONS_CONTROL))),
        ("dynamodb:ListStreams", "*"),
    }
    others = {a for a in all_actions(notifier) if not a.startswith(("dynamodb:", "sqs:"))}
    assert others == BASELINE | {"execute-api:ManageConnections"}
