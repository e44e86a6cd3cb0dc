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
from orders_core.readmodels.port import (
    MAX_ATOMIC_ROWS,
    InvalidCursor,
    ReadStore,
    ReadStoreError,
    StateWrite,
    SummaryDelta,
    VersionConflict,
)
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

    assert store.delete_partition_prefix_page("1#") == (2, None)
    assert list(store.get_many([("1#a", "view"), ("2#a", "view"), ("1#b", "x")])) == [("2#a", "view")]


def test_a_generation_is_retired_page_by_page_from_an_opaque_cursor(store: ReadStore) -> None:
    # Given 23 rows of generation 1 between rows of generations 2 and 10 (whose pk also starts with 1)
    for n in range(23):
        store.put_next_version((f"1#order-{n:02}", "view"), {}, version=1, expected=None)
    kept = [("2#order-00", "view"), ("10#order-00", "view"), ("0#z", "x")]
    for key in kept:
        store.put_next_version(key, {}, version=1, expected=None)

    # When pages of 5 rows evaluated are deleted, each started from the cursor the last one returned
    pages: list[int] = []
    cursor: str | None = None
    while True:
        deleted, cursor = store.delete_partition_prefix_page("1#", cursor=cursor, limit=5)
        pages.append(deleted)
        if cursor is None:
            break
        assert isinstance(cursor, str) and "1#" not in cursor  # opaque, and it travels as JSON text
        assert len(pages) < 20, "the pages never end"

    # Then it took several pages of at most 5, every row of generation 1 went, the others stayed
    assert len(pages) >= 5 and max(pages) <= 5 and sum(pages) == 23
    assert list(store.get_many([(f"1#order-{n:02}", "view") for n in range(23)])) == []
    assert sorted(store.get_many(kept)) == sorted(kept)
    # and repeating the last page, or starting over, deletes nothing more
    assert store.delete_partition_prefix_page("1#")[0] == 0
    assert sorted(store.get_many(kept)) == sorted(kept)


def test_a_deletion_page_that_is_retried_deletes_nothing_twice(store: ReadStore) -> None:
    for n in range(12):
        store.put_next_version((f"1#order-{n:02}", "view"), {}, version=1, expected=None)

    first, cursor = store.delete_partition_prefix_page("1#", limit=4)
    again, cursor_again = store.delete_partition_prefix_page("1#", limit=4)  # the same call, retried

    # The retry finds the first page's rows gone and goes on with the next ones: nothing is lost
    assert first == 4 and cursor is not None and cursor_again is not None
    rest = 0
    while cursor_again is not None:
        deleted, cursor_again = store.delete_partition_prefix_page("1#", cursor=cursor_again, limit=4)
        rest += deleted
    assert first + again + rest == 12
    with pytest.raises(InvalidCursor):
        store.delete_partition_prefix_page("1#", cursor="not-a-cursor")


def test_state_rows_and_summary_deltas_are_written_together(store: ReadStore) -> None:
    # Given a state row at version 3 and a summary with counters already
    moved, created, summary = ("1#order-a", "view"), ("1#order-b", "view"), ("1#day", "summary")
    store.put_next_version(moved, {"status": "placed", "note": "x"}, version=3, expected=None)
    assert (
        store.apply_atomically(
            [], [SummaryDelta(summary, add={"orders": 1, "qty:sku-1": 2}, set={"old-field": "gone soon"})]
        )
        == []
    )

    # When one call moves it from 3, creates another, and adds to, sets and removes on the summary
    failed = store.apply_atomically(
        [
            StateWrite(moved, {"status": "shipped"}, version=4, expected=3),
            StateWrite(created, {"status": "placed", "total": Decimal("9.90")}, version=1, expected=None),
        ],
        [
            SummaryDelta(
                summary,
                add={"orders": 2, "qty:sku-1": -2, "revenue": Decimal("12.40"), "qty:sku-2": 5},
                set={"last:order-id": "order-b", "status": "open"},
                remove=["old-field"],
            )
        ],
    )

    # Then every row is written: state rows replaced whole at their version, counters added
    # (absent ones from 0), attributes set and removed, names with ':' and '-' as they are
    assert failed == []
    rows = store.get_many([moved, created, summary])
    assert rows[moved] == {"pk": moved[0], "sk": moved[1], "status": "shipped", "version": 4}
    assert rows[created] == {
        "pk": created[0],
        "sk": created[1],
        "status": "placed",
        "total": Decimal("9.90"),
        "version": 1,
    }
    assert rows[summary] == {
        "pk": summary[0],
        "sk": summary[1],
        "orders": 3,
        "qty:sku-1": 0,
        "qty:sku-2": 5,
        "revenue": Decimal("12.40"),
        "last:order-id": "order-b",
        "status": "open",
    }


