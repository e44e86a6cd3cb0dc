"""The API's OpenAPI document, generated from the handlers' own routes and models.

Each function's Powertools resolver describes its routes, parameters and request bodies (the body
models state the domain's rules: functions/command_api/models.py). What the resolvers cannot see
is added here, each from the code that enforces it: the headers `orders_core.web` reads, the path
parameters' rules (checked inside the handlers, where a bad value gets 404 or 422), the query
parameters that exclude each other, the answers (problem+json from the functions, a `{"message"}`
from API Gateway) and the links a client, or a stateful fuzzer, follows from one answer to the next
request. The promise: a request the document calls valid is never refused for its form (no 422
and no 415); it may still be refused by a business rule (404, 409, 412, ...), as declared. Two
rules depend on earlier requests, which no schema can state, and are said in words where they
apply: a `cursor` must be one the API handed out, and an Idempotency-Key is not reused for another
request (both 422).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Iterator
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
    _name_operations(document)
    _describe_parameters(document)
    _declare_headers(document)
    _declare_responses(document)
    _declare_links(document)
    document["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Cognito access token (locally: `orders token`).",
    }
    document["security"] = [{"bearer": []}]
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            yield path, method, operation


# --- operation ids --------------------------------------------------------------------------------


def _name_operations(document: dict[str, Any]) -> None:
    """Operation ids are the handlers' names (`place_order`): what generated clients call methods.

    Powertools names an operation `<function><path with non-word characters as _>_<method>`.
    """
    for path, method, operation in _operations(document):
        suffix = re.sub(r"\W", "_", path) + f"_{method}"
        generated = operation["operationId"]
        if not generated.endswith(suffix):
            raise ValueError(f"operation id {generated!r} of {method.upper()} {path} is not Powertools' form")
        operation["operationId"] = generated.removesuffix(suffix)


# --- parameters -----------------------------------------------------------------------------------

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# orders.PRODUCT_ID (what check_product_id accepts: 422 otherwise), less "." and "..", which a URL
# path cannot carry as a segment (clients and proxies resolve them as "this" and "parent" folder).
PRODUCT_ID_IN_PATH_PATTERN = r"^(?!\.\.?$)[A-Za-z0-9._\-]{1,64}$"

# What each path parameter may be, as the handler that reads it checks it.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    # web.order_id_from_path: anything but a UUID names no order, and gets 404 like an unknown one.
    "order_id": {
        "type": "string",
        "format": "uuid",
        "pattern": UUID_PATTERN,
        "description": "The order's id, as POST /orders answered it (a UUID)",
    },
    "product_id": {
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "pattern": PRODUCT_ID_IN_PATH_PATTERN,
        "description": "1 to 64 letters, digits, '.', '_' or '-' (not '.' or '..' alone)",
    },
    # query_api._calendar_day: a real calendar day, written YYYY-MM-DD (422 otherwise).
    "day": {"type": "string", "format": "date", "description": "A calendar day, YYYY-MM-DD"},
    # Cognito's `sub` of the customer; a customer may only name themselves (404 otherwise).
    "customer_id": {"type": "string", "minLength": 1, "maxLength": 128},
    "rebuild_id": {"type": "string", "minLength": 1, "maxLength": 200},
}

# Query parameters of which a request may carry at most one (query_api._point_in_time answers 422
# to any two). OpenAPI parameters cannot exclude each other, so the document states them as one
# object parameter in the form style, exploded: each property is still its own `name=value` in the
# query string, and the object's `maxProperties: 1` is the rule.
EXCLUSIVE_QUERY_PARAMETERS: dict[tuple[str, str], tuple[str, tuple[str, ...], str]] = {
    ("/orders/{order_id}", "get"): (
        "point_in_time",
        ("min_version", "as_of", "at_version"),
        "At most one of: `min_version` (wait until the read model reflects this version: 503 with "
        "Retry-After until it does), `as_of` (the order as it was at an RFC 3339 instant), "
        "`at_version` (the order as it was at that version).",
    ),
}

CURSOR_DESCRIPTION = (
    "The `next_cursor` of the previous page, as given: a cursor this API did not hand out is "
    "refused (422). A rule no schema can state; the `NextPage` link carries it."
)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as the resolvers write it, less the null: a parameter is absent, never null."""
    options = schema.get("anyOf")
    if not options:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1:
        return schema
    merged = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **merged}


