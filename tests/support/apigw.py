"""Builds API Gateway HTTP API (payload v2.0) events as the JWT authorizer delivers them."""

from __future__ import annotations

import json
import uuid
from typing import Any

from orders_core.api_routes import ROUTES


def _route_key(method: str, path: str) -> tuple[str, dict[str, str]]:
    segments = path.split("/")
    for route in ROUTES:
        template = route.path.split("/")
        if route.method != method or len(template) != len(segments):
            continue
        params = {}
        for pattern, actual in zip(template, segments, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = actual
            elif pattern != actual:
                break
        else:
            return route.route_key, params
    return f"{method} {path}", {}


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    user: str | None = "alice",
    operator: bool = False,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    route_key, params = _route_key(method, path)
    all_headers = {"content-type": "application/json", "host": "localhost"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    claims: dict[str, str] = {}
    if user is not None:
        claims = {"sub": user, "iss": "orders-local", "token_use": "access"}
        if operator:
            claims["cognito:groups"] = "[operators]"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "test",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": "26/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795000000000,
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
    if params:
        event["pathParameters"] = params
    if query:
        event["queryStringParameters"] = dict(query)
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    return event


class FakeLambdaContext:
    function_name = "test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
