"""Live updates from the components, without LocalSystem: moto (server mode), the projector's
poller, the LiveServer (WebSocket + @connections API), the LiveFeed's pollers on the read-model
tables' streams running the notifier function's handler, and real WebSocket clients."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from orders_core import composition
from orders_core.domain.inventory import PRODUCT, ReceiveStock, SetReorderLevel
from orders_core.domain.orders import ORDER, AddItem, CancelOrder, OrderLine, PlaceOrder, ShipOrder
from orders_core.live.apigateway import ApiGatewayPusher, management_client
from orders_core.live.port import PushOutcome
from orders_core.tables import ALL_TABLES, EVENTS
from orders_local.live_feed import LiveFeed
from orders_local.live_server import LiveServer
from orders_local.moto_server import install_dynamodb_write_lock, start_moto
from orders_local.projection_workers import ProjectionWorkers
from orders_local.tokens import issue_token
from tests.support.live import LiveClient, has_order_version
from tests.support.orders import ADDRESS, context, place_order

SECRET = "live-feed-test-secret-of-at-least-32-bytes"
PREFIX = "live"


@dataclass(frozen=True)
class Viewer:
    user_id: str
    is_operator: bool = False


@dataclass
class Stack:
    server: LiveServer
    feed: LiveFeed

    def url(self, subject: str, *, operator: bool = False, ttl: int = 600) -> str:
        return self.server.url_with_token(
            issue_token(subject, operator=operator, secret=SECRET, ttl_seconds=ttl)
        )

    def execute(
        self, aggregate: Any, aggregate_id: str, command: Any, *, new: bool = False
    ) -> tuple[int, str]:
        ctx = context()
        result = composition.root().command_service.execute(
            aggregate, aggregate_id, command, ctx, expect_new=new
        )
        return result.version, ctx.correlation_id


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    monkeypatch = pytest.MonkeyPatch()
    install_dynamodb_write_lock()
    moto, endpoint = start_moto(0)
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PROJECTION_CONTROL_TTL_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    names = {}
    for spec in ALL_TABLES:
        names[spec.key] = spec.local_name(PREFIX)
        dynamodb.create_table(**spec.create_table_request(names[spec.key]))
        monkeypatch.setenv(spec.env_var, names[spec.key])
    server = LiveServer(secret=SECRET, port=0).start()
    monkeypatch.setenv("LIVE_CONNECTIONS_ENDPOINT", server.management_url)
    composition.use(composition.Root(composition.Settings.from_environ()))
    workers = ProjectionWorkers(
        endpoint_url=endpoint,
        events_table=names[EVENTS.key],
        checkpoint_table=f"{PREFIX}-checkpoints",
        failure_queue=f"{PREFIX}-projection-failures",
    )
    feed = LiveFeed(
        endpoint_url=endpoint,
        table_names=names,
        checkpoint_table=f"{PREFIX}-checkpoints",
        failure_queue=f"{PREFIX}-live-failures",
    )
    try:
        workers.start()
        feed.start()
        yield Stack(server, feed)
    finally:
        feed.stop()
        workers.stop()
        server.stop()
        composition.use(None)
        moto.stop()
        monkeypatch.undo()


def test_each_customer_hears_of_every_version_of_their_own_orders_and_operators_of_low_stock(
    stack: Stack,
) -> None:
    # Given two customers and an operator connected, and a product with 10 in stock, reorder at 5
    alice, bob = LiveClient(stack.url("alice")), LiveClient(stack.url("bob"))
    olga = LiveClient(stack.url("olga", operator=True))
    sku = f"sku-{uuid.uuid4().hex[:6]}"
    stack.execute(PRODUCT, sku, ReceiveStock(sku, 10), new=True)
    stack.execute(PRODUCT, sku, SetReorderLevel(sku, 5))
    other = f"sku-{uuid.uuid4().hex[:6]}"
    stack.execute(PRODUCT, other, ReceiveStock(other, 10), new=True)
    a_order, b_order = str(uuid.uuid4()), str(uuid.uuid4())
    expected: dict[str, dict[tuple[str, int], str]] = {"alice": {}, "bob": {}}

    def run(who: str, order_id: str, command: Any, *, new: bool = False) -> None:
        version, correlation_id = stack.execute(ORDER, order_id, command, new=new)
        expected[who][(order_id, version)] = correlation_id
        client = alice if who == "alice" else bob
        client.wait_for(has_order_version(order_id, version))

    # When they place, change, ship and cancel orders (each waits for its push, as a UI would)
    run(
        "alice",
        a_order,
        PlaceOrder(a_order, "alice", (OrderLine(sku, 3, Decimal("2.50")),), ADDRESS),
        new=True,
    )
    run("bob", b_order, PlaceOrder(b_order, "bob", (OrderLine(sku, 2, Decimal("2.50")),), ADDRESS), new=True)
    run("alice", a_order, AddItem(a_order, "alice", OrderLine(other, 1, Decimal("1.00"))))
    run("alice", a_order, ShipOrder(a_order, "TRACK-1"))
    run("bob", b_order, CancelOrder(b_order, "bob", False, "changed my mind"))

    # Then each received exactly its own versions, each with the command's correlation id
    for who, client in (("alice", alice), ("bob", bob)):
        time.sleep(0.5)  # anything else would have arrived by now
        received = {(m["order_id"], m["version"]): m for m in client.messages if m["type"] == "order.updated"}
        assert set(received) == set(expected[who]), who
        assert {key: m["correlation_id"] for key, m in received.items()} == expected[who]
        assert all(m["type"] == "order.updated" for m in client.messages), "customers hear of no stock"
    # And the operator heard once that the product ran low: 10 - 3 - 2 = 5 available, reorder at 5
    low = olga.wait_for(lambda ms: any(m["type"] == "inventory.low" for m in ms))
    assert [m for m in low if m["type"] == "inventory.low"] == [
        {"type": "inventory.low", "product_id": sku, "available_quantity": 5, "reorder_level": 5}
    ]
    assert olga.order_versions() == set()
    for client in (alice, bob, olga):
        client.close()


def test_a_client_that_reconnects_recovers_with_one_read(stack: Stack) -> None:
    # Given alice heard of her order's first version, then went away
    alice = LiveClient(stack.url("alice"))
    order_id = str(uuid.uuid4())
    placed, _ = stack.execute(ORDER, order_id, place_order(order_id, "alice"), new=True)
    alice.wait_for(has_order_version(order_id, placed))
    alice.close()
    # When the order changes while she is away, and she comes back
    shipped, _ = stack.execute(ORDER, order_id, ShipOrder(order_id, "TRACK-2"))
    stack.feed.drain()
    back = LiveClient(stack.url("alice"))
    # Then one read shows what she missed (at least the last version pushed to anyone)
    view = composition.root().order_queries.order(order_id, Viewer("alice"), min_version=shipped)
    assert (view.version, view.status) == (shipped, "shipped")
    # And later changes reach the new connection
    another = str(uuid.uuid4())
    version, _ = stack.execute(ORDER, another, place_order(another, "alice"), new=True)
    back.wait_for(has_order_version(another, version))
    back.close()


BAD_TOKENS = {
    "missing": None,
    "malformed": "not-a-token",
    "forged": issue_token("alice", operator=False, secret="another-secret-of-at-least-32-bytes!!"),
    "expired": issue_token(
        "alice", operator=False, secret=SECRET, ttl_seconds=60, now=datetime.now(UTC) - timedelta(hours=1)
    ),
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_bad_token_is_refused_at_the_handshake_with_401_and_nothing_else(
    stack: Stack, token: str | None
) -> None:
    url = stack.server.url if token is None else stack.server.url_with_token(token)
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=5, proxy=None):
        pass
    assert refused.value.response.status_code == 401
    assert stack.server.open_connections() == []


def test_a_push_to_a_gone_connection_answers_gone(stack: Stack) -> None:
    pusher = ApiGatewayPusher(management_client(stack.server.management_url))
    assert pusher.push("no-such-connection", b'{"type":"x"}') is PushOutcome.GONE
