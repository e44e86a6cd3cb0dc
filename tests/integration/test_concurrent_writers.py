"""Eight writers on one order: nothing lost, nothing doubled, no gaps."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest

from orders_core.application import CommandService
from orders_core.domain.orders import ORDER, AddItem, OrderLine
from orders_core.envelope import envelopes_of
from orders_core.errors import ConcurrencyError
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.store.memory import InMemoryEventStore
from orders_core.store.port import EventStore
from orders_local.moto_server import install_dynamodb_write_lock
from tests.support.orders import context, new_order_id, place_order

WRITERS = 8
COMMANDS_PER_WRITER = 12


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore()
    # moto checks conditions without a lock; DynamoDB does not let two writers win, so neither may moto.
    install_dynamodb_write_lock()
    return DynamoDBEventStore(request.getfixturevalue("dynamodb"), request.getfixturevalue("events_table"))


def test_concurrent_writers_on_one_order_lose_and_double_nothing(store: EventStore) -> None:
    # Given an order, and eight function instances (each with its own cache) that know it
    order_id = new_order_id()
    CommandService(store).execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
    accepted: list[str] = []
    rejected: list[str] = []
    record = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        service = CommandService(store, max_attempts=3)
        service.load(ORDER, order_id)
        start.wait()
        for n in range(COMMANDS_PER_WRITER):
            command_id = f"w{number}-c{n}"
            line = OrderLine(f"sku-{number}-{n}", 1, Decimal("1.00"))
            try:
                service.execute(ORDER, order_id, AddItem(order_id, "alice", line), context(command_id))
            except ConcurrencyError:
                outcome = rejected
            else:
                outcome = accepted
            with record:
                outcome.append(command_id)

    # When they all add items at once
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every accepted command's events are stored exactly once, and no rejected one's
    events = envelopes_of(store.read_commits(f"order-{order_id}"))
    per_command = Counter(e.command_id for e in events if e.type == "ItemAdded")
    assert len(accepted) + len(rejected) == WRITERS * COMMANDS_PER_WRITER
    assert sorted(per_command) == sorted(accepted)
    assert set(per_command.values()) <= {1}
    assert not set(rejected) & set(per_command)
    # And versions run 1..N without gaps or repeats
    assert [e.version for e in events] == list(range(1, 3 + 2 * len(accepted) + 1))
    assert len({e.event_id for e in events}) == len(events)
    assert len(accepted) >= WRITERS  # contention slows writers down, it does not stop them
