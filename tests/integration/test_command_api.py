"""The command and history API through the Lambda handlers, on DynamoDB (moto)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from command_api import handler as commands
from orders_core import composition
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from orders_core.tables import PROJECTIONS_CONTROL, READ_MODEL_TABLES
from query_api import handler as queries
from tests.support.apigw import FakeLambdaContext, http_event

ITEM = {"product_id": "sku-1", "quantity": 2, "unit_price": "12.50"}
ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}
ORDER = {"items": [ITEM], "shipping_address": ADDRESS}


@pytest.fixture
def table(dynamodb: Any, events_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # The handlers build their service from the environment, as in Lambda.
    monkeypatch.setenv("EVENTS_TABLE", events_table)
    for spec in (*READ_MODEL_TABLES, PROJECTIONS_CONTROL):
        monkeypatch.setenv(spec.env_var, f"unused-{spec.key}")  # these tests never read the views
    composition.use(None)
    yield events_table
    composition.use(None)


def call(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    target = queries if method == "GET" else commands
    response = target.lambda_handler(http_event(method, path, **kwargs), FakeLambdaContext())
    return response["statusCode"], response["headers"], json.loads(response["body"])


def commit_count(dynamodb: Any, table: str) -> int:
    return int(dynamodb.scan(TableName=table, Select="COUNT")["Count"])


def place(**kwargs: Any) -> str:
    status, _, body = call("POST", "/orders", body=ORDER, **kwargs)
    assert status == 201, body
    return str(body["order_id"])


def test_placing_an_order_answers_201_with_version_etag_location_and_correlation(
    table: str, dynamodb: Any
) -> None:
    status, headers, body = call("POST", "/orders", body=ORDER, headers={"X-Correlation-Id": "trace-123"})

    assert status == 201
    assert body["version"] == 3 and body["correlation_id"] == "trace-123"
    assert headers["ETag"] == '"3"'
    assert headers["Location"] == f"/orders/{body['order_id']}"
    assert headers["X-Correlation-Id"] == "trace-123"
    item = dynamodb.get_item(
        TableName=table, Key={"stream_id": {"S": f"order-{body['order_id']}"}, "version": {"N": "1"}}
    )
    assert item["Item"]["correlation_id"]["S"] == "trace-123"
    assert [e["type"] for e in json.loads(item["Item"]["events"]["S"])] == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentRequested",
    ]


def test_a_retried_post_with_the_same_idempotency_key_appends_nothing(table: str, dynamodb: Any) -> None:
    first = call("POST", "/orders", body=ORDER, headers={"Idempotency-Key": "retry-1"})
    composition.use(None)  # a cold instance answers the retry
    again = call("POST", "/orders", body=ORDER, headers={"Idempotency-Key": "retry-1"})

    assert first[0] == again[0] == 201
    assert again[2] == first[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert commit_count(dynamodb, table) == 1

    other = call(
        "POST", "/orders", body={**ORDER, "items": [ITEM, ITEM]}, headers={"Idempotency-Key": "retry-1"}
    )
    assert other[0] == 422 and other[2]["errors"][0]["field"] == "Idempotency-Key"
    assert commit_count(dynamodb, table) == 1


def test_a_client_chosen_order_id_makes_the_post_safe_to_resend(table: str, dynamodb: Any) -> None:
    order_id = str(uuid.uuid4())
    first = call("POST", "/orders", body={**ORDER, "order_id": order_id})
    again = call("POST", "/orders", body={**ORDER, "order_id": order_id})
    assert first[2] == again[2] and first[2]["order_id"] == order_id
    assert commit_count(dynamodb, table) == 1


def test_the_order_lifecycle_with_if_match(table: str) -> None:
    order_id = place()

    status, headers, body = call("POST", f"/orders/{order_id}/items", body=ITEM, headers={"If-Match": '"3"'})
    assert (status, body["version"], headers["ETag"]) == (200, 5, '"5"')

    status, headers, body = call("POST", f"/orders/{order_id}/items", body=ITEM, headers={"If-Match": '"3"'})
    assert status == 412 and headers["ETag"] == '"5"' and "version 5" in body["detail"]

    status, _, body = call("POST", f"/orders/{order_id}/items", body=ITEM, headers={"If-Match": "three"})
    assert status == 422 and body["errors"][0]["field"] == "If-Match"

    assert call("POST", f"/orders/{order_id}/ship", body={"tracking_number": "T1"})[0] == 403
    assert (
        call("POST", f"/orders/{order_id}/ship", body={"tracking_number": "T1"}, user="op", operator=True)[0]
        == 200
    )
    status, _, body = call("POST", f"/orders/{order_id}/cancel", body={"reason": "late"})
    assert status == 409 and "shipped" in body["detail"]


def test_other_customers_cannot_touch_or_see_an_order(table: str, dynamodb: Any) -> None:
    order_id = place()
    before = commit_count(dynamodb, table)

    assert call("POST", f"/orders/{order_id}/items", body=ITEM, user="mallory")[0] == 404
    assert call("POST", f"/orders/{order_id}/cancel", body={"reason": "x"}, user="mallory")[0] == 404
    status, _, body = call("GET", f"/orders/{order_id}/events", user="mallory")
    assert status == 404 and "customer_id" not in json.dumps(body)
    assert commit_count(dynamodb, table) == before

    assert (
        call("POST", f"/orders/{order_id}/cancel", body={"reason": "fraud"}, user="op", operator=True)[0]
        == 200
    )


def test_the_event_history_shows_versions_and_correlation(table: str) -> None:
    order_id = place(headers={"X-Correlation-Id": "c-1"})
    call("POST", f"/orders/{order_id}/items", body=ITEM, headers={"X-Correlation-Id": "c-2"})

    status, headers, body = call("GET", f"/orders/{order_id}/events")
    assert status == 200 and headers["ETag"] == '"5"'
    assert [(e["version"], e["type"], e["correlation_id"]) for e in body["events"]] == [
        (1, "OrderPlaced", "c-1"),
        (2, "InventoryReserved", "c-1"),
        (3, "PaymentRequested", "c-1"),
        (4, "ItemAdded", "c-2"),
        (5, "InventoryReserved", "c-2"),
    ]
    assert body["events"][0]["data"]["total_amount"] == "25.00"
    assert body["events"][3]["causation_id"] == body["events"][4]["command_id"]
    assert call("GET", f"/orders/{order_id}/events", user="op", operator=True)[0] == 200
    assert call("GET", "/orders/not-a-uuid/events")[0] == 404
    assert call("GET", f"/orders/{uuid.uuid4()}/events")[0] == 404


def test_inventory_commands_are_for_operators(table: str) -> None:
    assert call("POST", "/inventory/sku-1/stock", body={"quantity": 5})[0] == 403
    status, _, body = call("POST", "/inventory/sku-1/stock", body={"quantity": 5}, user="op", operator=True)
    assert (status, body["product_id"], body["version"]) == (200, "sku-1", 1)
    status, _, body = call(
        "PUT", "/inventory/sku-1/reorder-level", body={"reorder_level": 3}, user="op", operator=True
    )
    assert (status, body["version"]) == (200, 2)


BAD_BODIES = [
    ("malformed JSON", '{"items": [', "body"),
    ("float price", {**ORDER, "items": [{**ITEM, "unit_price": 12.5}]}, "items[0].unit_price"),
    ("three decimals", {**ORDER, "items": [{**ITEM, "unit_price": "1.005"}]}, "items[0].unit_price"),
    ("negative price", {**ORDER, "items": [{**ITEM, "unit_price": "-1.00"}]}, "items[0].unit_price"),
    ("zero quantity", {**ORDER, "items": [{**ITEM, "quantity": 0}]}, "items[0].quantity"),
    ("negative quantity", {**ORDER, "items": [{**ITEM, "quantity": -2}]}, "items[0].quantity"),
    ("fractional quantity", {**ORDER, "items": [{**ITEM, "quantity": 1.5}]}, "items[0].quantity"),
    ("string quantity", {**ORDER, "items": [{**ITEM, "quantity": "2"}]}, "items[0].quantity"),
    (
        "39-digit quantity",
        '{"items": [{"product_id": "a", "quantity": 123456789012345678901234567890123456789, '
        '"unit_price": "1.00"}], "shipping_address": ' + json.dumps(ADDRESS) + "}",
        "items[0].quantity",
    ),
    ("unknown field", {**ORDER, "coupon": "FREE"}, "coupon"),
    ("empty order", {**ORDER, "items": []}, "items"),
    ("missing address", {"items": [ITEM]}, "shipping_address"),
    ("bad order id", {**ORDER, "order_id": "../../etc"}, "order_id"),
    ("bad product id", {**ORDER, "items": [{**ITEM, "product_id": "a/b"}]}, "items[0].product_id"),
    ("not an object", "[1, 2]", "body"),
]


@pytest.mark.parametrize(("case", "payload", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_input_gets_422_naming_the_field_and_writes_nothing(
    table: str, dynamodb: Any, case: str, payload: Any, field: str
) -> None:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    status, headers, body = call("POST", "/orders", raw_body=raw)

    assert status == 422, body
    assert headers["Content-Type"] == "application/problem+json"
    assert body["detail"]
    assert field in [e["field"] for e in body["errors"]]
    assert commit_count(dynamodb, table) == 0


def test_a_body_that_is_not_json_gets_415(table: str, dynamodb: Any) -> None:
    status, _, body = call("POST", "/orders", raw_body="items=1", headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in body["detail"]
    assert commit_count(dynamodb, table) == 0


def test_a_request_without_identity_gets_401(table: str) -> None:
    assert call("POST", "/orders", body=ORDER, user=None)[0] == 401
    assert call("GET", f"/orders/{uuid.uuid4()}/events", user=None)[0] == 401


def test_a_commit_too_large_for_one_item_gets_413_and_writes_nothing(
    table: str, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API's own limits keep real orders far below 400 KB; shrink the limit to reach it.
    monkeypatch.setattr("orders_core.store.codec.MAX_COMMIT_BYTES", 1_000)
    status, _, body = call("POST", "/orders", body={**ORDER, "items": [ITEM] * 20})
    assert status == 413 and "limit" in body["detail"]
    assert commit_count(dynamodb, table) == 0


def test_handlers_can_share_an_injected_store(dynamodb: Any, events_table: str) -> None:
    events = InMemoryEventStore()
    reads = InMemoryReadStore()
    composition.use(
        composition.Root(composition.Settings(), event_store=events, read_store_for=lambda spec: reads)
    )
    try:
        order_id = place()
        assert call("GET", f"/orders/{order_id}/events")[2]["version"] == 3
        assert dynamodb.scan(TableName=events_table, Select="COUNT")["Count"] == 0
    finally:
        composition.use(None)


@pytest.mark.parametrize(
    ("case", "raw", "encoded", "message"),
    [
        ("not UTF-8", base64.b64encode(b'{"items": "\xff\xfe"}').decode(), True, "not UTF-8"),
        ("too deep", "[" * 100_000 + "]" * 100_000, False, "nests too deeply"),
        ("5,000-digit number", '{"items": [{"quantity": ' + "9" * 5000 + "}]}", False, "number too long"),
    ],
)
def test_bodies_the_json_decoder_cannot_read_get_422_and_write_nothing(
    table: str, dynamodb: Any, case: str, raw: str, encoded: bool, message: str
) -> None:
    event = http_event("POST", "/orders", raw_body=raw)
    event["isBase64Encoded"] = encoded
    response = commands.lambda_handler(event, FakeLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 422 and message in body["detail"]
    assert body["errors"] == [{"field": "body", "message": body["detail"]}]
    assert commit_count(dynamodb, table) == 0
