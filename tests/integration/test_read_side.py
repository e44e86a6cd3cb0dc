"""The read side on DynamoDB (moto): stream → pollers → projections → query API."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from projections.handler import handler_for

from command_api import handler as commands
from orders_core import composition
from orders_core.envelope import envelopes_of
from orders_core.projections.base import Projection
from orders_core.projections.control import ControlStore
from orders_core.projections.fanout import Projector
from orders_core.projections.live import LiveProjection
from orders_core.projections.parking import ParkingLot
from orders_core.projections.registry import NAMES, registration
from orders_core.readmodels.dynamodb import DynamoDBReadStore
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import ALL_TABLES, EVENTS
from orders_local.stream_poller import InMemoryCheckpointStore, PollerSettings, StreamPoller
from query_api import handler as queries
from tests.support import oracle
from tests.support.apigw import FakeLambdaContext, http_event
from tests.support.counting import RequestCounter, scan_all

WRITES = ("PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem")


class System:
    def __init__(self, dynamodb: Any, names: dict[str, str]) -> None:
        self.names = names
        # The projections get their own client so that their requests can be counted apart.
        self.projection_client = boto3.client("dynamodb", region_name="us-east-1")
        self.counter = RequestCounter(self.projection_client)
        events = DynamoDBEventStore(self.projection_client, names["events"])
        self.events = DynamoDBEventStore(dynamodb, names["events"])

        def build(name: str, generation: int) -> Projection:
            found = registration(name)
            store = DynamoDBReadStore(self.projection_client, names[found.table.key])
            return found.build(store, events, generation)

        control_table = DynamoDBReadStore(self.projection_client, names["projections_control"])
        self.projections = [LiveProjection(name, ControlStore(control_table), build) for name in NAMES]
        self.projector = Projector(self.projections, ParkingLot(control_table), now=lambda: "now")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = dynamodb.describe_table(TableName=names["events"])["Table"]["LatestStreamArn"]
        # One reader of the stream for every read model, as the stack has.
        self.pollers = [
            StreamPoller(
                f"projector-{uuid.uuid4().hex[:6]}",
                streams_client=streams,
                stream_arn=arn,
                handler=handler_for(self.projector),
                checkpoints=InMemoryCheckpointStore(),
                settings=PollerSettings(batch_size=100),
            )
        ]

    def drain(self) -> None:
        for poller in self.pollers:
            poller.drain(timeout=30)

    def log(self) -> list[Any]:
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        streams = {item["stream_id"]["S"] for item in scan_all(client, TableName=self.names["events"])}
        return [e for s in sorted(streams) for e in envelopes_of(self.events.read_commits(s))]


@pytest.fixture
def system(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    names = {}
    for spec in ALL_TABLES:
        names[spec.key] = f"{spec.key}-{uuid.uuid4().hex[:6]}"
        dynamodb.create_table(**spec.create_table_request(names[spec.key]))
        monkeypatch.setenv(spec.env_var, names[spec.key])
    composition.use(None)
    yield System(dynamodb, names)
    composition.use(None)


def call(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    target = queries if method == "GET" else commands
    response = target.lambda_handler(http_event(method, path, **kwargs), FakeLambdaContext())
    return response["statusCode"], response["headers"], json.loads(response["body"])


ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}


def without_revision(row: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (row or {}).items() if k != "revision"}


def realistic_mix(rng: random.Random, orders: int) -> list[str]:
    """Customers place orders and add items; operators receive stock, ship and cancel some."""
    placed = []
    for product in ("sku-1", "sku-2", "sku-3", "sku-4"):
        call("POST", f"/inventory/{product}/stock", body={"quantity": 100}, user="op", operator=True)
        call(
            "PUT", f"/inventory/{product}/reorder-level", body={"reorder_level": 10}, user="op", operator=True
        )
    for n in range(orders):
        customer = f"customer-{n % 5}"
        items = [
            {
                "product_id": f"sku-{rng.randint(1, 4)}",
                "quantity": rng.randint(1, 3),
                "unit_price": rng.choice(["9.99", "12.50"]),
            }
            for _ in range(rng.randint(1, 3))
        ]
        status, _, body = call(
            "POST", "/orders", body={"items": items, "shipping_address": ADDRESS}, user=customer
        )
        assert status == 201
        order_id = body["order_id"]
        placed.append(order_id)
        if rng.random() < 0.4:
            item = {"product_id": "sku-2", "quantity": 1, "unit_price": "3.00"}
            assert call("POST", f"/orders/{order_id}/items", body=item, user=customer)[0] == 200
        fate = rng.random()
        if fate < 0.3:
            assert (
                call(
                    "POST",
                    f"/orders/{order_id}/ship",
                    body={"tracking_number": f"T{n}"},
                    user="op",
                    operator=True,
                )[0]
                == 200
            )
        elif fate < 0.45:
            assert (
                call("POST", f"/orders/{order_id}/cancel", body={"reason": "changed mind"}, user=customer)[0]
                == 200
            )
    return placed


def test_read_models_on_dynamodb_equal_a_clean_fold_and_coalesce_writes(system: System) -> None:
    rng = random.Random(3)
    realistic_mix(rng, orders=40)
    system.counter.reset()

    system.drain()

    log = system.log()
    records = len({(e.stream_id, e.command_id) for e in log})  # one stream record per commit
    models = composition.root().read_models
    for order_id, expected in oracle.order_views(log).items():
        view = models.orders.get(order_id)
        assert view is not None and view.to_json() == expected
    for day, expected in oracle.daily_sales(log).items():
        assert {k: v for k, v in (models.sales.get(day) or {}).items() if k != "revision"} == expected
    for product, expected in oracle.inventory(log).items():
        assert without_revision(models.inventory.get(product)) == expected
    for customer, expected in oracle.customer_summaries(log).items():
        assert without_revision(models.summaries.get(customer)) == expected
    for product, expected in oracle.product_sales(log).items():
        assert without_revision(models.product_sales.get(product)) == expected

    writes = sum(system.counter.calls[name] for name in WRITES)
    naive = len(log) * len(NAMES)  # one update per event in each projection
    per_100 = writes * 100 / records
    print(
        f"\n{records} stream records, {len(log)} events: {writes} projection writes "
        f"({per_100:.0f} per 100 records); naive one-update-per-event: "
        f"{naive * 100 / records:.0f} per 100 records"
    )
    assert writes < naive


def test_the_query_api_answers_from_the_views(system: System) -> None:
    rng = random.Random(5)
    realistic_mix(rng, orders=6)
    status, _, body = call(
        "POST",
        "/orders",
        user="alice",
        body={
            "items": [{"product_id": "sku-9", "quantity": 2, "unit_price": "5.00"}],
            "shipping_address": ADDRESS,
        },
    )
    order_id = body["order_id"]
    system.drain()

    # The owner sees the order with its version; others see nothing
    status, headers, view = call("GET", f"/orders/{order_id}", user="alice", query={"min_version": "3"})
    assert (status, view["version"], view["total_amount"], headers["ETag"]) == (200, 3, "10.00", '"3"')
    assert call("GET", f"/orders/{order_id}", user="mallory")[0] == 404
    assert call("GET", f"/orders/{order_id}", user="op", operator=True)[0] == 200

    # Lists page newest first; a customer cannot list another's orders
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, _, page = call("GET", "/customers/customer-0/orders", user="op", operator=True, query=query)
        assert status == 200
        seen += [o["placed_at"] for o in page["orders"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 2  # customers 0..4 over 6 orders
    assert call("GET", "/customers/customer-0/orders", user="customer-1")[0] == 404
    assert [o["order_id"] for o in call("GET", "/customers/me/orders", user="alice")[2]["orders"]] == [
        order_id
    ]
    assert call("GET", "/customers/me/orders", user="alice", query={"limit": "0"})[0] == 422
    assert call("GET", "/customers/me/orders", user="alice", query={"cursor": "bogus"})[0] == 422

    # Operators read sales and stock; customers may not
    today = view["placed_at"][:10]
    status, _, day = call("GET", f"/analytics/sales/{today}", user="op", operator=True)
    assert status == 200 and day["total_orders"] >= 1 and day["date"] == today
    assert call("GET", f"/analytics/sales/{today}", user="alice")[0] == 403
    assert call("GET", "/analytics/sales/2026-02-30", user="op", operator=True)[0] == 422
    assert call("GET", "/analytics/sales/1999-01-01", user="op", operator=True)[0] == 404
    status, _, stock = call("GET", "/inventory/sku-9", user="op", operator=True)
    assert (status, stock["reserved_quantity"], stock["available_quantity"], stock["needs_reorder"]) == (
        200,
        2,
        -2,
        True,
    )
    assert call("GET", "/inventory/unknown-sku", user="op", operator=True)[0] == 404


def test_a_view_behind_the_asked_version_answers_503_after_a_bounded_wait(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orders_core.queries.orders.MAX_WAIT_SECONDS", 0.3)
    _, _, body = call(
        "POST",
        "/orders",
        user="alice",
        body={
            "items": [{"product_id": "sku-1", "quantity": 1, "unit_price": "1.00"}],
            "shipping_address": ADDRESS,
        },
    )
    # Nothing delivered yet: the view does not have the order
    status, headers, problem = call(
        "GET", f"/orders/{body['order_id']}", user="alice", query={"min_version": "3"}
    )
    assert status == 503 and headers["Retry-After"] == "1" and "not visible yet" in problem["detail"]
    assert call("GET", f"/orders/{body['order_id']}", user="alice")[0] == 404
    system.drain()
    assert call("GET", f"/orders/{body['order_id']}", user="alice", query={"min_version": "3"})[0] == 200
    assert EVENTS.key in system.names