def _describe_parameters(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        parameters: list[dict[str, Any]] = operation.get("parameters", [])
        for parameter in parameters:
            parameter["schema"] = _without_null(parameter["schema"])
            if parameter["in"] == "path":
                rules = PATH_PARAMETERS.get(parameter["name"])
                if rules is None:
                    name = parameter["name"]
                    raise ValueError(f"say what path parameter {name!r} may be in PATH_PARAMETERS")
                parameter["schema"] = {**parameter["schema"], **copy.deepcopy(rules)}
            elif parameter["name"] == "cursor":
                parameter["description"] = CURSOR_DESCRIPTION
        exclusive = EXCLUSIVE_QUERY_PARAMETERS.get((path, method))
        if exclusive is not None:
            name, members, description = exclusive
            grouped = {p["name"]: p["schema"] for p in parameters if p["name"] in members}
            if set(grouped) != set(members):
                missing = sorted(set(members) - set(grouped))
                raise ValueError(f"{method.upper()} {path} lacks query parameters {missing}")
            operation["parameters"] = [p for p in parameters if p["name"] not in members] + [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "style": "form",
                    "explode": True,
                    "description": description,
                    "schema": {
                        "type": "object",
                        "properties": {member: grouped[member] for member in members},
                        "additionalProperties": False,
                        "maxProperties": 1,
                    },
                }
            ]


# --- headers --------------------------------------------------------------------------------------

# As orders_core.web reads them. A malformed X-Correlation-Id is replaced, never refused; a malformed
# Idempotency-Key or If-Match is refused with 422.
HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    "CorrelationId": {
        "name": "X-Correlation-Id",
        "in": "header",
        "required": False,
        "description": "Traces the request: echoed in the answer and stored on every event it writes "
        "(one is made up when absent or malformed)",
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
    },
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "A retry with the same key gets the first answer (`Idempotent-Replayed: true`) and "
        "writes nothing; the same key with another request is refused (422)",
        "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
    },
    "IfMatch": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": 'The version the command is meant for, as an ETag gave it ("3"), or *; when the '
        "aggregate is at another version the answer is 412 with its current ETag",
        "schema": {"type": "string", "pattern": r'^(\*|(W/)?"[0-9]{1,12}"|[0-9]{1,12})$'},
    },
}
COMMAND_HEADERS = ("IdempotencyKey", "IfMatch")


def _declare_headers(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {}).setdefault("parameters", {})
    components.update(copy.deepcopy(HEADER_PARAMETERS))
    commands = {
        (route.method.lower(), _normalized(route.path)) for route in ROUTES if route.function == "command_api"
    }
    for path, method, operation in _operations(document):
        names = ["CorrelationId"]
        if (method, _normalized(path)) in commands:
            names += COMMAND_HEADERS
        operation.setdefault("parameters", []).extend(
            {"$ref": f"#/components/parameters/{name}"} for name in names
        )


def _normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


# --- answers --------------------------------------------------------------------------------------

# What the handlers answer besides success: problem+json (RFC 9457) from the functions, and a
# {"message"} body from API Gateway itself (401 without a valid token, 404 for no route, 413 over
# its body limit, 429 over the stage's throttling).
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
    "422": "invalid input (`errors` names the fields), or an Idempotency-Key reused with another request",
    "429": "too many requests (API Gateway's throttling)",
    "503": "a read model is behind the version asked for, or rebuilds are unavailable",
}
ANSWERED_BY_THE_GATEWAY_TOO = ("401", "404", "413", "429")
SUCCESS = {("POST", "/orders"): "201", ("POST", "/admin/rebuilds"): "202"}


def _accepted(key: str, key_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key, "version", "correlation_id"],
        "properties": {
            key: key_schema,
            "version": {"type": "integer", "minimum": 1, "description": "The aggregate's version now"},
            "correlation_id": {"type": "string"},
        },
    }


# The command answers' bodies, which the links read (the query views stay plain objects here).
ANSWER_SCHEMAS: dict[str, dict[str, Any]] = {
    "OrderAccepted": _accepted("order_id", {"type": "string", "format": "uuid"}),
    "ProductAccepted": _accepted("product_id", {"type": "string"}),
    "RebuildStarted": {
        "type": "object",
        "required": ["rebuild_id", "status", "projection"],
        "properties": {
            "rebuild_id": {"type": "string"},
            "status": {"type": "string"},
            "projection": {"type": "string"},
        },
    },
}


