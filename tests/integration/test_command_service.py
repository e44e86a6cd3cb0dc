"""The application service on DynamoDB (moto): cost per command, conflicts, idempotency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from orders_core.application import CommandService, IdempotencyKeyReused, StaleVersion
from orders_core.domain.errors import RuleViolation
from orders_core.domain.orders import ORDER, AddItem, CancelOrder, OrderLine
from orders_core.envelope import envelopes_of
from orders_core.store.dynamodb import DynamoDBEventStore
from tests.support.counting import RequestCounter
from tests.support.orders import context, new_order_id, place_order


@pytest.fixture
def store(dynamodb: Any, events_table: str) -> DynamoDBEventStore:
    return DynamoDBEventStore(dynamodb, events_table)


@pytest.fixture
def counter(dynamodb: Any) -> RequestCounter:
    return RequestCounter(dynamodb)


def add(order_id: str, sku: str = "sku-x") -> AddItem:
    return AddItem(order_id, "alice", OrderLine(sku, 1, Decimal("1.00")))


def test_a_new_order_costs_one_write_request(store: DynamoDBEventStore, counter: RequestCounter) -> None:
    service = CommandService(store)
    order_id = new_order_id()
    counter.reset()

    result = service.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)

    assert result.version == 3
    assert dict(counter.calls) == {"PutItem": 1}


def test_a_command_on_a_warm_aggregate_costs_one_write_request(
    store: DynamoDBEventStore, counter: RequestCounter
) -> None:
    service = CommandService(store)
    order_id = new_order_id()
    service.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    counter.reset()

    result = service.execute(ORDER, order_id, add(order_id), context())

    assert result.version == 5
    assert dict(counter.calls) == {"PutItem": 1}


def test_a_cold_aggregate_is_read_once_then_written(
    store: DynamoDBEventStore, counter: RequestCounter
) -> None:
    order_id = new_order_id()
    CommandService(store).execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    cold = CommandService(store)
    counter.reset()

    cold.execute(ORDER, order_id, add(order_id), context())

    assert dict(counter.calls) == {"Query": 1, "PutItem": 1}


def test_a_stale_cache_conflicts_reloads_only_what_it_missed_and_decides_again(
    store: DynamoDBEventStore, counter: RequestCounter
) -> None:
    # Given two warm function instances that both hold the order at version 3
    order_id = new_order_id()
    first, second = CommandService(store), CommandService(store)
    first.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    second.load(ORDER, order_id)

    # When the first writes and the second then writes from its outdated cache
    first.execute(ORDER, order_id, add(order_id, "sku-a"), context())
    counter.reset()
    result = second.execute(ORDER, order_id, add(order_id, "sku-b"), context())

    # Then the second conflicts once, reads the missed commit, and appends after it
    assert result.version == 7
    assert dict(counter.calls) == {"PutItem": 2, "Query": 1}
    versions = [e.version for e in envelopes_of(store.read_commits(f"order-{order_id}"))]
    assert versions == list(range(1, 8))


def test_a_retried_command_appends_nothing_and_answers_as_the_first_time(
    store: DynamoDBEventStore, counter: RequestCounter
) -> None:
    order_id = new_order_id()
    service = CommandService(store)
    first = service.execute(
        ORDER, order_id, place_order(order_id), context("key-1", fingerprint="f"), expect_new=True
    )
    service.execute(ORDER, order_id, add(order_id), context())

    # Replayed on the same instance (cached) and on a cold one
    counter.reset()
    again = service.execute(
        ORDER, order_id, place_order(order_id), context("key-1", fingerprint="f"), expect_new=True
    )
    cold = CommandService(store).execute(
        ORDER, order_id, place_order(order_id), context("key-1", fingerprint="f"), expect_new=True
    )

    assert (again.version, again.correlation_id, again.replayed) == (3, first.correlation_id, True)
    assert (cold.version, cold.correlation_id, cold.replayed) == (3, first.correlation_id, True)
    assert counter.calls["PutItem"] == 1  # only the cold instance's optimistic write, which failed
    assert envelopes_of(store.read_commits(f"order-{order_id}"))[-1].version == 5


def test_a_reused_key_with_another_request_is_refused(store: DynamoDBEventStore) -> None:
    order_id = new_order_id()
    service = CommandService(store)
    service.execute(
        ORDER, order_id, place_order(order_id), context("key-1", fingerprint="f1"), expect_new=True
    )

    with pytest.raises(IdempotencyKeyReused):
        service.execute(ORDER, order_id, add(order_id), context("key-1", fingerprint="f2"))


def test_if_match_must_name_the_current_version(store: DynamoDBEventStore) -> None:
    order_id = new_order_id()
    service = CommandService(store)
    service.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)

    with pytest.raises(StaleVersion) as stale:
        service.execute(ORDER, order_id, add(order_id), context(expected_version=2))
    assert stale.value.actual == 3

    assert service.execute(ORDER, order_id, add(order_id), context(expected_version=3)).version == 5
    # A cold instance behind the client's version catches up before comparing
    other = CommandService(store)
    other.load(ORDER, order_id)
    service.execute(ORDER, order_id, add(order_id), context())
    assert other.execute(ORDER, order_id, add(order_id), context(expected_version=7)).version == 9


def test_a_refusal_from_an_outdated_cache_is_checked_against_the_store(store: DynamoDBEventStore) -> None:
    # Given an instance whose cache says the order is placed, while it was cancelled elsewhere
    order_id = new_order_id()
    stale, other = CommandService(store), CommandService(store)
    stale.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    other.execute(ORDER, order_id, CancelOrder(order_id, "alice", False, "no"), context())

    # Then a command decided on the stale state still meets the real state's rule
    with pytest.raises(RuleViolation, match="cancelled"):
        stale.execute(ORDER, order_id, add(order_id), context())


def test_recorded_times_never_go_backwards_within_a_stream(store: DynamoDBEventStore) -> None:
    order_id = new_order_id()
    service = CommandService(store)
    service.execute(
        ORDER,
        order_id,
        place_order(order_id),
        context(recorded_at="2026-11-26T10:00:05.000000Z"),
        expect_new=True,
    )
    # A function instance with a clock two seconds behind
    CommandService(store).execute(
        ORDER, order_id, add(order_id), context(recorded_at="2026-11-26T10:00:03.000000Z")
    )

    times = [e.recorded_at for e in envelopes_of(store.read_commits(f"order-{order_id}"))]
    assert times == sorted(times)
    assert times[-1] == "2026-11-26T10:00:05.000000Z"
