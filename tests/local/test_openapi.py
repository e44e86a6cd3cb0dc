"""The generated OpenAPI document: it matches the routes the gateway and the stack serve, it is valid
OpenAPI, and the rules it states are the ones the handlers and the domain enforce, at their bounds.

What a request valid by the document meets end to end (never a refusal of its form) is the
reliability suite's business: tests/reliability/test_fuzz.py sends such requests to `orders serve`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from command_api import models
from orders_core import web
from orders_core.api_routes import ROUTES
from orders_core.domain import inventory, orders
from orders_core.domain.errors import InvalidCommand
from orders_core.domain.money import MAX_PRICE, check_price
from orders_core.projections.registry import NAMES
from orders_local.openapi import (
    HEADER_PARAMETERS,
    PATH_PARAMETERS,
    PRODUCT_ID_IN_PATH_PATTERN,
    UUID_PATTERN,
    build_openapi,
)

DOCUMENT = build_openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]


def _operation(method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][path][method]
    return operation


def _parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """By name, the shared ones ($ref) resolved."""
    found = {}
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = DOCUMENT["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        found[parameter["name"]] = parameter
    return found


def _property(model: str, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = SCHEMAS[model]["properties"][name]
    return schema


def _matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


# --- the document as a whole ----------------------------------------------------------------------


def test_every_route_is_documented_and_nothing_else() -> None:
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
    }
    served = {(route.method, re.sub(r"\{[^}]+\}", "{}", route.path)) for route in ROUTES}
    assert documented == served


def test_it_is_a_valid_openapi_document() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT)  # raises on the first error


def test_operation_ids_are_the_handlers_names() -> None:
    ids = []
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            route = next(
                r
                for r in ROUTES
                if (r.method.lower(), re.sub(r"\{[^}]+\}", "{}", r.path))
                == (method, re.sub(r"\{[^}]+\}", "{}", path))
            )
            handler = importlib.import_module(f"{route.function}.handler")
            assert callable(getattr(handler, operation["operationId"], None)), operation["operationId"]
            ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_request_bodies_and_parameters_are_described() -> None:
    place = _operation("post", "/orders")
    schema_ref = place["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = SCHEMAS[schema_ref.rsplit("/", 1)[1]]
    assert {"items", "shipping_address"} <= set(body["required"])
    listing = _parameters(_operation("get", "/customers/me/orders"))
    assert set(listing) == {"limit", "cursor", "X-Correlation-Id"}
    assert "next_cursor" in listing["cursor"]["description"]  # a rule no schema can state, said in words
    assert DOCUMENT["security"] == [{"bearer": []}]


def test_problem_answers_are_documented_with_their_media_type() -> None:
    place = _operation("post", "/orders")["responses"]
    assert "201" in place and "200" not in place
    problem = place["409"]["content"]["application/problem+json"]["schema"]
    assert problem["$ref"] == "#/components/schemas/Problem"
    # API Gateway's own 401 has a {"message"} body, not a problem
    assert "application/json" in place["401"]["content"]
    assert "202" in _operation("post", "/admin/rebuilds")["responses"]
    accepted = place["201"]
    assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderAccepted"}
    assert {"ETag", "Location"} <= set(accepted["headers"])


# --- bodies: each stated rule is the domain's, at its bounds --------------------------------------


def _place_order(**changes: Any) -> orders.PlaceOrder:
    line = orders.OrderLine(product_id="sku-1", quantity=1, unit_price=Decimal("1.00"))
    address = orders.ShippingAddress(line1="1 Canal St", city="Amsterdam", postal_code="1011", country="NL")
    command = orders.PlaceOrder(order_id="o-1", customer_id="alice", items=(line,), shipping_address=address)
    if "line" in changes:
        command = replace(command, items=(replace(line, **changes.pop("line")),))
    if "address" in changes:
        command = replace(command, shipping_address=replace(address, **changes.pop("address")))
    return replace(command, **changes)


def _place(**changes: Any) -> Callable[[], object]:
    command = _place_order(**changes)
    return lambda: orders.decide(orders.OrderState(), command)


def _placed_state() -> orders.OrderState:
    state = orders.OrderState()
    for event in orders.decide(state, _place_order()):
        state = orders.evolve(state, event)
    return state


def _accepted(decision: Callable[[], object]) -> bool:
    try:
        decision()
    except InvalidCommand:
        return False
    return True


def _range(schema: dict[str, Any]) -> tuple[int, int]:
    return int(schema["minimum"]), int(schema["maximum"])


def test_quantities_and_levels_are_the_domains_ranges() -> None:
    low, high = _range(_property("ItemBody", "quantity"))
    assert (low, high) == (1, orders.MAX_QUANTITY_PER_LINE)
    assert _accepted(_place(line={"quantity": low})) and _accepted(_place(line={"quantity": high}))
    assert not _accepted(_place(line={"quantity": low - 1}))
    assert not _accepted(_place(line={"quantity": high + 1}))

    for model, name, command in (
        ("StockBody", "quantity", inventory.ReceiveStock),
        ("ReorderLevelBody", "reorder_level", inventory.SetReorderLevel),
    ):
        low, high = _range(_property(model, name))

        def decide(value: int, command: Any = command) -> Callable[[], object]:
            return lambda: inventory.decide(inventory.ProductState(), command("sku-1", value))

        assert _accepted(decide(low)) and _accepted(decide(high)), model
        assert not _accepted(decide(low - 1)) and not _accepted(decide(high + 1)), model


def test_an_order_has_one_to_the_domains_most_lines() -> None:
    items = _property("PlaceOrderBody", "items")
    assert (items["minItems"], items["maxItems"]) == (1, orders.MAX_LINES_PER_ORDER)
    line = orders.OrderLine(product_id="sku-1", quantity=1, unit_price=Decimal("1.00"))
    assert _accepted(_place(items=(line,) * items["maxItems"]))
    assert not _accepted(_place(items=(line,) * (items["maxItems"] + 1)))
    assert not _accepted(_place(items=()))


@pytest.mark.parametrize(
    ("model", "name", "decision"),
    [
        ("AddressBody", "city", lambda text: _place(address={"city": text})),
        (
            "CancelOrderBody",
            "reason",
            lambda text: (
                lambda: orders.decide(
                    _placed_state(),
                    orders.CancelOrder(order_id="o-1", requested_by="alice", by_operator=False, reason=text),
                )
            ),
        ),
        (
            "ShipOrderBody",
            "tracking_number",
            lambda text: (
                lambda: orders.decide(_placed_state(), orders.ShipOrder(order_id="o-1", tracking_number=text))
            ),
        ),
    ],
)
def test_text_is_not_blank_and_at_most_the_domains_length(
    model: str, name: str, decision: Callable[[str], Callable[[], object]]
) -> None:
    schema = _property(model, name)
    longest = schema["maxLength"]
    assert _accepted(decision("x" * longest)) and not _accepted(decision("x" * (longest + 1)))
    for blank in (" ", "\t\n", "\x1c", "\u3000"):
        assert not _matches(schema["pattern"], blank) and not _accepted(decision(blank)), repr(blank)
    assert _matches(schema["pattern"], " a ") and _accepted(decision(" a "))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=210))
def test_any_text_the_pattern_takes_the_domain_takes(text: str) -> None:
    schema = _property("AddressBody", "line1")
    if _matches(schema["pattern"], text) and len(text) <= schema["maxLength"]:
        assert _accepted(_place(address={"line1": text})), repr(text)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(models.MONEY_PATTERN, fullmatch=True))
def test_any_price_the_pattern_takes_the_api_takes(price: str) -> None:
    assert _property("ItemBody", "unit_price")["pattern"] == models.MONEY_PATTERN
    parsed = models.ItemBody.model_validate({"product_id": "sku-1", "quantity": 1, "unit_price": price})
    check_price(parsed.unit_price)  # raises InvalidCommand if the domain refuses it


def test_the_price_pattern_stops_where_the_domain_does() -> None:
    assert all(_matches(models.MONEY_PATTERN, p) for p in ("0", "0.5", "12.50", "999999.99", str(MAX_PRICE)))
    refused = ("1000000.01", "1000001", "0.001", "-1", "1e3", "12.", ".5", " 1", "1,00", "١٢")
    assert not any(_matches(models.MONEY_PATTERN, p) for p in refused)


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(models.PRODUCT_ID_PATTERN, fullmatch=True)
    | st.from_regex(PRODUCT_ID_IN_PATH_PATTERN, fullmatch=True)
)
def test_any_product_id_the_patterns_take_the_domain_takes(product_id: str) -> None:
    orders.check_product_id(product_id)


def test_a_product_id_in_a_path_is_never_a_dot_segment() -> None:
    assert not _matches(PRODUCT_ID_IN_PATH_PATTERN, ".") and not _matches(PRODUCT_ID_IN_PATH_PATTERN, "..")
    assert _matches(PRODUCT_ID_IN_PATH_PATTERN, ".hidden") and _matches(PRODUCT_ID_IN_PATH_PATTERN, "a" * 64)
    assert not _matches(PRODUCT_ID_IN_PATH_PATTERN, "a" * 65)


def test_integers_say_how_they_are_written() -> None:
    # JSON Schema's integer 2 is also written 2.0; the API takes only the first: the document says so
    assert models.StockBody.model_validate({"quantity": 2}).quantity == 2
    with pytest.raises(ValueError):
        models.StockBody.model_validate({"quantity": 2.0})
    for model, name in (
        ("ItemBody", "quantity"),
        ("StockBody", "quantity"),
        ("ReorderLevelBody", "reorder_level"),
    ):
        assert _property(model, name)["description"] == models.AS_WRITTEN


# --- parameters and headers -----------------------------------------------------------------------


def test_every_path_parameter_says_what_it_may_be() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for name, parameter in _parameters(operation).items():
                if parameter["in"] == "path":
                    assert PATH_PARAMETERS[name].items() <= parameter["schema"].items(), (method, path, name)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(UUID_PATTERN, fullmatch=True))
def test_an_order_id_the_pattern_takes_names_an_order(order_id: str) -> None:
    assert web.order_id_from_path(order_id) == order_id.lower()


def _headers_app(name: str, value: str) -> Any:
    return cast(Any, SimpleNamespace(current_event=SimpleNamespace(headers={name.lower(): value})))


@settings(max_examples=200, deadline=None)
@given(
    key=st.from_regex(HEADER_PARAMETERS["IdempotencyKey"]["schema"]["pattern"], fullmatch=True),
    version=st.from_regex(HEADER_PARAMETERS["IfMatch"]["schema"]["pattern"], fullmatch=True),
)
def test_header_values_the_patterns_take_the_api_takes(key: str, version: str) -> None:
    assert web.idempotency_key(_headers_app("Idempotency-Key", key)) == key
    web.expected_version(_headers_app("If-Match", version))  # raises BadHeader (422) if refused


def test_commands_take_the_command_headers_and_every_route_a_correlation_id() -> None:
    for route in ROUTES:
        path = next(
            p
            for p in DOCUMENT["paths"]
            if re.sub(r"\{[^}]+\}", "{}", p) == re.sub(r"\{[^}]+\}", "{}", route.path)
        )
        names = set(_parameters(_operation(route.method.lower(), path)))
        assert "X-Correlation-Id" in names, route
        assert ({"Idempotency-Key", "If-Match"} <= names) == (route.function == "command_api"), route


def test_the_points_in_time_exclude_each_other() -> None:
    # query_api answers 422 to any two of them: the document says "at most one"
    (point,) = [
        p for p in _parameters(_operation("get", "/orders/{order_id}")).values() if p["in"] == "query"
    ]
    assert (point["style"], point["explode"]) == ("form", True)  # each still its own name=value
    assert point["schema"]["maxProperties"] == 1
    assert set(point["schema"]["properties"]) == {"min_version", "as_of", "at_version"}


def test_projections_are_the_registered_ones() -> None:
    for model in ("StartRebuildBody", "ReleaseRebuildBody"):
        assert _property(model, "projection")["enum"] == list(NAMES)
    failures = _parameters(_operation("get", "/admin/failures"))["projection"]
    assert failures["schema"]["enum"] == list(NAMES)


# --- links ----------------------------------------------------------------------------------------


def test_a_new_order_links_to_every_request_that_takes_its_id() -> None:
    links = _operation("post", "/orders")["responses"]["201"]["links"]
    taking_order_id = {
        operation["operationId"]
        for operations in DOCUMENT["paths"].values()
        for operation in operations.values()
        if "order_id" in _parameters(operation) and _parameters(operation)["order_id"]["in"] == "path"
    }
    assert {link["operationId"] for link in links.values()} == taking_order_id
    assert len(taking_order_id) == 5
    for link in links.values():
        assert link["parameters"]["order_id"] == "$response.body#/order_id"
    assert "order_id" in SCHEMAS["OrderAccepted"]["required"]


def test_every_link_names_an_operation_and_its_parameters() -> None:
    by_id = {
        operation["operationId"]: operation
        for operations in DOCUMENT["paths"].values()
        for operation in operations.values()
    }
    seen = 0
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            for answer in operation["responses"].values():
                for link in answer.get("links", {}).values():
                    target = _parameters(by_id[link["operationId"]])
                    for name in link["parameters"]:
                        assert name.removeprefix("header.") in target, (link, name)
                    seen += 1
    assert seen > len(_operation("post", "/orders")["responses"]["201"]["links"])  # more than those