def test_one_stale_state_row_writes_nothing_at_all(store: ReadStore) -> None:
    # Given two state rows at version 2 and a summary
    first, second, summary = ("1#order-a", "view"), ("1#order-b", "view"), ("1#day", "summary")
    for key in (first, second):
        store.put_next_version(key, {"status": "placed"}, version=2, expected=None)
    store.apply_atomically([], [SummaryDelta(summary, add={"orders": 2})])
    before = store.get_many([first, second, summary, ("1#order-c", "view")])

    # When a write expects one of them at a version it has left (or a new one to be absent)
    stale = store.apply_atomically(
        [
            StateWrite(first, {"status": "shipped"}, version=3, expected=2),
            StateWrite(second, {"status": "shipped"}, version=2, expected=1),
            StateWrite(("1#order-c", "view"), {"status": "placed"}, version=1, expected=None),
        ],
        [SummaryDelta(summary, add={"orders": 1}, set={"status": "busy"})],
    )
    taken = store.apply_atomically([StateWrite(first, {}, version=1, expected=None)], [])

    # Then only the failed keys come back, and no row, state or summary, changed
    assert stale == [second]
    assert taken == [first]
    assert store.get_many([first, second, summary, ("1#order-c", "view")]) == before


def test_a_row_a_delta_created_is_at_no_version(store: ReadStore) -> None:
    key = ("1#order-a", "view")
    assert store.apply_atomically([], [SummaryDelta(key, add={"n": 1})]) == []
    assert store.apply_atomically([StateWrite(key, {}, version=1, expected=None)], []) == [key]
    assert store.apply_atomically([StateWrite(key, {}, version=2, expected=1)], []) == [key]


def test_a_newest_wins_delta_applies_only_if_nothing_newer_is_stored(store: ReadStore) -> None:
    key, other = ("1#day", "summary"), ("1#day", "other")
    # Absent: the row does not exist yet, then the attribute is not there
    assert (
        store.apply_atomically([], [SummaryDelta(key, add={"n": 1}, only_if_not_after=("latest", "b"))]) == []
    )
    assert (
        store.apply_atomically(
            [], [SummaryDelta(key, set={"latest": "b"}, only_if_not_after=("latest", "b"))]
        )
        == []
    )
    # Present now: an older writer fails, as new or newer ones pass
    assert store.apply_atomically(
        [], [SummaryDelta(key, add={"n": 1}, only_if_not_after=("latest", "a"))]
    ) == [key]
    assert (
        store.apply_atomically([], [SummaryDelta(key, add={"n": 1}, only_if_not_after=("latest", "b"))]) == []
    )
    assert (
        store.apply_atomically([], [SummaryDelta(key, add={"n": 5}, only_if_not_after=("latest", "c"))]) == []
    )
    # A row that does not exist holds nothing newer
    assert (
        store.apply_atomically([], [SummaryDelta(other, add={"n": 1}, only_if_not_after=("latest", ""))])
        == []
    )
    rows = store.get_many([key, other])
    assert rows[key] == {"pk": key[0], "sk": key[1], "latest": "b", "n": 7}
    assert rows[other] == {"pk": other[0], "sk": other[1], "n": 1}


def test_a_delta_that_changes_nothing_is_still_a_condition(store: ReadStore) -> None:
    # Given a summary owned by 'a'
    key, view = ("1#day", "summary"), ("1#order-a", "view")
    store.apply_atomically([], [SummaryDelta(key, set={"owner": "a"})])

    # When a state row is written only if the summary holds nothing after '0', then nothing is written
    check = SummaryDelta(key, only_if_not_after=("owner", "0"))
    assert store.apply_atomically([StateWrite(view, {}, version=1, expected=None)], [check]) == [key]
    assert store.get_many([view]) == {}

    # And with the condition true, the state row is written and the summary left as it was
    check = SummaryDelta(key, only_if_not_after=("owner", "a"))
    assert store.apply_atomically([StateWrite(view, {}, version=1, expected=None)], [check]) == []
    assert store.get_many([key, view])[key] == {"pk": key[0], "sk": key[1], "owner": "a"}
    # A delta with neither a change nor a condition writes nothing, not even an empty row
    assert store.apply_atomically([], [SummaryDelta(("1#day", "nothing"))]) == []
    assert store.apply_atomically([], []) == []
    assert store.get_many([("1#day", "nothing")]) == {}


