"""`orders serve` as a user runs it: a separate process, real HTTP, the real handlers on moto."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ORDERS = str(Path(sys.executable).with_name("orders"))
SECRET = "end-to-end-secret-0123456789abcdef0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        ORDERS_LOCAL_JWT_SECRET=SECRET, HOME=str(tmp_path_factory.mktemp("home")), PYTHONUNBUFFERED="1"
    )
    port = _free_port()
    process = subprocess.Popen(
        [ORDERS, "serve", "--port", str(port), "--live-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.1)
    yield url, env
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    # Stopping cleanly on Ctrl-C is part of the contract with the user.
    assert process.returncode == 0, output
    assert url in output and "Stopped" in output


def token(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [ORDERS, "token", *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def request(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as reply:
            raw = reply.read()
            return reply.status, reply.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, error.headers, json.loads(raw) if raw else None


ORDER = {
    "items": [{"product_id": "sku-espresso", "quantity": 2, "unit_price": "12.50"}],
    "shipping_address": {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"},
}


def test_the_readme_walk_through_works_over_http(server: tuple[str, dict[str, str]]) -> None:
    api, env = server
    alice = {"Authorization": f"Bearer {token(env, '--customer', 'alice')}"}
    ops = {"Authorization": f"Bearer {token(env, '--operator')}"}

    # Place an order, then resend it with the same key: one order, the same answer
    status, headers, placed = request(
        f"{api}/orders", "POST", ORDER, {**alice, "Idempotency-Key": "e2e-1", "X-Correlation-Id": "e2e-trace"}
    )
    assert status == 201 and placed["version"] == 3 and headers["ETag"] == '"3"'
    assert headers["X-Correlation-Id"] == "e2e-trace"
    order = placed["order_id"]
    status, headers, again = request(f"{api}/orders", "POST", ORDER, {**alice, "Idempotency-Key": "e2e-1"})
    assert (status, again) == (201, placed) and headers["Idempotent-Replayed"] == "true"

    # Add an item under If-Match; the same precondition again is stale
    item = {"product_id": "sku-grinder", "quantity": 1, "unit_price": "89.00"}
    status, _, added = request(f"{api}/orders/{order}/items", "POST", item, {**alice, "If-Match": '"3"'})
    assert (status, added["version"]) == (200, 5)
    status, headers, stale = request(
        f"{api}/orders/{order}/items", "POST", item, {**alice, "If-Match": '"3"'}
    )
    assert status == 412 and headers["Content-Type"] == "application/problem+json" and "5" in stale["detail"]

    # Customers cannot ship; operators can
    assert request(f"{api}/orders/{order}/ship", "POST", {"tracking_number": "T-1"}, alice)[0] == 403
    assert request(f"{api}/orders/{order}/ship", "POST", {"tracking_number": "T-1"}, ops)[0] == 200

    # The history shows every event once, in order, with its correlation id
    status, _, history = request(f"{api}/orders/{order}/events", headers=alice)
    assert status == 200
    assert [e["type"] for e in history["events"]] == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentRequested",
        "ItemAdded",
        "InventoryReserved",
        "OrderShipped",
    ]
    assert history["events"][0]["correlation_id"] == "e2e-trace"
    assert [e["version"] for e in history["events"]] == [1, 2, 3, 4, 5, 6]

    # Another customer sees nothing; no token is 401
    bob = {"Authorization": f"Bearer {token(env, '--customer', 'bob')}"}
    assert request(f"{api}/orders/{order}/events", headers=bob)[0] == 404
    assert request(f"{api}/orders/{order}/events")[0] == 401


def test_browsers_get_cors_answers(server: tuple[str, dict[str, str]]) -> None:
    api, _ = server
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    status, headers, _ = request(f"{api}/orders", "OPTIONS", headers=preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "idempotency-key" in headers["Access-Control-Allow-Headers"]


def test_bad_input_over_http_is_a_clear_4xx(server: tuple[str, dict[str, str]]) -> None:
    api, env = server
    alice = {"Authorization": f"Bearer {token(env, '--customer', 'alice')}"}
    bad = {**ORDER, "items": [{"product_id": "sku-1", "quantity": 1, "unit_price": 12.5}]}
    status, headers, problem = request(f"{api}/orders", "POST", bad, alice)
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "items[0].unit_price"
    status, _, _ = request(f"{api}/no/such/route", headers=alice)
    assert status == 404


def test_queries_see_commands_within_about_a_second(server: tuple[str, dict[str, str]]) -> None:
    api, env = server
    carol = {"Authorization": f"Bearer {token(env, '--customer', 'carol')}"}
    ops = {"Authorization": f"Bearer {token(env, '--operator')}"}
    request(f"{api}/inventory/sku-tea/stock", "POST", {"quantity": 10}, ops)
    tea = {**ORDER, "items": [{"product_id": "sku-tea", "quantity": 3, "unit_price": "4.00"}]}
    _, _, placed = request(f"{api}/orders", "POST", tea, carol)
    started = time.monotonic()

    # The view catches up with the version the command returned, through a bounded wait
    status, headers, view = request(
        f"{api}/orders/{placed['order_id']}?min_version={placed['version']}", headers=carol
    )
    visible_after = time.monotonic() - started
    assert status == 200 and view["version"] == 3 and headers["ETag"] == '"3"'
    assert visible_after < 2.0, f"the view took {visible_after:.2f}s"
    assert view["total_amount"] == "12.00" and view["status"] == "placed"

    status, _, mine = request(f"{api}/customers/me/orders", headers=carol)
    assert status == 200 and [o["order_id"] for o in mine["orders"]] == [placed["order_id"]]

    day = view["placed_at"][:10]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, _, stock = request(f"{api}/inventory/sku-tea", headers=ops)
        if status == 200 and stock["reserved_quantity"] == 3:
            break
        time.sleep(0.1)
    assert (stock["on_hand"], stock["reserved_quantity"], stock["available_quantity"]) == (10, 3, 7)
    status, _, sales = request(f"{api}/analytics/sales/{day}", headers=ops)
    assert status == 200 and sales["total_orders"] >= 1
    assert any(p["product_id"] == "sku-tea" for p in sales["top_products"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, headers, tea_sales = request(f"{api}/analytics/products/sku-tea", headers=ops)
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200 and headers["ETag"] == f'"{tea_sales["revision"]}"'
    assert (tea_sales["units_sold"], tea_sales["revenue"], tea_sales["order_count"]) == (3, "12.00", 1)
    assert request(f"{api}/analytics/products/sku-tea", headers=carol)[0] == 403


def test_the_openapi_document_is_served(server: tuple[str, dict[str, str]]) -> None:
    api, _ = server
    status, _, document = request(f"{api}/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    assert "/orders/{order_id}/items" in document["paths"]


def test_an_operator_rebuilds_a_projection_from_the_command_line(server: tuple[str, dict[str, str]]) -> None:
    api, env = server
    dave = {"Authorization": f"Bearer {token(env, '--customer', 'dave')}"}
    _, _, placed = request(f"{api}/orders", "POST", ORDER, dave)

    # When an operator rebuilds the mobile summary, watching its progress
    rebuild = subprocess.run(
        [ORDERS, "rebuild", "customer_summary", "--api", api, "--timeout", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    # Then it ends well, showing its phases, and readers use the new generation
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    assert "Succeeded: generation 2 is active" in rebuild.stdout
    phases = {line.split()[0] for line in rebuild.stdout.splitlines() if " step " in line}
    assert len(phases) >= 2 and "done" in phases and "100%" in rebuild.stdout
    listing = subprocess.run(
        [ORDERS, "projections", "--api", api], env=env, capture_output=True, text=True, check=True
    )
    assert any(line.split()[:2] == ["customer_summary", "2"] for line in listing.stdout.splitlines())
    runs = subprocess.run(
        [ORDERS, "rebuilds", "--api", api], env=env, capture_output=True, text=True, check=True
    )
    assert "SUCCEEDED" in runs.stdout
    status, _, summary = request(f"{api}/customers/me/summary", headers=dave)
    assert (
        status == 200
        and summary["open_orders"] == [placed["order_id"]]
        and summary["lifetime_spend"] == "25.00"
    )


def test_operator_commands_explain_what_went_wrong(server: tuple[str, dict[str, str]]) -> None:
    api, env = server
    unknown = subprocess.run(
        [ORDERS, "rebuild", "nope", "--api", api], env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 1 and "unknown projection" in unknown.stderr
    down = subprocess.run(
        [ORDERS, "projections", "--api", "http://127.0.0.1:9"], env=env, capture_output=True, text=True
    )
    assert down.returncode == 1 and "orders serve" in down.stderr
