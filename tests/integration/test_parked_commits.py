"""A read model that fails parks its commits; operators list them and replay them after the fix,
through the admin API, while the other read models keep going."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from admin_api import handler as admin
from projections.handler import handler_for

from orders_core import composition
from orders_core.application import CommandContext, CommandService
from orders_core.domain.orders import ORDER, AddItem, OrderLine, PlaceOrder, ShippingAddress
from orders_core.envelope import envelopes_of
from orders_core.projections import sales
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from tests.support import oracle
from tests.support.apigw import FakeLambdaContext, http_event
from tests.support.delivery import stream_records

OPS: dict[str, Any] = {"user": "ops", "operator": True}
ORDERS = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]


class SalesBug(Exception):
    pass


@pytest.fixture
def events() -> Iterator[InMemoryEventStore]:
    store = InMemoryEventStore()
    tables: dict[str, InMemoryReadStore] = {}
    composition.use(
        composition.Root(
            composition.Settings(),
            event_store=store,
            read_store_for=lambda spec: tables.setdefault(spec.key, InMemoryReadStore()),
            start_execution=None,
        )
    )
    yield store
    composition.use(None)


def place_orders(events: InMemoryEventStore) -> None:
    service = CommandService(events)
    for n, order_id in enumerate(ORDERS):
        line = OrderLine(f"sku-{n}", 1 + n, Decimal("2.50"))
        context = CommandContext(f"p{n}", f"corr-{n}", "alice", f"2026-11-29T10:00:0{n}.000000Z")
        service.execute(
            ORDER,
            order_id,
            PlaceOrder(order_id, "alice", (line,), ShippingAddress("a", "b", "c", "d")),
            context,
        )
        add = AddItem(order_id, "alice", OrderLine("sku-9", 1, Decimal("1.00")))
        service.execute(
            ORDER,
            order_id,
            add,
            CommandContext(f"a{n}", f"corr-{n}", "alice", f"2026-11-29T10:01:0{n}.000000Z"),
        )


def admin_call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = admin.lambda_handler(http_event(method, path, **OPS, **kwargs), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_failing_read_model_parks_its_commits_and_a_replay_after_the_fix_makes_it_exact(
    events: InMemoryEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given sales analytics has a bug on ItemAdded, and the stream delivers three orders
    place_orders(events)
    real = sales.fold

    def buggy(order: Any, fact: Any) -> None:
        if fact.event.event_type == "ItemAdded":
            raise SalesBug("ItemAdded is not handled")
        real(order, fact)

    monkeypatch.setattr(sales, "fold", buggy)
    commits = [c for s in events.stream_ids() for c in events.read_commits(s)]
    response = handler_for(composition.root().projector)(
        {"Records": stream_records(commits)}, FakeLambdaContext()
    )

    # Then the batch succeeds for the stream (nothing to deliver again) and the other read models are exact
    assert response == {"batchItemFailures": []}
    log = [e for s in events.stream_ids() for e in envelopes_of(events.read_commits(s))]
    views = composition.root().read_models
    for order_id, expected in oracle.order_views(log).items():
        view = views.orders.get(order_id)
        assert view is not None and view.to_json() == expected
    # and the operators see what sales analytics parked: each order's ItemAdded commit, with the error
    status, body = admin_call("GET", "/admin/failures")
    assert status == 200
    parked = {p["stream_id"]: p for p in body["parked"]}
    assert set(parked) == {f"order-{o}" for o in ORDERS}
    assert {p["projection"] for p in parked.values()} == {"sales_analytics"}
    assert all(p["versions"] == [4] and "ItemAdded is not handled" in p["error"] for p in parked.values())
    status, projections = admin_call("GET", "/admin/projections")
    assert {p["projection"]: p["parked_streams"] for p in projections["projections"]}["sales_analytics"] == 3

    # When a replay runs before the fix, nothing is released and the error is shown
    status, body = admin_call("POST", "/admin/failures/replay", body={"projection": "sales_analytics"})
    assert status == 200 and not any(o["replayed"] for o in body["replayed"])
    assert len(admin_call("GET", "/admin/failures")[1]["parked"]) == 3

    # When the bug is fixed and the parked commits are replayed
    monkeypatch.setattr(sales, "fold", real)
    status, body = admin_call("POST", "/admin/failures/replay", body={})

    # Then every stream was replayed, nothing is parked, and the day's sales equal a clean fold
    assert status == 200 and all(o["replayed"] for o in body["replayed"]) and len(body["replayed"]) == 3
    assert admin_call("GET", "/admin/failures")[1] == {"parked": []}
    for day, expected in oracle.daily_sales(log).items():
        figures = views.sales.get(day)
        assert figures is not None and {k: v for k, v in figures.items() if k != "revision"} == expected


def test_failures_of_an_unknown_read_model_are_refused_with_422(events: InMemoryEventStore) -> None:
    status, body = admin_call("GET", "/admin/failures", query={"projection": "nope"})
    assert status == 422 and body["errors"][0]["field"] == "projection"
    status, body = admin_call("POST", "/admin/failures/replay", body={"projection": "nope"})
    assert status == 422


def test_failures_are_for_operators_only(events: InMemoryEventStore) -> None:
    listing = http_event("GET", "/admin/failures", user="alice")
    replaying = http_event("POST", "/admin/failures/replay", body={}, user="alice")
    for event in (listing, replaying):
        assert admin.lambda_handler(event, FakeLambdaContext())["statusCode"] == 403