def _answer_schema(method: str, path: str) -> str | None:
    if (method, path) == ("post", "/admin/rebuilds"):
        return "RebuildStarted"
    route = next(r for r in ROUTES if (r.method.lower(), _normalized(r.path)) == (method, _normalized(path)))
    if route.function != "command_api":
        return None
    return "OrderAccepted" if path.startswith("/orders") else "ProductAccepted"


def _command_answer_headers(*, created: bool) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "ETag": {
            "description": "The aggregate's version after the command; send it back as If-Match",
            "required": True,
            "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
        },
        "Idempotent-Replayed": {
            "description": "`true` when this answer repeats the first one given to this Idempotency-Key",
            "schema": {"type": "string", "enum": ["true"]},
        },
    }
    if created:
        headers["Location"] = {
            "description": "The new order: /orders/{order_id}",
            "required": True,
            "schema": {"type": "string"},
        }
    return headers


def _declare_responses(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["GatewayMessage"] = GATEWAY_MESSAGE_SCHEMA
    schemas.update(copy.deepcopy(ANSWER_SCHEMAS))
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    gateway = {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}}
    for path, method, operation in _operations(document):
        success = SUCCESS.get((method.upper(), path), "200")
        answer = _answer_schema(method, path)
        schema = {"$ref": f"#/components/schemas/{answer}"} if answer else {"type": "object"}
        responses: dict[str, Any] = {
            success: {"description": "done", "content": {"application/json": {"schema": schema}}}
        }
        if answer in ("OrderAccepted", "ProductAccepted"):
            responses[success]["headers"] = _command_answer_headers(created=success == "201")
        for status, description in PROBLEMS.items():
            content = {**problem, **gateway} if status in ANSWERED_BY_THE_GATEWAY_TOO else problem
            responses[status] = {"description": description, "content": content}
        operation["responses"] = responses


# --- links ----------------------------------------------------------------------------------------


def _takes(operation: dict[str, Any], name: str, where: str = "path") -> bool:
    return any(p.get("name") == name and p.get("in") == where for p in _parameters(operation))


def _parameters(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The operation's parameters, the shared headers (`$ref`s) resolved."""
    for parameter in operation.get("parameters", []):
        reference = parameter.get("$ref", "")
        yield HEADER_PARAMETERS[reference.rsplit("/", 1)[1]] if reference else parameter


def _link_name(operation_id: str) -> str:
    return "".join(word.capitalize() for word in operation_id.split("_"))


# Answers that name something (in their body) other requests take: the new order, a product, a rebuild.
# The order's other commands answer its id too, but a client has it from POST /orders already.
LINK_SOURCES = {
    ("post", "/orders"): "order_id",
    ("post", "/inventory/{product_id}/stock"): "product_id",
    ("put", "/inventory/{product_id}/reorder-level"): "product_id",
    ("post", "/admin/rebuilds"): "rebuild_id",
}


def _declare_links(document: dict[str, Any]) -> None:
    """From each answer of LINK_SOURCES to every other request that takes what it names (with the
    answer's ETag as If-Match, for commands); and from a page of orders to the next page."""
    operations = list(_operations(document))
    for path, method, operation in operations:
        success = SUCCESS.get((method.upper(), path), "200")
        links: dict[str, Any] = {}
        named = LINK_SOURCES.get((method, path))
        if named is not None:
            for target_path, target_method, target in operations:
                if _takes(target, named) and (target_path, target_method) != (path, method):
                    parameters = {named: f"$response.body#/{named}"}
                    if _takes(target, "If-Match", "header"):
                        # The command meant for the version this answer reached (412 if another came first)
                        parameters["header.If-Match"] = "$response.header.ETag"
                    links[_link_name(target["operationId"])] = {
                        "operationId": target["operationId"],
                        "parameters": parameters,
                    }
        if _takes(operation, "cursor", "query"):
            parameters = {"cursor": "$response.body#/next_cursor"}
            parameters.update({p["name"]: f"$request.path.{p['name']}" for p in _path_parameters(operation)})
            links["NextPage"] = {
                "operationId": operation["operationId"],
                "parameters": parameters,
                "description": "The next page, while `next_cursor` is not null",
            }
        if links:
            operation["responses"][success]["links"] = links


def _path_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in _parameters(operation) if p.get("in") == "path"]