def test_an_atomic_write_is_bounded_and_names_each_row_once(store: ReadStore) -> None:
    too_many = [SummaryDelta((f"1#{n}", "summary"), add={"n": 1}) for n in range(MAX_ATOMIC_ROWS)]
    with pytest.raises(ValueError):
        store.apply_atomically([StateWrite(("1#x", "view"), {}, version=1, expected=None)], too_many)
    with pytest.raises(ValueError):
        store.apply_atomically(
            [StateWrite(KEY, {}, version=1, expected=None)], [SummaryDelta(KEY, add={"n": 1})]
        )
    # Nothing was written by either
    assert store.get_many([KEY, ("1#x", "view"), ("1#0", "summary")]) == {}
    # Exactly the limit is fine
    assert store.apply_atomically([], too_many) == []
    assert store.get_many([("1#99", "summary")])[("1#99", "summary")]["n"] == 1


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
    "apply_atomically": (
        ["transact_write_items"],
        lambda store: store.apply_atomically([StateWrite(KEY, {}, version=2, expected=1)], []),
    ),
    "delete_if": (["delete_item"], lambda store: store.delete_if(KEY, counter="n", equals=1)),
    "query_partition": (["query"], lambda store: store.query_partition("1#a")),
    "query_index": (["query"], lambda store: store.query_index("1#alice", limit=3)),
    "delete_partition_prefix_page": (
        ["scan", "batch_write_item"],
        lambda store: store.delete_partition_prefix_page("1#", cursor=None, limit=10),
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


def _cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons",
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


ATOMIC = (
    [StateWrite(KEY, {}, version=2, expected=1), StateWrite(("1#b", "view"), {}, version=1, expected=None)],
    [SummaryDelta(("1#day", "summary"), add={"n": 1})],
)


def test_a_cancelled_transaction_answers_the_keys_whose_condition_failed() -> None:
    store, stubber = _stubbed_store()
    _cancelled(stubber, "None", "ConditionalCheckFailed", "TransactionConflict")
    with stubber:
        assert store.apply_atomically(*ATOMIC) == [("1#b", "view")]
    stubber.assert_no_pending_responses()


def test_a_transaction_conflict_is_tried_again_a_few_times() -> None:
    # Given a DynamoDB where another transaction holds an item twice, then lets go
    store, stubber = _stubbed_store()
    _cancelled(stubber, "None", "TransactionConflict", "None")
    _cancelled(stubber, "TransactionConflict", "None", "None")
    stubber.add_response("transact_write_items", {})
    with stubber:
        assert store.apply_atomically(*ATOMIC) == []
    stubber.assert_no_pending_responses()

    # Given one where it never lets go, then the fifth conflict is an error
    store, stubber = _stubbed_store()
    for _ in range(5):
        _cancelled(stubber, "None", "None", "TransactionConflict")
    with stubber, pytest.raises(ReadStoreError) as failed:
        store.apply_atomically(*ATOMIC)
    assert (failed.value.operation, failed.value.code) == ("apply_atomically", "TransactionConflict")
    stubber.assert_no_pending_responses()


def test_a_transaction_cancelled_for_another_reason_is_an_error() -> None:
    store, stubber = _stubbed_store()
    _cancelled(stubber, "None", "ThrottlingError", "TransactionConflict")
    with stubber, pytest.raises(ReadStoreError) as failed:
        store.apply_atomically(*ATOMIC)
    assert (failed.value.operation, failed.value.code) == ("apply_atomically", "TransactionCanceledException")
    assert isinstance(failed.value.__cause__, ClientError)
    stubber.assert_no_pending_responses()


def test_deletes_dynamodb_leaves_unprocessed_are_asked_for_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a DynamoDB that throttles one of a page's deletes once, then returns the page's cursor
    monkeypatch.setattr("orders_core.readmodels.dynamodb.time.sleep", lambda _: None)
    store, stubber = _stubbed_store()
    other = {"pk": {"S": "1#b"}, "sk": {"S": "view"}}
    stubber.add_response(
        "scan",
        {"Items": [{"pk": {"S": KEY[0]}, "sk": {"S": KEY[1]}}, other], "LastEvaluatedKey": other},
    )
    stubber.add_response(
        "batch_write_item", {"UnprocessedItems": {"read": [{"DeleteRequest": {"Key": other}}]}}
    )
    stubber.add_response(
        "batch_write_item",
        {},
        expected_params={"RequestItems": {"read": [{"DeleteRequest": {"Key": other}}]}},
    )

    # When a page is deleted, then both rows are, and the cursor goes on after the last one
    with stubber:
        deleted, cursor = store.delete_partition_prefix_page("1#", limit=2)
    assert deleted == 2 and cursor is not None
    stubber.assert_no_pending_responses()

    # Given one that never processes them, then the page fails as the port's error
    store, stubber = _stubbed_store()
    stubber.add_response("scan", {"Items": [other]})
    for _ in range(8):
        stubber.add_response(
            "batch_write_item", {"UnprocessedItems": {"read": [{"DeleteRequest": {"Key": other}}]}}
        )
    with stubber, pytest.raises(ReadStoreError) as failed:
        store.delete_partition_prefix_page("1#")
    assert (failed.value.operation, failed.value.code) == ("delete_partition_prefix_page", "UnprocessedItems")
