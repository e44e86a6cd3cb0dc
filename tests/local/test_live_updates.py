"""Live updates end to end through `orders serve`'s LocalSystem: two customers and an operator on
real WebSocket clients, commands over HTTP (docs/live-updates.md)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from orders_local.system import LocalSystem
from orders_local.tokens import issue_token
from tests.support.live import LiveClient, has_order_version

SECRET = "live-updates-test-secret-of-32-bytes-or-more"
ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}

# Until LocalSystem takes live_port (wiring in local/orders_local/system.py), this module has
# nothing to run against; tests/local/test_live_feed.py covers the same components meanwhile.


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, who: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        token = issue_token(who, operator=who == "operator", secret=SECRET)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with self._opener.open(request, timeout=15) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    with LocalSystem(port=0, live_port=0, workers=2, secret=SECRET) as running:
        yield running


def live(system: LocalSystem, who: str) -> LiveClient:
    token = issue_token(who, operator=who == "operator", secret=SECRET)
    return LiveClient(f"{system.live_url}?token={token}")


def test_customers_hear_of_their_own_orders_and_the_operator_of_low_stock(system: LocalSystem) -> None:
    api = Api(system.url)
    alice, bob, operator = live(system, "alice"), live(system, "bob"), live(system, "operator")
    sku, other = f"sku-{uuid.uuid4().hex[:8]}", f"sku-{uuid.uuid4().hex[:8]}"
    for product, stock, level in ((sku, 10, 5), (other, 10, 0)):
        assert api.call("POST", f"/inventory/{product}/stock", "operator", {"quantity": stock})[0] == 200
        assert (
            api.call("PUT", f"/inventory/{product}/reorder-level", "operator", {"reorder_level": level})[0]
            == 200
        )
    sent: dict[str, dict[tuple[str, int], str]] = {"alice": {}, "bob": {}}
    clients = {"alice": alice, "bob": bob}

    def command(owner: str, method: str, path: str, who: str, body: Any) -> str:
        correlation_id = f"live-{uuid.uuid4().hex[:12]}"
        status, answer = api.call(method, path, who, body, X_Correlation_Id=correlation_id)
        assert status in (200, 201), answer
        assert answer["correlation_id"] == correlation_id
        order_id = answer["order_id"]
        sent[owner][(order_id, answer["version"])] = correlation_id
        clients[owner].wait_for(has_order_version(order_id, answer["version"]))
        return str(order_id)

    def item(product: str, quantity: int) -> dict[str, Any]:
        return {"product_id": product, "quantity": quantity, "unit_price": "2.50"}

    # When each places an order and changes it, and the operator ships one
    mine = command(
        "alice", "POST", "/orders", "alice", {"items": [item(sku, 3)], "shipping_address": ADDRESS}
    )
    theirs = command("bob", "POST", "/orders", "bob", {"items": [item(sku, 2)], "shipping_address": ADDRESS})
    command("alice", "POST", f"/orders/{mine}/items", "alice", item(other, 1))
    command("alice", "POST", f"/orders/{mine}/ship", "operator", {"tracking_number": "TRACK-1"})
    command("bob", "POST", f"/orders/{theirs}/cancel", "bob", {"reason": "changed my mind"})

    # Then each customer heard of every version of their own orders, and of nothing else
    time.sleep(0.5)  # anything more would have arrived by now
    for who, client in clients.items():
        assert all(m["type"] == "order.updated" for m in client.messages), who
        received = {(m["order_id"], m["version"]): m["correlation_id"] for m in client.messages}
        assert received == sent[who], who
        # Sent only once the view showed it: the version is there to read.
        for order_id, version in received:
            status, view = api.call("GET", f"/orders/{order_id}", who)
            assert status == 200 and view["version"] >= version
    # And the operator heard that the product ran low (10 - 3 - 2 = 5, the reorder level)
    heard = operator.wait_for(lambda ms: any(m.get("product_id") == sku for m in ms))
    assert [m for m in heard if m.get("product_id") == sku] == [
        {"type": "inventory.low", "product_id": sku, "available_quantity": 5, "reorder_level": 5}
    ]
    assert operator.order_versions() == set()
    for client in (alice, bob, operator):
        client.close()


def test_a_client_that_reconnects_misses_nothing_one_read_cannot_recover(system: LocalSystem) -> None:
    api = Api(system.url)
    alice = live(system, "alice")
    status, placed = api.call("POST", "/orders", "alice", {"items": [_item()], "shipping_address": ADDRESS})
    assert status == 201
    order_id = placed["order_id"]
    alice.wait_for(has_order_version(order_id, placed["version"]))
    alice.close()
    # While she is away the order changes twice
    api.call("POST", f"/orders/{order_id}/items", "alice", _item())
    status, shipped = api.call("POST", f"/orders/{order_id}/ship", "operator", {"tracking_number": "T-2"})
    assert status == 200
    # Back: one read shows the last version (pushed to nobody, since nobody was connected)
    back = live(system, "alice")
    status, view = api.call("GET", f"/orders/{order_id}?min_version={shipped['version']}", "alice")
    assert status == 200 and (view["version"], view["status"]) == (shipped["version"], "shipped")
    assert view["correlation_id"] == shipped["correlation_id"]
    back.close()


@pytest.mark.parametrize(
    "token", [None, "forged.token.value", issue_token("x", operator=False, secret="x" * 40)]
)
def test_a_bad_token_gets_401_at_the_handshake(system: LocalSystem, token: str | None) -> None:
    url = system.live_url + (f"?token={token}" if token else "")
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=5, proxy=None):
        pass
    assert refused.value.response.status_code == 401


def _item() -> dict[str, Any]:
    return {"product_id": "sku-walk", "quantity": 1, "unit_price": "1.00"}
