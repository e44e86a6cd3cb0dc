"""DynamoDB tables built from the shared `TableSpec`s, and grants scoped to exact ARNs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from orders_core.tables import ALL_TABLES, KeyType, TableSpec

_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}

# Actions by intent, so grants read as what a function does. Read models and the control table are
# used through the read store (orders_core/readmodels/dynamodb.py), whose calls are: get_many =
# BatchGetItem; put_next_version, put_if_newer = conditional PutItem; add_contribution =
# conditional UpdateItem; apply_atomically = TransactWriteItems, which has no IAM action of its own:
# it is authorized per action, PutItem for its state rows, UpdateItem for its deltas and
# ConditionCheckItem for a delta that only checks; delete_if = conditional DeleteItem;
# query_partition, query_index = Query; delete_partition_prefix_page = Scan + BatchWriteItem. It
# never calls GetItem.
READ_ACTIONS = ("dynamodb:Query", "dynamodb:BatchGetItem")  # get_many, query_partition, query_index
# The events table's reads (orders_core/store/dynamodb.py): read_commits is Query. Its read_commit
# (GetItem) has no caller in the functions' code, so no role holds GetItem on the events table.
# Used for gap fill (projector, rebuild worker), a replay (admin) and an order's history and
# temporal queries (query function).
GAP_FILL_ACTIONS = ("dynamodb:Query",)
# Applying commits to a read model, any generation (orders_core.projections.*): get_many,
# put_next_version, put_if_newer, add_contribution, apply_atomically, query_partition. Called by
# the projector and by the admin function's replay of parked commits. No delete: dropping a
# generation is the worker's.
APPLY_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
)
# The rebuild worker on a read model: applying a generation (APPLY_ACTIONS), plus the Scan and
# BatchWriteItem that delete a retired or abandoned generation's rows (delete_partition_prefix_page).
# No GetItem (the read store batches) and no DeleteItem (it deletes with BatchWriteItem).
REBUILD_ACTIONS = (*APPLY_ACTIONS, "dynamodb:Scan", "dynamodb:BatchWriteItem")
# The admin function on a read model: replaying parked commits (APPLY_ACTIONS), and releasing a claim
# a dead run holds, which deletes its partial generation a few pages at a time (Scan + BatchWriteItem).
RELEASE_ACTIONS = (*APPLY_ACTIONS, "dynamodb:Scan", "dynamodb:BatchWriteItem")
# The control table (orders_core.projections.control, .parking, orders_core.rebuild.runs) through
# the read store's calls.
CONTROL_READ_ACTIONS = ("dynamodb:BatchGetItem",)  # which generation readers use (get_many)
CONTROL_ACTIONS = (*CONTROL_READ_ACTIONS, "dynamodb:PutItem", "dynamodb:Query")  # claims, runs, progress
# The projector (orders_core.projections.fanout, .live, .parking): control and parked rows
# (ControlStore.control, ParkingLot.stream: BatchGetItem), rebuild markers and its heartbeat
# (record_marker, record_batch: PutItem), parking a commit (ParkingLot.park: UpdateItem), the
# streams parked for a read model (ParkingLot.parked: Query). Releasing parked streams is the
# admin function's.
PROJECTOR_CONTROL_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
# The admin function (orders_core.rebuild.operations, orders_core.projections.operations): runs,
# control rows and parked rows (BatchGetItem), recording a run and the markers a replay delivers
# (PutItem), listing runs, progress and parked streams (Query), and releasing a replayed stream
# (ParkingLot.release: DeleteItem). It parks nothing (no UpdateItem).
ADMIN_CONTROL_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:DeleteItem",
)


def _attribute(key: tuple[str, KeyType]) -> dynamodb.Attribute:
    name, kind = key
    return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[kind])


def table_from_spec(
    scope: Construct,
    construct_id: str,
    spec: TableSpec,
    *,
    removal_policy: RemovalPolicy,
    point_in_time_recovery: bool,
    deletion_protection: bool = False,
) -> dynamodb.Table:
    """The table the spec describes (keys, indexes, stream and its view, TTL), on-demand and
    encrypted with KMS.

    Names are left to CloudFormation (several stages can share an account); functions get them
    through `spec.env_var`.
    """
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=_attribute(spec.partition_key),
        sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        # KMS encryption with the AWS managed key (aws/dynamodb): explicit SSE in the template,
        # no key to pay for or to grant. A customer managed key would need kms grants on every role.
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=point_in_time_recovery
        ),
        stream=dynamodb.StreamViewType[spec.stream_view] if spec.stream else None,
        time_to_live_attribute=spec.ttl_attribute,
        removal_policy=removal_policy,
        deletion_protection=deletion_protection,
    )
    for index in spec.indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_attribute(index.partition_key),
            sort_key=_attribute(index.sort_key),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table


def grant(
    grantee: iam.IGrantable,
    table: dynamodb.ITable,
    spec: TableSpec,
    actions: Sequence[str],
    *,
    indexes: bool = False,
) -> iam.Grant:
    """Allow `actions` on the table and, with `indexes`, on each of its indexes by exact ARN.

    Unlike `Table.grant`, which adds `<table>/index/*`, nothing here is a wildcard.
    """
    resources = [table.table_arn]
    if indexes:
        resources += [f"{table.table_arn}/index/{index.name}" for index in spec.indexes]
    return iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=resources)


def require_every_table(
    tables: Mapping[TableSpec, dynamodb.ITable], specs: Sequence[TableSpec] = ALL_TABLES
) -> None:
    """The stack's tables are exactly orders_core.tables.ALL_TABLES.

    A new spec needs a decision on what its data is (source of truth, state, or derived: retention,
    point-in-time recovery), so it stops the synth until a construct builds it.
    """
    problems = []
    if missing := [spec.key for spec in specs if spec not in tables]:
        problems.append(
            f"no table for {', '.join(missing)}: build it in infra/event_store.py (write side) or "
            "infra/read_models.py (read side), deciding its retention and point-in-time recovery"
        )
    if unknown := [spec.key for spec in tables if spec not in specs]:
        problems.append(f"{', '.join(unknown)} not in orders_core.tables.ALL_TABLES")
    if problems:
        raise ValueError("; ".join(problems))
