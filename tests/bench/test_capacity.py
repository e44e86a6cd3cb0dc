"""DynamoDB's capacity rules as bench/capacity.py applies them, and the meter on a real (moto) client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bench.capacity import Cost, Meter, index_write_units, item_size, read_units, write_units
from orders_core.store.codec import item_size as codec_item_size


def test_write_units_round_up_per_kilobyte_and_never_fall_below_one() -> None:
    assert [write_units(size) for size in (0, 1, 1024, 1025, 2048, 4097)] == [1, 1, 1, 2, 2, 5]


def test_read_units_round_up_per_four_kilobytes_and_halve_when_eventually_consistent() -> None:
    assert read_units(0, consistent=True) == 1.0
    assert read_units(4096, consistent=True) == 1.0
    assert read_units(4097, consistent=True) == 2.0
    assert read_units(4097, consistent=False) == 1.0
    assert read_units(100, consistent=False) == 0.5


def test_item_size_follows_the_event_store_and_counts_sets_by_their_elements() -> None:
    item: dict[str, Any] = {
        "pk": {"S": "abc"},
        "n": {"N": "12.50"},
        "m": {"M": {"x": {"L": [{"BOOL": True}]}}},
    }
    assert item_size(item) == codec_item_size(item)
    assert item_size({"applied": {"SS": ["1", "22"]}}) == len("applied") + 3
    assert item_size({"ns": {"NS": ["1", "100"]}}) == len("ns") + 2 + 3  # 1 digit: 2 B; 3 digits: 3 B


def test_a_global_index_costs_a_write_when_the_item_is_in_it_and_two_when_its_key_moves() -> None:
    keys = ("gsi1pk", "gsi1sk")
    before = {"pk": {"S": "a"}, "gsi1pk": {"S": "c"}, "gsi1sk": {"S": "1"}}
    moved = {**before, "gsi1sk": {"S": "2"}}
    assert index_write_units(None, {"pk": {"S": "a"}}, keys) == 0
    assert index_write_units(None, before, keys) == 1
    assert index_write_units(before, before, keys) == 1
    assert index_write_units(before, moved, keys) == 2
    assert index_write_units(before, None, keys) == 1


def test_costs_add_subtract_and_scale() -> None:
    a = Cost(write_units=2, read_units=1.5, bytes_written=10)
    a.requests["PutItem"] += 2
    b = Cost(read_units=0.5)
    b.requests["Query"] += 1
    total = a + b
    assert (total.total_requests, total.write_requests, total.read_requests) == (3, 2, 1)
    assert (total - b).requests == a.requests
    assert total.scaled(50)["write_units"] == 100


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"capacity-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return name


def test_the_meter_counts_requests_and_prices_writes_reads_and_failed_conditions(
    dynamodb: Any, table: str
) -> None:
    import boto3

    counted = boto3.client("dynamodb", region_name="us-east-1")
    meter = Meter(counted, dynamodb)
    big = "x" * 1500
    counted.put_item(TableName=table, Item={"pk": {"S": "a"}, "d": {"S": big}})  # 2 WCU
    counted.put_item(TableName=table, Item={"pk": {"S": "b"}, "g": {"S": "1"}})  # 1 + 1 (index)
    with pytest.raises(counted.exceptions.ConditionalCheckFailedException):
        counted.put_item(  # fails on the 1.5 KB item: still 2 WCU
            TableName=table, Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"
        )
    counted.update_item(  # the larger of before and after: 2
        TableName=table,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    counted.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)  # 1 RCU
    counted.get_item(TableName=table, Key={"pk": {"S": "zz"}})  # missing, eventually consistent: 0.5
    counted.query(
        TableName=table, KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}}
    )
    counted.transact_write_items(  # 2x per item
        TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "t"}}}}]
    )

    spent = meter.reset()
    assert spent.requests == {
        "PutItem": 3,
        "UpdateItem": 1,
        "GetItem": 2,
        "Query": 1,
        "TransactWriteItems": 1,
    }
    assert spent.write_units == 2 + 2 + 2 + 2 + 2
    assert spent.read_units == 1 + 0.5 + 0.5
    assert meter.cost.total_requests == 0
