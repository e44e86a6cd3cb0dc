"""API Gateway HTTP API (payload v2.0) events and a Lambda context for calling handlers directly.

Thin wrappers over ``orders_local.lambda_events``, the builders the local gateway uses, with the
defaults a test wants: a fixed time, a customer's claims, a function named "test".
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from orders_local import lambda_events
from orders_local.gateway import match_route

RECEIVED_AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


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
    """The event for ``method path`` as the JWT authorizer passes it; ``user=None`` sends no claims.

    A path no route matches keeps ``"{method} {path}"`` as its route key, so handlers can be asked
    for it too.
    """
    matched = match_route(method, path)
    route_key, params = (matched[0].route_key, matched[1]) if matched else (f"{method} {path}", {})
    all_headers = {"content-type": "application/json", "host": "localhost", "user-agent": "test"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    claims: dict[str, str] = {}
    if user is not None:
        claims = {"sub": user, "iss": "orders-local", "token_use": "access"}
        if operator:
            claims["cognito:groups"] = "[operators]"
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    return lambda_events.http_api_event(
        route_key=route_key,
        method=method,
        raw_path=path,
        raw_query_string="&".join(f"{k}={v}" for k, v in (query or {}).items()),
        query_string_parameters=query,
        headers=all_headers,
        claims=claims,
        path_parameters=params,
        body=raw_body,
        request_id=str(uuid.uuid4()),
        received_at=RECEIVED_AT,
    )


class FakeLambdaContext(lambda_events.FakeLambdaContext):
    """The local run's Lambda context, for a function named "test"."""

    def __init__(self) -> None:
        super().__init__(
            function_name="test",
            aws_request_id="00000000-0000-0000-0000-000000000000",
            invoked_function_arn=f"arn:aws:lambda:us-east-1:{lambda_events.DEFAULT_ACCOUNT_ID}:function:test",
        )
