"""Summaries kept by deltas (ADR 12): exact with two writers at once, no read when warm, a bug
fails only the commits from it on."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from orders_core.application import CommandService
from orders_core.domain.inventory import PRODUCT, ReceiveStock, SetReorderLevel
from orders_core.domain.orders import ORDER, AddItem, CancelOrder, OrderLine, PlaceOrder, ShipOrder
from orders_core.envelope import Commit
from orders_core.projections import sales
from orders_core.projections.customer_summary import CustomerSummary
from orders_core.projections.deltas import DeltaSummaries
from orders_core.projections.inventory import Inventory
from orders_core.projections.product_sales import ProductSales
from orders_core.projections.sales import SalesAnalytics
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from tests.support import oracle
from tests.support.orders import ADDRESS, context

MODELS: dict[str, tuple[Callable[[InMemoryReadStore], DeltaSummaries], Callable[..., dict[str, Any]]]] = {
    "sales": (SalesAnalytics, oracle.daily_sales),
    "inventory": (Inventory, oracle.inventory),
    "customer_summary": (CustomerSummary, oracle.customer_summaries),
    "product_sales": (ProductSales, oracle.product_sales),
}


def _history(seed: int, orders: int = 60) -> tuple[InMemoryEventStore, list[Commit]]:
    rng = random.Random(seed)
    events = InMemoryEventStore()
    service = CommandService(events)
    for product in ("p1", "p2", "p3"):
        service.execute(PRODUCT, product, ReceiveStock(product, 50), context())
        service.execute(PRODUCT, product, SetReorderLevel(product, rng.randint(0, 9)), context())
    for n in range(orders):
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer = f"c{rng.randrange(4)}"
        day = f"2026-11-{rng.randint(20, 22)}T{n // 10:02d}:00:{n % 60:02d}.000000Z"
        line = OrderLine(rng.choice(["p1", "p2", "p3"]), rng.randint(1, 3), Decimal("12.50"))
        place = PlaceOrder(order_id, customer, (line,), ADDRESS)
        service.execute(ORDER, order_id, place, context(actor=customer, recorded_at=day))
        for _ in range(rng.randint(0, 2)):
            added = OrderLine(rng.choice(["p1", "p2", "p3"]), 1, Decimal("1.99"))
            service.execute(ORDER, order_id, AddItem(order_id, customer, added), context(actor=customer))
        ending = rng.random()
        if ending < 0.3:
            service.execute(ORDER, order_id, ShipOrder(order_id, "T1"), context())
        elif ending < 0.5:
            service.execute(
                ORDER, order_id, CancelOrder(order_id, customer, False, "r"), context(actor=customer)
            )
    return events, [c for s in events.stream_ids() for c in events.read_commits(s)]


def _figures(model: DeltaSummaries, expected: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found = {entity: model.get(entity) for entity in expected}
    return {
        entity: {k: v for k, v in row.items() if k != "revision"} if row else None
        for entity, row in found.items()
    }


@pytest.mark.parametrize("name", MODELS)
def test_two_writers_on_one_generation_apply_every_commit_once(name: str) -> None:
    # Given the stream and a rebuild's worker writing one generation at once, in different orders
    _, commits = _history(seed=3)
    build, fold = MODELS[name]
    store = InMemoryReadStore()
    lanes = [build(store), build(store)]
    orders = [list(commits), list(commits)]
    random.Random(5).shuffle(orders[1])
    errors: list[BaseException] = []

    def run(lane: DeltaSummaries, batch: Sequence[Commit]) -> None:
        try:
            for start in range(0, len(batch), 7):
                assert lane.process(batch[start : start + 7]) == {}
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(lane, batch)) for lane, batch in zip(lanes, orders, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then nothing was doubled or lost: the figures equal a clean fold, revisions a single delivery's
    assert errors == []
    log = [e for c in commits for e in c.envelopes()]
    expected = fold(log)
    assert _figures(lanes[0], expected) == expected
    once = build(InMemoryReadStore())
    assert once.process(commits) == {}
    assert {e: lanes[0].get(e) for e in expected} == {e: once.get(e) for e in expected}


class CountingStore(InMemoryReadStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        self.reads += 1
        return super().get_many(keys)

    def apply_atomically(self, states: Any, deltas: Any) -> list[tuple[str, str]]:
        self.writes += 1
        return super().apply_atomically(states, deltas)


def test_a_warm_projector_reads_nothing_and_writes_one_transaction_per_batch() -> None:
    # Given orders placed, then changed in later batches
    _, commits = _history(seed=8, orders=40)
    firsts = [c for c in commits if c.first_version == 1]
    later = [c for c in commits if c.first_version > 1]
    store = CountingStore()
    model = SalesAnalytics(store)

    # When the placements arrive (new sources: no read), then the changes (cached sources)
    assert model.process(firsts) == {}
    assert model.process(later) == {}

    # Then no source row was read, and each batch was one transaction
    assert store.reads == 0
    assert store.writes == 2

    # And a cold projector (a new instance) reads what it changes once, then keeps it
    cold = SalesAnalytics(store)
    assert cold.process(later) == {}  # a redelivery: read, nothing to write
    assert (store.reads, store.writes) == (1, 2)


def test_a_redelivered_first_commit_after_a_restart_is_not_counted_twice() -> None:
    _, commits = _history(seed=9, orders=10)
    store = InMemoryReadStore()
    assert SalesAnalytics(store).process(commits) == {}
    before = {day: SalesAnalytics(store).get(day) for day in ("2026-11-20", "2026-11-21", "2026-11-22")}
    # A new instance takes the placements for new orders (no read), and is corrected by the version check
    assert SalesAnalytics(store).process(commits) == {}
    assert {day: SalesAnalytics(store).get(day) for day in before} == before


def test_a_bug_on_one_commit_fails_it_and_the_later_ones_of_its_stream_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, commits = _history(seed=4, orders=12)
    second = next(c for c in commits if c.stream_id.startswith("order-") and c.first_version > 1)
    order, from_version = second.stream_id, second.first_version
    real = sales.fold

    def buggy(data: dict[str, Any], fact: Any) -> None:
        if fact.envelope.stream_id == order and fact.envelope.version >= from_version:
            raise ValueError("not handled yet")
        real(data, fact)

    monkeypatch.setattr(sales, "fold", buggy)
    model = SalesAnalytics(InMemoryReadStore())
    failures = model.process(commits)
    failed = {(commits[p].stream_id, commits[p].first_version) for p in failures}
    later = {
        (c.stream_id, c.first_version)
        for c in commits
        if c.stream_id == order and c.first_version >= from_version
    }
    assert failed == later
    # The order's placement went through: the day counts it already
    monkeypatch.setattr(sales, "fold", real)
    assert model.process(commits) == {}
    log = [e for c in commits for e in c.envelopes()]
    expected = oracle.daily_sales(log)
    assert _figures(model, expected) == expected
