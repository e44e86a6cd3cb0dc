"""Hand-written bad input against `orders serve`: each request gets a clear 4xx and writes nothing.

"Clear" means: application/problem+json whose `status` is the HTTP status and whose `detail` says
what is wrong (naming the field where there is one), or, for what API Gateway itself answers
(401, 404 of an unknown route, 413 over its body limit), its JSON `{"message"}`.
"Writes nothing" is checked on the events table itself: its commit count before and after each request
(rebuild markers left out: see `count_commits`; no case here starts a rebuild).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.reliability import figures
from tests.reliability.api_client import Reply, call
from tests.reliability.cluster import Cluster
from tests.reliability.log import count_commits
from tests.reliability.workload import ADDRESS, order_body

SECTION = "4. Bad input (hand-written)"
MIB = 1024 * 1024
ITEM = {"product_id": "sku-1", "quantity": 1, "unit_price": "1.00"}
_tally: Counter[str] = Counter()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # "{order}" is alice's order, "{product}" an existing product
    status: int
    body: Any = None
    raw: bytes | None = None
    operator: bool = False
    content_type: str | None = "application/json"
    headers: dict[str, str | bytes] = field(default_factory=dict)
    field: str | None = None  # the field the problem must name


def _item(**changes: Any) -> dict[str, Any]:
    return {**ITEM, **changes}


def _raw_item(quantity: str = "1", price: str = '"1.00"') -> bytes:
    return f'{{"product_id": "sku-1", "quantity": {quantity}, "unit_price": {price}}}'.encode()


ITEMS = "/orders/{order}/items"
STOCK = "/inventory/{product}/stock"
LEVEL = "/inventory/{product}/reorder-level"

CASES = [
    # -- not JSON, or not what the route takes
    Case("malformed JSON", "POST", "/orders", 422, raw=b'{"items": [', field="body"),
    Case(
        "JSON cut short inside a string",
        "POST",
        ITEMS,
        422,
        raw=b'{"product_id": "sku-1", "quantity": 1, "unit_pr',
    ),
    Case(
        "trailing comma",
        "POST",
        ITEMS,
        422,
        raw=b'{"product_id": "sku-1", "quantity": 1, "unit_price": "1.00",}',
    ),
    Case("body is JSON null", "POST", "/orders", 422, raw=b"null"),
    Case("body is a JSON array", "POST", "/orders", 422, raw=b"[]"),
    Case("empty body", "POST", "/orders", 422, raw=b""),
    Case("UTF-8 byte order mark", "POST", ITEMS, 422, raw=b"\xef\xbb\xbf" + json.dumps(ITEM).encode()),
    Case(
        "text/plain",
        "POST",
        "/orders",
        415,
        raw=json.dumps(order_body("sku-1")).encode(),
        content_type="text/plain",
    ),
    Case("no Content-Type", "POST", ITEMS, 415, raw=json.dumps(ITEM).encode(), content_type=None),
    Case(
        "form-encoded",
        "POST",
        STOCK,
        415,
        raw=b"quantity=5",
        operator=True,
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "XML",
        "PUT",
        LEVEL,
        415,
        raw=b"<reorder_level>5</reorder_level>",
        operator=True,
        content_type="application/xml",
    ),
    # -- size and depth
    Case("body over the 1 MiB limit", "POST", "/orders", 413, raw=b'{"x": "' + b"a" * MIB + b'"}'),
    Case(
        "a 900 KB address line",
        "POST",
        "/orders",
        422,
        body={**order_body("sku-1"), "shipping_address": {**ADDRESS, "line1": "a" * 900_000}},
        field="shipping_address.line1",
    ),
    Case(
        "1,001 items",
        "POST",
        "/orders",
        422,
        body={**order_body("sku-1"), "items": [ITEM] * 1001},
        field="items",
    ),
    Case(
        "201 items (the per-order limit is 200)",
        "POST",
        "/orders",
        422,
        body={**order_body("sku-1"), "items": [ITEM] * 201},
        field="items",
    ),
    Case("a 500-character product id", "POST", ITEMS, 422, body=_item(product_id="p" * 500)),
    # -- numbers
    Case("39-digit quantity", "POST", ITEMS, 422, raw=_raw_item(quantity="9" * 39), field="item.quantity"),
    Case(
        "39-digit stock quantity",
        "POST",
        STOCK,
        422,
        raw=b'{"quantity": ' + b"9" * 39 + b"}",
        operator=True,
        field="quantity",
    ),
    Case(
        "39-digit reorder level",
        "PUT",
        LEVEL,
        422,
        raw=b'{"reorder_level": ' + b"9" * 39 + b"}",
        operator=True,
        field="reorder_level",
    ),
    Case("39-digit price", "POST", ITEMS, 422, body=_item(unit_price="9" * 39), field="unit_price"),
    Case(
        "1e400 (infinity as a float)",
        "POST",
        STOCK,
        422,
        raw=b'{"quantity": 1e400}',
        operator=True,
        field="quantity",
    ),
    Case("NaN", "POST", STOCK, 422, raw=b'{"quantity": NaN}', operator=True, field="quantity"),
    Case("negative quantity", "POST", ITEMS, 422, body=_item(quantity=-1), field="item.quantity"),
    Case("zero quantity", "POST", ITEMS, 422, body=_item(quantity=0), field="item.quantity"),
    Case("fractional quantity", "POST", ITEMS, 422, body=_item(quantity=1.5), field="quantity"),
    Case("quantity 2.0", "POST", ITEMS, 422, raw=_raw_item(quantity="2.0"), field="quantity"),
    Case("quantity as a string", "POST", ITEMS, 422, body=_item(quantity="2"), field="quantity"),
    Case(
        "quantity in full-width digits",
        "POST",
        STOCK,
        422,
        body={"quantity": "１２"},
        operator=True,
        field="quantity",
    ),
    Case("negative stock", "POST", STOCK, 422, body={"quantity": -5}, operator=True, field="quantity"),
    Case(
        "price with 3 decimals", "POST", ITEMS, 422, body=_item(unit_price="12.505"), field="item.unit_price"
    ),
    Case("negative price", "POST", ITEMS, 422, body=_item(unit_price="-1.00"), field="item.unit_price"),
    Case(
        "price over the maximum",
        "POST",
        ITEMS,
        422,
        body=_item(unit_price="1000000.01"),
        field="item.unit_price",
    ),
    Case(
        "price as a JSON number (float)", "POST", ITEMS, 422, raw=_raw_item(price="12.5"), field="unit_price"
    ),
    Case("price as a JSON integer", "POST", ITEMS, 422, raw=_raw_item(price="12"), field="unit_price"),
    Case("price in exponent notation", "POST", ITEMS, 422, body=_item(unit_price="1e3"), field="unit_price"),
    Case("price with spaces", "POST", ITEMS, 422, body=_item(unit_price=" 12.50"), field="unit_price"),
    # -- shape
    Case("unknown top-level field", "POST", ITEMS, 422, body=_item(discount="5"), field="discount"),
    Case(
        "unknown nested field",
        "POST",
        "/orders",
        422,
        body={**order_body("sku-1"), "shipping_address": {**ADDRESS, "floor": 3}},
        field="shipping_address.floor",
    ),
    Case("missing field", "POST", "/orders", 422, body={"items": [ITEM]}, field="shipping_address"),
    Case(
        "items is an object",
        "POST",
        "/orders",
        422,
        body={**order_body("sku-1"), "items": ITEM},
        field="items",
    ),
    Case(
        "order_id that is not a UUID",
        "POST",
        "/orders",
        422,
        body={**order_body("sku-1"), "order_id": "../../x"},
        field="order_id",
    ),
    Case("empty cancel reason", "POST", "/orders/{order}/cancel", 422, body={"reason": "  "}, field="reason"),
    # -- unicode
    Case("non-ASCII product id", "POST", ITEMS, 422, body=_item(product_id="café"), field="item.product_id"),
    Case(
        "lone surrogate in the address",
        "POST",
        "/orders",
        422,
        raw=json.dumps(order_body("sku-1")).replace("Amsterdam", "\\udfff").encode(),
        field="shipping_address.city",
    ),
    Case(
        "right-to-left override in a product id",
        "POST",
        STOCK.replace("{product}", "sku-%E2%80%AE1"),
        422,
        body={"quantity": 1},
        operator=True,
        field="product_id",
    ),
    # -- ids in the path
    Case("path traversal in an order id", "POST", "/orders/..%2F..%2Fadmin/items", 404, body=ITEM),
    Case("dot segments", "POST", "/orders/../orders/items", 404, body=ITEM),
    Case("SQL in an order id", "POST", "/orders/'%20OR%201=1--/cancel", 404, body={"reason": "x"}),
    Case(
        "an order id with an encoded slash after it", "POST", "/orders/{order}%2Fcancel/items", 404, body=ITEM
    ),
    Case("NUL after an order id", "POST", "/orders/{order}%00/items", 404, body=ITEM),
    Case("a 5,000-character order id", "POST", "/orders/" + "a" * 5000 + "/items", 404, body=ITEM),
    Case(
        "path traversal in a product id",
        "POST",
        "/inventory/..%2F..%2Fetc%2Fpasswd/stock",
        422,
        body={"quantity": 1},
        operator=True,
        field="product_id",
    ),
    Case(
        "slash in a product id",
        "PUT",
        "/inventory/a%2Fb/reorder-level",
        422,
        body={"reorder_level": 1},
        operator=True,
        field="product_id",
    ),
    Case(
        "NUL in a product id",
        "POST",
        "/inventory/sku%00/stock",
        422,
        body={"quantity": 1},
        operator=True,
        field="product_id",
    ),
    Case(
        "template injection in a product id",
        "POST",
        "/inventory/%24%7Bjndi%3Aldap%3A%2F%2Fx%7D/stock",
        422,
        body={"quantity": 1},
        operator=True,
        field="product_id",
    ),
    Case(
        "path traversal in a product id to read",
        "GET",
        "/analytics/products/..%2F..%2Fsales%2F2026-01-01",
        422,
        operator=True,
        field="product_id",
    ),
    Case("path traversal in a query id", "GET", "/orders/..%2Fcustomers%2Fme", 404),
    Case("another customer's list through traversal", "GET", "/customers/..%2Fbob/orders", 404),
    # -- headers and query strings
    Case(
        "non-ASCII Idempotency-Key",
        "POST",
        ITEMS,
        422,
        body=ITEM,
        headers={"Idempotency-Key": "ключ".encode()},
        field="Idempotency-Key",
    ),
    Case(
        "300-character Idempotency-Key",
        "POST",
        ITEMS,
        422,
        body=ITEM,
        headers={"Idempotency-Key": "k" * 300},
        field="Idempotency-Key",
    ),
    Case(
        "If-Match that is not a version",
        "POST",
        ITEMS,
        422,
        body=ITEM,
        headers={"If-Match": "abc"},
        field="If-Match",
    ),
    Case("39-digit min_version", "GET", "/orders/{order}?min_version=" + "9" * 39, 422, field="min_version"),
    Case("negative at_version", "GET", "/orders/{order}?at_version=-1", 422, field="at_version"),
    Case("NUL as as_of", "GET", "/orders/{order}?as_of=%00", 422, field="as_of"),
    Case("limit of 26 digits", "GET", "/customers/me/orders?limit=" + "9" * 26, 422, field="limit"),
    Case("forged cursor", "GET", "/customers/me/orders?cursor=%FF%FE", 422, field="cursor"),
    Case("impossible date", "GET", "/analytics/sales/2026-13-45", 422, operator=True, field="date"),
    Case(
        "date in Arabic-Indic digits",
        "GET",
        "/analytics/sales/%D9%A2%D9%A0%D9%A2%D9%A6-01-01",
        422,
        operator=True,
        field="date",
    ),
    # -- bodies the JSON decoder itself chokes on (they crashed the functions with 500 until 41a18cb)
    Case("1,000 nested arrays", "POST", "/orders", 422, raw=b"[" * 1000 + b"]" * 1000, field="body"),
    Case(
        "1,000 nested objects in a field",
        "POST",
        ITEMS,
        422,
        raw=b'{"product_id": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001,
        field="body",
    ),
    Case(
        "integer of 5,000 digits",
        "POST",
        STOCK,
        422,
        raw=b'{"quantity": ' + b"9" * 5000 + b"}",
        operator=True,
        field="body",
    ),
    Case("body that is not UTF-8", "POST", "/orders", 422, raw=b'\xff\xfe{"items": []}', field="body"),
]


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    order: str
    product: str
    customer: str
    operator: str

    @property
    def url(self) -> str:
        return self.cluster.urls[0]


@pytest.fixture(scope="module")
def target(api_server: Cluster) -> Iterator[Target]:
    alice = api_server.token("bad-input-alice")
    operator = api_server.token("bad-input-operator", operator=True)
    placed = call(api_server.urls[0], "POST", "/orders", body=order_body("sku-1"), token=alice)
    assert placed.status == 201
    product = f"bad-input-{uuid.uuid4().hex[:6]}"
    assert (
        call(
            api_server.urls[0], "POST", f"/inventory/{product}/stock", body={"quantity": 1}, token=operator
        ).status
        == 200
    )
    found = Target(api_server, placed.json["order_id"], product, alice, operator)
    yield found
    # Nothing of all that changed the order: it is still at the version its placement gave it
    history = call(found.url, "GET", f"/orders/{found.order}/events", token=alice)
    assert history.status == 200 and history.json["version"] == 3


def assert_clear(reply: Reply, status: int, field_name: str | None = None) -> None:
    assert reply.status == status, reply.raw[:500]
    if reply.content_type == "application/problem+json":
        problem = reply.json
        assert problem["status"] == status and problem["title"] and problem["detail"], problem
        if field_name is not None:
            fields = [error["field"] for error in problem.get("errors", [])]
            assert field_name in fields, (field_name, problem)
    else:
        # Answered by API Gateway itself, before any function ran
        assert status in (401, 404, 413) and reply.content_type == "application/json", reply.raw[:500]
        assert set(reply.json) == {"message"}


def _send(target: Target, case: Case) -> Reply:
    path = case.path.format(order=target.order, product=target.product) if "{" in case.path else case.path
    return call(
        target.url,
        case.method,
        path,
        body=case.body,
        raw=case.raw,
        token=target.operator if case.operator else target.customer,
        headers=case.headers,
        content_type=case.content_type,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(target: Target, case: Case) -> None:
    client = target.cluster.dynamodb()
    before = count_commits(client)
    reply = _send(target, case)
    written = count_commits(client) - before
    _tally["requests"] += 1
    _tally[f"{reply.status // 100}xx"] += 1
    _tally["clear"] += reply.status == case.status
    _tally["wrote something"] += written != 0
    figures.record(
        SECTION,
        "requests / answered with the expected 4xx / 5xx / wrote something",
        f"{_tally['requests']} / {_tally['clear']} / {_tally['5xx']} / {_tally['wrote something']}",
    )
    assert written == 0, f"{case.name} wrote {written} commit(s)"
    assert_clear(reply, case.status, case.field)


def test_unicode_text_is_kept_exactly(target: Target) -> None:
    # Free text may be any Unicode: emoji, right-to-left scripts, combining marks, CJK
    address = {
        "line1": "Keizersgracht 1 🏠",
        "city": "ירושלים",
        "postal_code": "e\u0301-1011",
        "country": "日本",
    }
    body = {
        "items": [{"product_id": "sku-1", "quantity": 1, "unit_price": "1.00"}],
        "shipping_address": address,
    }
    client = target.cluster.dynamodb()
    before = count_commits(client)
    placed = call(target.url, "POST", "/orders", body=body, token=target.customer)
    assert placed.status == 201
    order_id = placed.json["order_id"]
    cancelled = call(
        target.url,
        "POST",
        f"/orders/{order_id}/cancel",
        body={"reason": "返品 🙏 \u202e"},
        token=target.customer,
    )
    assert cancelled.status == 200
    assert count_commits(client) - before == 2

    history = call(target.url, "GET", f"/orders/{order_id}/events", token=target.customer).json
    placed_event = next(e for e in history["events"] if e["type"] == "OrderPlaced")
    cancel_event = next(e for e in history["events"] if e["type"] == "OrderCancelled")
    assert placed_event["data"]["shipping_address"] == address
    assert cancel_event["data"]["reason"] == "返品 🙏 \u202e"
