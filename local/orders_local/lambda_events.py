"""What a Lambda handler is called with locally: API Gateway HTTP API (payload 2.0) events and a context.

One definition of each, used by the local gateway, the stream poller and the tests that call handlers
directly (through ``tests/support/apigw.py``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
API_ID = "local"
LAMBDA_MEMORY_MB = 256
# API Gateway gives up on an integration after 30 s; the fake context counts down from there.
INTEGRATION_TIMEOUT_SECONDS = 30.0


@dataclass
class FakeLambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    memory_limit_in_mb: int = LAMBDA_MEMORY_MB
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    deadline: float = field(default_factory=lambda: time.monotonic() + INTEGRATION_TIMEOUT_SECONDS)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def http_api_event(
    *,
    route_key: str,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    claims: Mapping[str, Any],
    request_id: str,
    received_at: datetime,
    raw_query_string: str = "",
    query_string_parameters: Mapping[str, str] | None = None,
    cookies: Sequence[str] = (),
    path_parameters: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> dict[str, Any]:
    """The payload 2.0 event HTTP API passes to a Lambda integration behind its JWT authorizer.

    ``headers`` are the lower-cased request headers without ``cookie`` (HTTP API moves cookies into
    ``cookies``). A ``bytes`` body is passed as text when it is UTF-8 and base64-encoded otherwise;
    a ``str`` body is passed as it is.
    """
    host = headers.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query_string,
    }
    if cookies:
        event["cookies"] = list(cookies)
    event["headers"] = dict(headers)
    if query_string_parameters:
        event["queryStringParameters"] = dict(query_string_parameters)
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": API_ID,
        "authorizer": {"jwt": {"claims": _claims_as_strings(claims), "scopes": None}},
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": received_at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(received_at.timestamp() * 1000),
    }
    if isinstance(body, bytes):
        try:
            event["body"] = body.decode("utf-8")
            event["isBase64Encoded"] = False
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        if body is not None:
            event["body"] = body
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def _claim_as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        # API Gateway flattens arrays to "[a b]" (no quotes, space separated).
        return "[" + " ".join(_claim_as_string(v) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"))


def _claims_as_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    # The JWT authorizer passes every claim to the integration as a string.
    return {name: _claim_as_string(value) for name, value in claims.items()}
