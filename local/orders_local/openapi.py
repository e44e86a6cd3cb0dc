"""The API's OpenAPI document, generated from the handlers' own routes and models."""

from __future__ import annotations

import importlib
import json
from typing import Any

from orders_core.api_routes import ROUTES

TITLE = "Orders API"
VERSION = "1.0.0"


def build_openapi() -> dict[str, Any]:
    """One document for the whole HTTP API: the paths of every function, merged."""
    document: dict[str, Any] = {}
    for function in sorted({route.function for route in ROUTES}):
        app = importlib.import_module(f"{function}.handler").app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        if not document:
            document = part
            continue
        document["paths"].update(part.get("paths", {}))
        schemas = part.get("components", {}).get("schemas", {})
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
    _declare_responses(document)
    document["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Cognito access token (locally: `orders token`).",
    }
    document["security"] = [{"bearer": []}]
    return document


# What the handlers answer besides success: problem+json (RFC 9457) from the functions, and a
# {"message"} body from API Gateway itself (401 without a valid token, 413 over its body limit).
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
GATEWAY_MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
PROBLEMS = {
    "401": "no valid token",
    "403": "the caller's role may not do this",
    "404": "unknown, or not the caller's",
    "409": "a business rule or a concurrent change refused the command",
    "412": "If-Match names a version that is no longer current",
    "413": "the request or the commit is too large",
    "415": "the body is not application/json",
    "422": "invalid input; `errors` names the fields",
    "503": "a read model is behind the version asked for, or rebuilds are unavailable",
}
SUCCESS = {("POST", "/orders"): "201", ("POST", "/admin/rebuilds"): "202"}


def _declare_responses(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["GatewayMessage"] = GATEWAY_MESSAGE_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    gateway = {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            success = SUCCESS.get((method.upper(), path), "200")
            responses: dict[str, Any] = {
                success: {
                    "description": "done",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            }
            for status, description in PROBLEMS.items():
                content = {**problem, **gateway} if status in ("401", "413") else problem
                responses[status] = {"description": description, "content": content}
            operation["responses"] = responses
