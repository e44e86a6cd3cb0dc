"""GET /analytics/products/{product_id}: product sales as operators read them, through the handlers."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from command_api import handler as commands
from orders_core import composition
from orders_core.envelope import envelopes_of
from orders_core.projections.product_sales import NAME
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from orders_core.tables import TableSpec
from query_api import handler as queries
from tests.support import oracle
from tests.support.apigw import FakeLambdaContext, http_event

ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}


@pytest.fixture
def events() -> Iterator[InMemoryEventStore]:
    store = InMemoryEventStore()
    # One read store per table, as deployed: inventory and product sales both key rows by product.
    tables: defaultdict[str, InMemoryReadStore] = defaultdict(InMemoryReadStore)

    def read_store_for(spec: TableSpec) -> InMemoryReadStore:
        return tables[spec.key]

    composition.use(
        composition.Root(composition.Settings(), event_store=store, read_store_for=read_store_for)
    )
    yield store
    composition.use(None)


def call(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    target = queries if method == "GET" else commands
    response = target.lambda_handler(http_event(method, path, **kwargs), FakeLambdaContext())
    return response["statusCode"], response["headers"], json.loads(response["body"])


def place(customer: str, *items: tuple[str, int, str]) -> str:
    body = {
        "items": [{"product_id": p, "quantity": q, "unit_price": price} for p, q, price in items],
        "shipping_address": ADDRESS,
    }
    status, _, placed = call("POST", "/orders", body=body, user=customer)
    assert status == 201, placed
    return str(placed["order_id"])


def project(events: InMemoryEventStore) -> None:
    """Deliver the whole log to the read model, as the stream would."""
    commits = [c for stream in events.stream_ids() for c in events.read_commits(stream)]
    assert composition.root().projection(NAME, 1).process(commits) == {}


def test_operators_read_a_products_sales_over_orders_not_cancelled(events: InMemoryEventStore) -> None:
    # Given three orders of the tea: one shipped with an item added, one open, one cancelled
    shipped = place("alice", ("sku-tea", 2, "4.00"), ("sku-cup", 1, "9.50"))
    added = {"product_id": "sku-tea", "quantity": 1, "unit_price": "3.25"}
    assert call("POST", f"/orders/{shipped}/items", body=added, user="alice")[0] == 200
    ship = {"tracking_number": "T1"}
    assert call("POST", f"/orders/{shipped}/ship", body=ship, user="op", operator=True)[0] == 200
    place("bob", ("sku-tea", 5, "4.00"))
    cancelled = place("carol", ("sku-tea", 7, "4.00"), ("sku-cup", 2, "9.50"))
    assert call("POST", f"/orders/{cancelled}/cancel", body={"reason": "no"}, user="carol")[0] == 200

    # When the read model has seen the log
    project(events)

    # Then an operator reads the product's figures, with the revision as ETag
    status, headers, tea = call("GET", "/analytics/products/sku-tea", user="op", operator=True)
    assert status == 200
    assert {k: v for k, v in tea.items() if k != "revision"} == {
        "product_id": "sku-tea",
        "units_sold": 8,
        "revenue": "31.25",
        "order_count": 2,
    }
    assert headers["ETag"] == f'"{tea["revision"]}"'
    log = envelopes_of([c for s in events.stream_ids() for c in events.read_commits(s)])
    for product, expected in oracle.product_sales(log).items():
        status, _, body = call("GET", f"/analytics/products/{product}", user="op", operator=True)
        assert status == 200 and {k: v for k, v in body.items() if k != "revision"} == expected


def test_only_operators_may_read_product_sales_of_valid_known_products(events: InMemoryEventStore) -> None:
    place("alice", ("sku-tea", 1, "4.00"))
    project(events)

    assert call("GET", "/analytics/products/sku-tea", user="alice")[0] == 403
    status, _, problem = call("GET", "/analytics/products/sku-none", user="op", operator=True)
    assert status == 404 and problem["detail"] == "no sales recorded for product sku-none"
    status, _, problem = call("GET", "/analytics/products/sku%20tea", user="op", operator=True)
    assert status == 422 and problem["errors"][0]["field"] == "product_id"
