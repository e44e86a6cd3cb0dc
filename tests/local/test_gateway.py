"""The local gateway behaves like API Gateway HTTP API (payload 2.0) in front of Lambda."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from werkzeug.test import Client

from orders_local.gateway import LocalGateway
from orders_local.tokens import issue_token

SECRET = "gateway-test-secret-that-is-32-bytes-or-more"
ALLOWED_ORIGIN = "http://localhost:3000"


class RecordingHandler:
    """A stand-in Lambda handler: remembers what it was called with, answers what it is told."""

    def __init__(self, response: Any = None) -> None:
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.response: Any = response if response is not None else {"statusCode": 200, "body": "{}"}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls.append((event, context))
        if isinstance(self.response, BaseException):
            raise self.response
        return self.response

    @property
    def event(self) -> dict[str, Any]:
        assert len(self.calls) == 1, f"expected one call, got {len(self.calls)}"
        return self.calls[0][0]


@pytest.fixture
def command_api() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def query_api() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def client(command_api: RecordingHandler, query_api: RecordingHandler) -> Client:
    gateway = LocalGateway(
        {"command_api": command_api, "query_api": query_api, "admin_api": RecordingHandler()},
        secret=SECRET,
        cors_origins=[ALLOWED_ORIGIN],
        max_body_bytes=1024,
    )
    # Without its cookie jar, the test client passes a Cookie header through as given.
    return Client(gateway, use_cookies=False)


def bearer(subject: str = "alice", *, operator: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(subject, operator=operator, secret=SECRET)}"}


# -- the event ------------------------------------------------------------------------------------


def test_event_has_the_http_api_v2_shape(client: Client, command_api: RecordingHandler) -> None:
    # Given an operator's request with an encoded path parameter, a repeated query parameter and cookies
    headers = {**bearer("olga", operator=True), "Content-Type": "application/json", "Cookie": "a=1; b=2"}

    # When it is sent
    response = client.post(
        "/orders/abc%20def/items?sku=x&sku=y&qty=2", headers=headers, data=b'{"sku": "x", "quantity": 2}'
    )

    # Then the command function gets a payload 2.0 event like API Gateway builds
    assert response.status_code == 200
    event = command_api.event
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /orders/{order_id}/items"
    assert event["rawPath"] == "/orders/abc%20def/items"
    assert event["pathParameters"] == {"order_id": "abc def"}
    assert event["rawQueryString"] == "sku=x&sku=y&qty=2"
    assert event["queryStringParameters"] == {"sku": "x,y", "qty": "2"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    assert json.loads(event["body"]) == {"sku": "x", "quantity": 2}
    assert event["isBase64Encoded"] is False

    context = event["requestContext"]
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["http"]["method"] == "POST"
    assert context["http"]["path"] == "/orders/abc%20def/items"
    assert context["requestId"] == response.headers["apigw-requestid"]
    assert isinstance(context["timeEpoch"], int)


def test_claims_are_passed_as_api_gateway_strings(client: Client, command_api: RecordingHandler) -> None:
    # Given an operator's token
    # When a command is sent with it
    client.post("/orders/o-1/ship", headers=bearer("olga", operator=True), data=b"{}")

    # Then every claim is a string; numbers stay digits and the group array becomes "[operators]"
    jwt_context = command_api.event["requestContext"]["authorizer"]["jwt"]
    claims = jwt_context["claims"]
    assert claims["sub"] == "olga"
    assert claims["cognito:groups"] == "[operators]"
    assert claims["exp"].isdigit() and claims["iat"].isdigit()
    assert all(isinstance(value, str) for value in claims.values())
    assert jwt_context["scopes"] is None


def test_customer_claims_have_no_groups(client: Client, command_api: RecordingHandler) -> None:
    # When a customer places an order
    client.post("/orders", headers=bearer("alice"), data=b"{}")

    # Then the handler sees the customer and no group claim
    claims = command_api.event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "alice"
    assert "cognito:groups" not in claims


def test_get_without_query_or_body_omits_those_keys(
    client: Client, command_api: RecordingHandler, query_api: RecordingHandler
) -> None:
    # When the events of an order are read
    response = client.get("/orders/o-1/events", headers=bearer())

    # Then the query function (not the command one) is called, with no query or body keys
    assert response.status_code == 200
    assert command_api.calls == []
    event = query_api.event
    assert event["routeKey"] == "GET /orders/{order_id}/events"
    assert "queryStringParameters" not in event
    assert "body" not in event
    assert "cookies" not in event


def test_binary_body_arrives_base64_encoded(client: Client, command_api: RecordingHandler) -> None:
    # Given a body that is not valid UTF-8
    payload = b"\xff\xfe\x00binary"

    # When it is posted
    client.post("/orders", headers=bearer(), data=payload)

    # Then the handler gets it base64-encoded and flagged so
    event = command_api.event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_handler_gets_a_lambda_like_context(client: Client, command_api: RecordingHandler) -> None:
    # When a command is sent
    client.post("/orders", headers=bearer(), data=b"{}")

    # Then the context names the function and counts down like Lambda's
    context = command_api.calls[0][1]
    assert context.function_name == "command_api"
    assert context.invoked_function_arn.endswith(":function:command_api")
    assert context.memory_limit_in_mb > 0
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 30_000


# -- the response ---------------------------------------------------------------------------------


def test_handler_response_is_mapped_to_http(client: Client, command_api: RecordingHandler) -> None:
    # Given a handler answering with headers, cookies and a body
    command_api.response = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "Location": "/orders/o-1", "ETag": '"3"'},
        "cookies": ["session=abc; HttpOnly", "theme=dark"],
        "body": '{"order_id": "o-1"}',
    }

    # When a command is sent
    response = client.post("/orders", headers=bearer(), data=b"{}")

    # Then status, headers, cookies and body come through, plus API Gateway's request id
    assert response.status_code == 201
    assert response.headers["Location"] == "/orders/o-1"
    assert response.headers["ETag"] == '"3"'
    assert response.headers.getlist("Set-Cookie") == ["session=abc; HttpOnly", "theme=dark"]
    assert response.get_json() == {"order_id": "o-1"}
    assert response.headers["apigw-requestid"]


def test_base64_response_body_is_decoded(client: Client, command_api: RecordingHandler) -> None:
    # Given a handler answering with a base64-encoded binary body
    command_api.response = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/octet-stream"},
        "body": base64.b64encode(b"\x00\x01\xff").decode(),
        "isBase64Encoded": True,
    }

    # When / Then the client receives the raw bytes
    response = client.post("/orders", headers=bearer(), data=b"{}")
    assert response.data == b"\x00\x01\xff"


def test_multi_value_headers_are_repeated(client: Client, command_api: RecordingHandler) -> None:
    # Given a handler answering with a multi-value header
    command_api.response = {"statusCode": 204, "multiValueHeaders": {"X-Trace": ["a", "b"]}}

    # When / Then both values reach the client
    response = client.post("/orders", headers=bearer(), data=b"{}")
    assert response.status_code == 204
    assert response.headers.getlist("X-Trace") == ["a", "b"]


def test_plain_dict_result_becomes_a_200_json_body(client: Client, query_api: RecordingHandler) -> None:
    # Given a handler that returns a plain dict, no statusCode
    query_api.response = {"events": [1, 2]}

    # When / Then API Gateway's inference applies: 200 with the dict as JSON
    response = client.get("/orders/o-1/events", headers=bearer())
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"events": [1, 2]}


def test_crashing_handler_gives_500_and_logs_the_traceback(
    client: Client, command_api: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a handler that raises
    command_api.response = RuntimeError("boom")

    # When a command is sent
    with caplog.at_level(logging.ERROR, logger="orders_local.gateway"):
        response = client.post("/orders", headers=bearer(), data=b"{}")

    # Then the client sees API Gateway's 500 body and the traceback is in the log
    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal Server Error"}
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


def test_unmappable_handler_result_gives_500(client: Client, command_api: RecordingHandler) -> None:
    # Given a handler whose body is not a string (API Gateway cannot map that)
    command_api.response = {"statusCode": 200, "body": {"not": "a string"}}

    # When / Then
    response = client.post("/orders", headers=bearer(), data=b"{}")
    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal Server Error"}


# -- what API Gateway answers itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {
            "Authorization": "Bearer "
            + issue_token("a", operator=True, secret="another-secret-that-is-32-bytes-long")
        },
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ],
    ids=["missing", "malformed", "wrong-secret", "basic-auth"],
)
def test_requests_without_a_valid_token_get_401_and_never_reach_the_handler(
    client: Client, command_api: RecordingHandler, headers: dict[str, str]
) -> None:
    # When a command is sent without a valid token
    response = client.post("/orders", headers=headers, data=b"{}")

    # Then the JWT authorizer's answer comes back and the function is not invoked
    assert response.status_code == 401
    assert response.get_json() == {"message": "Unauthorized"}
    assert "invalid_token" in response.headers["www-authenticate"]
    assert command_api.calls == []


def test_token_without_bearer_prefix_is_accepted(client: Client, command_api: RecordingHandler) -> None:
    # Given the bare token (HTTP API's JWT authorizer makes the "Bearer " prefix optional)
    token = issue_token("alice", operator=False, secret=SECRET)

    # When / Then
    response = client.post("/orders", headers={"Authorization": token}, data=b"{}")
    assert response.status_code == 200
    assert len(command_api.calls) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing-here"),
        ("GET", "/orders"),  # known path, method without a route
        ("DELETE", "/orders/o-1/items"),
        ("POST", "/orders/o-1/items/extra"),
        ("POST", "/orders//items"),  # an empty segment matches no {parameter}
    ],
)
def test_unrouted_requests_get_404(
    client: Client, command_api: RecordingHandler, query_api: RecordingHandler, method: str, path: str
) -> None:
    # When a request matches no route (even with a valid token)
    response = client.open(path, method=method, headers=bearer())

    # Then API Gateway's 404 body comes back and nothing is invoked
    assert response.status_code == 404
    assert response.get_json() == {"message": "Not Found"}
    assert command_api.calls == [] and query_api.calls == []


def test_oversized_body_gets_413_without_invoking(client: Client, command_api: RecordingHandler) -> None:
    # Given a body one byte over the limit (1024 in this gateway)
    # When it is posted
    response = client.post("/orders", headers=bearer(), data=b"x" * 1025)

    # Then
    assert response.status_code == 413
    assert response.get_json() == {"message": "Request Entity Too Large"}
    assert command_api.calls == []


def test_body_at_the_limit_is_accepted(client: Client, command_api: RecordingHandler) -> None:
    # When a body of exactly the limit is posted
    response = client.post("/orders", headers=bearer(), data=b"x" * 1024)

    # Then it reaches the handler whole
    assert response.status_code == 200
    assert len(command_api.event["body"]) == 1024


# -- CORS -----------------------------------------------------------------------------------------


def test_preflight_from_an_allowed_origin_gets_the_cors_headers(
    client: Client, command_api: RecordingHandler
) -> None:
    # When a browser sends a preflight from an allowed origin (no token: browsers send none)
    response = client.options(
        "/orders/o-1/items",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )

    # Then API Gateway answers it itself with the configured lists
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"].split(",")
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].split(",")
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert command_api.calls == []


def test_preflight_from_another_origin_gets_no_allow_headers(client: Client) -> None:
    # When the preflight comes from an origin that is not allowed
    response = client.options(
        "/orders", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )

    # Then the answer is still 204, but without anything that lets the browser proceed
    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_wildcard_configuration_allows_any_origin(command_api: RecordingHandler) -> None:
    # Given a gateway configured with "*"
    client = Client(
        LocalGateway(
            {"command_api": command_api, "query_api": RecordingHandler(), "admin_api": RecordingHandler()},
            secret=SECRET,
            cors_origins=["*"],
        )
    )

    # When a preflight comes from any origin
    response = client.options(
        "/orders", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )

    # Then that origin is allowed
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_normal_responses_carry_cors_headers_for_allowed_origins_only(
    client: Client, command_api: RecordingHandler
) -> None:
    # Given a handler that sets its own (ignored by API Gateway) CORS header
    command_api.response = {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": "{}"}

    # When the same request comes from an allowed and from another origin
    allowed = client.post("/orders", headers={**bearer(), "Origin": ALLOWED_ORIGIN}, data=b"{}")
    other = client.post("/orders", headers={**bearer(), "Origin": "https://evil.example"}, data=b"{}")

    # Then only the allowed origin gets CORS headers, the gateway's rather than the handler's
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "etag" in allowed.headers["Access-Control-Expose-Headers"].split(",")
    assert "Access-Control-Allow-Origin" not in other.headers


def test_missing_handler_is_a_configuration_error(command_api: RecordingHandler) -> None:
    # When a gateway is built without a handler for one of the routes' functions
    # Then it refuses at once rather than failing on the first request
    with pytest.raises(ValueError, match="query_api"):
        LocalGateway({"command_api": command_api}, secret=SECRET, cors_origins=[])
