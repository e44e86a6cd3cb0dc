"""The rebuild steps on DynamoDB and S3 (moto), with the export moto itself writes: every step
called again after success changes nothing, and the old generation is retired page by page."""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import boto3
import pytest

from orders_core.readmodels.dynamodb import DynamoDBReadStore
from orders_core.rebuild.objects import S3ObjectStore
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import CUSTOMER_ORDERS, PROJECTIONS_CONTROL
from tests.support.rebuilds import RebuildWorld

FILLER = 1_150  # rows of the old generation beyond one deletion page (1,000 rows evaluated)


@pytest.fixture
def moto_world(dynamodb: Any, events_table: str) -> RebuildWorld:
    suffix = uuid.uuid4().hex[:8]
    for spec in (CUSTOMER_ORDERS, PROJECTIONS_CONTROL):
        dynamodb.create_table(**spec.create_table_request(f"{spec.key}-{suffix}"))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=f"exports-{suffix}")
    dynamodb.update_continuous_backups(
        TableName=events_table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    world = RebuildWorld(
        events=DynamoDBEventStore(dynamodb, events_table),
        control_store=DynamoDBReadStore(dynamodb, f"{PROJECTIONS_CONTROL.key}-{suffix}"),
        table=DynamoDBReadStore(dynamodb, f"{CUSTOMER_ORDERS.key}-{suffix}"),
        objects=S3ObjectStore(s3, f"exports-{suffix}"),
    )
    world.place_orders(4)
    world.start()
    return world


def _export(dynamodb: Any, world: RebuildWorld, events_table: str, plan: dict[str, Any], bucket: str) -> str:
    """What the workflow's ExportEvents and DescribeExport states do, on moto."""
    table_arn = dynamodb.describe_table(TableName=events_table)["Table"]["TableArn"]
    arn = str(
        dynamodb.export_table_to_point_in_time(
            TableArn=table_arn, S3Bucket=bucket, S3Prefix=plan["export_prefix"], ExportFormat="DYNAMODB_JSON"
        )["ExportDescription"]["ExportArn"]
    )
    deadline = time.monotonic() + 10
    while dynamodb.describe_export(ExportArn=arn)["ExportDescription"]["ExportStatus"] != "COMPLETED":
        assert time.monotonic() < deadline, "moto's export did not complete"
        time.sleep(0.02)
    return arn


def _state(dynamodb: Any, world: RebuildWorld) -> tuple[Any, ...]:
    assert isinstance(world.table, DynamoDBReadStore)
    pages = dynamodb.get_paginator("scan").paginate(TableName=world.table._table, ConsistentRead=True)
    rows = sorted((i["pk"]["S"], i["sk"]["S"], i["version"]["N"]) for p in pages for i in p["Items"])
    return (world.runs.runs(), world.claim(), rows, world.objects.list("rebuilds/"))


def _twice(dynamodb: Any, world: RebuildWorld, call: Any) -> Any:
    first = call()
    after = _state(dynamodb, world)
    assert call() == first
    assert _state(dynamodb, world) == after
    return first


def test_a_rebuild_on_moto_reads_moto_s_export_and_each_step_survives_a_retry(
    dynamodb: Any, events_table: str, moto_world: RebuildWorld
) -> None:
    world, steps, rid = moto_world, moto_world.steps, moto_world.rebuild_id
    assert isinstance(world.table, DynamoDBReadStore)
    bucket = f"exports-{world.table._table.rsplit('-', 1)[1]}"
    filler = [
        {
            "PutRequest": {
                "Item": {"pk": {"S": f"1#filler-{n:05}"}, "sk": {"S": "view"}, "version": {"N": "1"}}
            }
        }
        for n in range(FILLER)
    ]
    for start in range(0, FILLER, 25):
        dynamodb.batch_write_item(RequestItems={world.table._table: filler[start : start + 25]})

    plan = _twice(dynamodb, world, lambda: steps.begin(rid))
    arn = _export(dynamodb, world, events_table, plan, bucket)
    # moto writes <prefix>/AWSDynamoDB/<uuid>/data/<uuid>.gz: the recorded prefix must hold it
    data = _twice(dynamodb, world, lambda: steps.export_done(rid, arn))
    files = [key for key in world.objects.list(data["data_prefix"]) if key.endswith(".gz")]
    assert len(files) == 1 and data["data_prefix"].startswith(f"{plan['export_prefix']}/AWSDynamoDB/")

    for key in world.objects.list(plan["export_prefix"]):
        _twice(dynamodb, world, partial(steps.shuffle, rid, key))
    for bucket_number in plan["buckets"]:
        _twice(dynamodb, world, partial(steps.apply_bucket, rid, bucket_number))
    assert _twice(dynamodb, world, lambda: steps.verify(rid))["commits"] == 4
    world.deliver_marker()
    _twice(dynamodb, world, lambda: steps.catch_up(rid))
    assert _twice(dynamodb, world, lambda: steps.switch(rid)) == {"active_generation": 2}

    answers = world.retire_all()
    assert len(answers) >= 2 and answers[0]["more"]
    assert sum(a["deleted_rows"] for a in answers) == FILLER + 4
    assert _twice(dynamodb, world, lambda: steps.retire(rid, answers[-1]["cursor"]))["deleted_rows"] == 0
    rows = _state(dynamodb, world)[2]
    assert rows and all(pk.startswith("2#") for pk, _, _ in rows)
    assert world.run().status == "SUCCEEDED" and world.objects.list(f"rebuilds/{rid}/") == []
