"""One contract, every read store: the in-memory fake and DynamoDB (on moto) must agree."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from orders_core.readmodels.dynamodb import DynamoDBReadStore
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.readmodels.port import InvalidCursor, ReadStore, ReadStoreError, VersionConflict
from orders_core.tables import CUSTOMER_ORDERS


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> ReadStore:
    if request.param == "memory":
        return InMemoryReadStore()
    dynamodb: Any = request.getfixturevalue("dynamodb")
    name = f"read-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**CUSTOMER_ORDERS.create_table_request(name))
    return DynamoDBReadStore(dynamodb, name)


def test_a_versioned_row_moves_only_from_the_expected_version(store: ReadStore) -> None:
    key = ("1#order-a", "view")
    store.put_next_version(key, {"status": "placed"}, version=3, expected=None)
    with pytest.raises(VersionConflict):
        store.put_next_version(key, {"status": "again"}, version=3, expected=None)
    with pytest.raises(VersionConflict):
        store.put_next_version(key, {"status": "skipped"}, version=6, expected=4)
    store.put_next_version(key, {"status": "shipped"}, version=4, expected=3)

    row = store.get_many([key, ("1#missing", "view")])
    assert list(row) == [key]
    assert (row[key]["status"], row[key]["version"]) == ("shipped", 4)


def test_a_derived_row_is_only_replaced_by_a_newer_one(store: ReadStore) -> None:
    key = ("1#2026-11-26", "summary")
    assert store.put_if_newer(key, {"total": Decimal("10.00")}, version=5)
    assert not store.put_if_newer(key, {"total": Decimal("1.00")}, version=5)
    assert not store.put_if_newer(key, {"total": Decimal("1.00")}, version=4)
    assert store.put_if_newer(key, {"total": Decimal("12.50")}, version=6)
    assert store.get_many([key])[key]["total"] == Decimal("12.50")


def test_contributions_apply_once_per_source(store: ReadStore) -> None:
    key = ("1#sku-1", "order#a")
    assert store.add_contribution(
        key, sources=["1"], counters={"reserved": 2, "revenue": Decimal("5.50")}, fields={}
    )
    assert store.add_contribution(
        key, sources=["4", "5"], counters={"reserved": -2, "shipped": 2}, fields={"x": "y"}
    )
    # A redelivery of any applied source changes nothing, even mixed with new ones
    assert not store.add_contribution(key, sources=["4"], counters={"reserved": -2, "shipped": 2}, fields={})
    assert not store.add_contribution(key, sources=["6", "1"], counters={"reserved": 100}, fields={})

    row = store.get_many([key])[key]
    assert (row["reserved"], row["shipped"], row["revenue"], row["x"]) == (0, 2, Decimal("5.50"), "y")
    assert set(row["applied"]) == {"1", "4", "5"}


def test_a_row_is_deleted_only_if_nothing_was_added_since_it_was_read(store: ReadStore) -> None:
    key = ("parked#inventory", "order-a")
    assert store.add_contribution(key, sources=["3"], counters={"count": 1}, fields={"error": "boom"})
    assert store.add_contribution(key, sources=["5"], counters={"count": 1}, fields={})

    # A reader that saw one addition cannot delete the row that has two now
    assert not store.delete_if(key, counter="count", equals=1)
    assert key in store.get_many([key])
    assert store.delete_if(key, counter="count", equals=2)
    assert store.get_many([key]) == {}
    # Gone rows are not deleted twice
    assert not store.delete_if(key, counter="count", equals=2)


def test_a_partition_reads_back_whole(store: ReadStore) -> None:
    for n in range(30):
        store.add_contribution(("1#day", f"order#{n:03}"), sources=["1"], counters={"total": n}, fields={})
    store.add_contribution(("1#other", "order#x"), sources=["1"], counters={"total": 1000}, fields={})

    rows = store.query_partition("1#day")
    assert sorted(row["sk"] for row in rows) == [f"order#{n:03}" for n in range(30)]
    assert sum(row["total"] for row in rows) == sum(range(30))


def test_the_index_pages_newest_first_with_opaque_cursors(store: ReadStore) -> None:
    for n in range(7):
        store.put_next_version(
            (f"1#order-{n}", "view"),
            {"gsi1pk": "1#alice", "gsi1sk": f"2026-11-2{n}T00:00:00Z#{n}"},
            version=1,
            expected=None,
        )
    store.put_next_version(
        ("1#order-bob", "view"),
        {"gsi1pk": "1#bob", "gsi1sk": "2026-11-29T00:00:00Z#b"},
        version=1,
        expected=None,
    )

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page, cursor = store.query_index("1#alice", limit=3, cursor=cursor)
        seen += [row["pk"] for row in page]
        if cursor is None:
            break
    assert seen == [f"1#order-{n}" for n in reversed(range(7))]
    with pytest.raises(InvalidCursor):
        store.query_index("1#alice", limit=3, cursor="not-a-cursor")


def test_retiring_a_generation_deletes_only_its_rows(store: ReadStore) -> None:
    store.put_next_version(("1#a", "view"), {}, version=1, expected=None)
    store.put_next_version(("2#a", "view"), {}, version=1, expected=None)
    store.add_contribution(("1#b", "x"), sources=["1"], counters={"n": 1}, fields={})

    assert store.delete_partition_prefix("1#") == 2
    assert list(store.get_many([("1#a", "view"), ("2#a", "view"), ("1#b", "x")])) == [("2#a", "view")]


# --- DynamoDB only: no botocore error leaves the adapter ------------------------------------------

KEY = ("1#a", "view")
THROTTLED = "ProvisionedThroughputExceededException"
OPERATIONS: dict[str, tuple[list[str], Callable[[ReadStore], Any]]] = {
    # operation: (client calls it makes, the last one failing; how to call it)
    "get_many": (["batch_get_item"], lambda store: store.get_many([KEY])),
    "put_next_version": (
        ["put_item"],
        lambda store: store.put_next_version(KEY, {}, version=2, expected=1),
    ),
    "put_if_newer": (["put_item"], lambda store: store.put_if_newer(KEY, {}, version=2)),
    "add_contribution": (
        ["update_item"],
        lambda store: store.add_contribution(KEY, sources=["1"], counters={"n": 1}, fields={}),
    ),
    "delete_if": (["delete_item"], lambda store: store.delete_if(KEY, counter="n", equals=1)),
    "query_partition": (["query"], lambda store: store.query_partition("1#a")),
    "query_index": (["query"], lambda store: store.query_index("1#alice", limit=3)),
    "delete_partition_prefix": (
        ["scan", "batch_write_item"],
        lambda store: store.delete_partition_prefix("1#"),
    ),
}


def _stubbed_store() -> tuple[DynamoDBReadStore, Stubber]:
    client: Any = boto3.client("dynamodb", region_name="us-east-1")
    return DynamoDBReadStore(client, "read"), Stubber(client)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_failing_dynamodb_call_is_a_read_store_error_carrying_its_code(operation: str) -> None:
    # Given a DynamoDB that throttles the operation's (last) call
    calls, call = OPERATIONS[operation]
    store, stubber = _stubbed_store()
    for earlier in calls[:-1]:
        stubber.add_response(earlier, {"Items": [{"pk": {"S": KEY[0]}, "sk": {"S": KEY[1]}}]})
    stubber.add_client_error(calls[-1], THROTTLED, "Rate of requests exceeds the allowed throughput", 400)

    # When the operation runs, then the error is the port's, with the code and the original as cause
    with stubber, pytest.raises(ReadStoreError) as failed:
        call(store)
    assert (failed.value.operation, failed.value.code) == (operation, THROTTLED)
    assert THROTTLED in str(failed.value)
    assert isinstance(failed.value.__cause__, ClientError)
    stubber.assert_no_pending_responses()


def test_failed_conditions_stay_a_version_conflict_or_a_false_result() -> None:
    store, stubber = _stubbed_store()
    for method in ("put_item", "put_item", "update_item"):
        stubber.add_client_error(method, "ConditionalCheckFailedException", "The conditional request failed")
    with stubber:
        with pytest.raises(VersionConflict):
            store.put_next_version(KEY, {}, version=2, expected=1)
        assert store.put_if_newer(KEY, {}, version=2) is False
        assert store.add_contribution(KEY, sources=["1"], counters={"n": 1}, fields={}) is False
    stubber.assert_no_pending_responses()
