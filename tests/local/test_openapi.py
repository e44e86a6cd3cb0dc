"""The generated OpenAPI document matches the routes the gateway and the stack serve."""

from __future__ import annotations

import re

from orders_core.api_routes import ROUTES
from orders_local.openapi import build_openapi


def test_every_route_is_documented_and_nothing_else() -> None:
    document = build_openapi()
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {(route.method, re.sub(r"\{[^}]+\}", "{}", route.path)) for route in ROUTES}
    assert documented == served


def test_request_bodies_and_parameters_are_described() -> None:
    document = build_openapi()
    place = document["paths"]["/orders"]["post"]
    schema_ref = place["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"items", "shipping_address"} <= set(body["required"])
    listing = document["paths"]["/customers/me/orders"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "cursor"}
    assert document["security"] == [{"bearer": []}]


def test_problem_answers_are_documented_with_their_media_type() -> None:
    document = build_openapi()
    place = document["paths"]["/orders"]["post"]["responses"]
    assert "201" in place and "200" not in place
    problem = place["409"]["content"]["application/problem+json"]["schema"]
    assert problem["$ref"] == "#/components/schemas/Problem"
    # API Gateway's own 401 has a {"message"} body, not a problem
    assert "application/json" in place["401"]["content"]
    assert "202" in document["paths"]["/admin/rebuilds"]["post"]["responses"]
