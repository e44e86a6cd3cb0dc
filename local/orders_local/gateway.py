"""A WSGI stand-in for API Gateway HTTP API (payload format 2.0) in front of the Lambda handlers.

It reproduces what the handlers and a browser can observe of the deployed API: route matching and
its 404s, the JWT authorizer's 401, CORS preflights, the v2.0 event and response mapping, and the
500 a crashed function turns into. Tokens are the locally signed ones from ``orders_local.tokens``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

from werkzeug.wrappers import Request, Response

from orders_core.api_routes import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    ROUTES,
    Route,
)
from orders_local.lambda_events import DEFAULT_ACCOUNT_ID, FakeLambdaContext, http_api_event
from orders_local.tokens import InvalidToken, verify_token

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

LambdaHandler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)


class _BadLambdaResponse(Exception):
    """The function returned something API Gateway cannot map (it answers 500 for that too)."""


class IntegrationTimeout(Exception):
    """The function did not answer in time (API Gateway gives up after 30 s and answers 503)."""


@dataclass(frozen=True)
class _RouteMatcher:
    route: Route
    # One entry per path segment: the literal text, or None where a {parameter} goes.
    literals: tuple[str | None, ...]
    names: tuple[str | None, ...]

    @classmethod
    def compile(cls, route: Route) -> _RouteMatcher:
        parts = route.path.strip("/").split("/")
        names = tuple(p[1:-1] if p.startswith("{") and p.endswith("}") else None for p in parts)
        literals = tuple(None if n is not None else p for p, n in zip(parts, names, strict=True))
        return cls(route, literals, names)

    def match(self, raw_segments: Sequence[str]) -> dict[str, str] | None:
        if len(raw_segments) != len(self.literals):
            return None
        params: dict[str, str] = {}
        for raw, literal, name in zip(raw_segments, self.literals, self.names, strict=True):
            if not raw:
                return None
            if name is not None:
                params[name] = unquote(raw)
            elif unquote(raw) != literal:
                return None
        return params


# API Gateway prefers the most specific route: literal segments win over {parameters}.
_MATCHERS = tuple(
    sorted((_RouteMatcher.compile(r) for r in ROUTES), key=lambda m: sum(n is not None for n in m.names))
)


def match_route(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The route HTTP API picks for a request, with its decoded path parameters; None for its 404."""
    if not raw_path.startswith("/"):
        return None
    # Not stripped: "/orders/" and "//orders" have an empty segment and so match nothing, as on AWS.
    segments = raw_path[1:].split("/")
    for matcher in _MATCHERS:
        if matcher.route.method != method:
            continue
        params = matcher.match(segments)
        if params is not None:
            return matcher.route, params
    # A known path with another method is also a 404 on HTTP API (it has no 405).
    return None


class LocalGateway:
    """WSGI application: ``make_server(host, port, LocalGateway(...))`` or werkzeug's test ``Client``."""

    def __init__(
        self,
        handlers: Mapping[str, LambdaHandler],
        *,
        secret: str,
        cors_origins: Sequence[str],
        max_body_bytes: int = 1_048_576,
        one_at_a_time: bool = True,
    ) -> None:
        """``one_at_a_time``: the handlers run in this process, so invocations take turns (see
        below); False for handlers that each stand for instances of their own (orders_local.instances)."""
        self._handlers = dict(handlers)
        self._secret = secret
        self._cors_origins = frozenset(cors_origins)
        self._max_body_bytes = max_body_bytes
        missing = {r.function for r in ROUTES} - self._handlers.keys()
        if missing:
            raise ValueError(f"no handler for function(s): {', '.join(sorted(missing))}")
        # A Lambda instance serves one request at a time, and handler code relies on it: Powertools'
        # resolvers keep the current event in class attributes shared by every resolver. Handlers
        # in this process are one instance: the threaded server would otherwise interleave
        # requests inside that state. An instance pool keeps each of its processes to one itself.
        self._invocation_lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if one_at_a_time else contextlib.nullcontext()
        )
        self._region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._account_id = os.environ.get("AWS_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        request_id = _new_request_id()
        started = time.monotonic()
        response = self._dispatch(request, request_id)
        response.headers["apigw-requestid"] = request_id
        self._add_cors_headers(request, response)
        logger.info(
            '%s "%s %s" %d %.0fms',
            request_id,
            request.method,
            _raw_path(environ),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response(environ, start_response)

    # -- request handling ---------------------------------------------------------------------------

    def _dispatch(self, request: Request, request_id: str) -> Response:
        if request.method == "OPTIONS":
            # API Gateway answers preflights itself and never routes them to the integration.
            return self._preflight(request)
        raw_path = _raw_path(request.environ)
        matched = match_route(request.method, raw_path)
        if matched is None:
            return _message(404, "Not Found")
        route, path_params = matched

        if request.content_length is not None and request.content_length > self._max_body_bytes:
            return _message(413, "Request Entity Too Large")
        body = request.stream.read(self._max_body_bytes + 1)
        if len(body) > self._max_body_bytes:
            return _message(413, "Request Entity Too Large")

        try:
            claims = verify_token(_bearer_token(request), secret=self._secret)
        except InvalidToken as exc:
            response = _message(401, "Unauthorized")
            # The shape of HTTP API's JWT authorizer challenge; the reason helps when debugging locally.
            response.headers["www-authenticate"] = (
                f'Bearer scope="" error="invalid_token" error_description="{exc.reason}"'
            )
            return response

        event = self._build_event(request, route, path_params, claims, body, raw_path, request_id)
        return self._invoke(route, event)

    def _invoke(self, route: Route, event: dict[str, Any]) -> Response:
        handler = self._handlers[route.function]
        context = FakeLambdaContext(
            function_name=route.function,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:{self._region}:{self._account_id}:function:{route.function}",
            log_group_name=f"/aws/lambda/{route.function}",
        )
        try:
            with self._invocation_lock:
                result = handler(event, context)
        except IntegrationTimeout as exc:
            logger.error("%s did not answer %s: %s", route.function, route.route_key, exc)
            return _message(503, "Service Unavailable")
        except Exception:
            logger.exception("%s raised while handling %s", route.function, route.route_key)
            return _message(500, "Internal Server Error")
        try:
            return _to_response(result)
        except _BadLambdaResponse as exc:
            logger.error("%s returned a response API Gateway cannot map: %s", route.function, exc)
            return _message(500, "Internal Server Error")

    # -- the v2.0 event -----------------------------------------------------------------------------

    def _build_event(
        self,
        request: Request,
        route: Route,
        path_params: dict[str, str],
        claims: Mapping[str, Any],
        body: bytes,
        raw_path: str,
        request_id: str,
    ) -> dict[str, Any]:
        environ = request.environ
        source_ip = str(environ.get("REMOTE_ADDR") or "127.0.0.1")
        headers = {name.lower(): value for name, value in request.headers.items()}
        # HTTP API moves cookies out of the headers into their own list.
        cookie_header = headers.pop("cookie", "")
        cookies = [c.strip() for c in cookie_header.split(";") if c.strip()]
        headers.setdefault("x-forwarded-for", source_ip)
        headers.setdefault("x-forwarded-proto", str(environ.get("wsgi.url_scheme", "http")))
        headers.setdefault("x-forwarded-port", str(environ.get("SERVER_PORT", "80")))
        headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}")

        raw_query = _wsgi_str(environ.get("QUERY_STRING", ""))
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(key, []).append(value)

        return http_api_event(
            route_key=route.route_key,
            method=request.method,
            raw_path=raw_path,
            raw_query_string=raw_query,
            query_string_parameters={k: ",".join(v) for k, v in query.items()},
            headers=headers,
            cookies=cookies,
            claims=claims,
            path_parameters=path_params,
            body=body or None,
            request_id=request_id,
            received_at=datetime.now(UTC),
            source_ip=source_ip,
            protocol=str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
            account_id=self._account_id,
        )

    # -- CORS ---------------------------------------------------------------------------------------

    def _allowed_origin(self, request: Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin and ("*" in self._cors_origins or origin in self._cors_origins):
            return origin
        return None

    def _preflight(self, request: Request) -> Response:
        response = Response(status=204)
        del response.headers["Content-Type"]  # an empty 204 has no media type
        origin = self._allowed_origin(request)
        if origin is not None and request.headers.get("Access-Control-Request-Method"):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ",".join(CORS_ALLOW_METHODS)
            response.headers["Access-Control-Allow-Headers"] = ",".join(CORS_ALLOW_HEADERS)
            response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
            response.vary.add("Origin")
        return response

    def _add_cors_headers(self, request: Request, response: Response) -> None:
        if request.method == "OPTIONS":
            return
        # With CORS configured, API Gateway discards CORS headers from the integration and uses its own.
        for name in {n for n, _ in response.headers.items() if n.lower().startswith("access-control-")}:
            del response.headers[name]
        origin = self._allowed_origin(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = ",".join(CORS_EXPOSE_HEADERS)
            response.vary.add("Origin")


class ApiApplication:
    """What the local API's HTTP server serves: the gateway, once it is set, and the contracts
    beside it, without auth, so that tools and people can read them: the OpenAPI document at
    /openapi.json, the AsyncAPI document at /asyncapi.yaml (live updates, integration events) and
    the event schemas it references. Until the gateway is set, requests are answered 503."""

    def __init__(self, gateway: LocalGateway | None = None) -> None:
        self.gateway = gateway
        self._openapi: bytes | None = None
        self._contracts: dict[str, tuple[str, bytes]] | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/openapi.json" and environ.get("REQUEST_METHOD") == "GET":
            if self._openapi is None:
                from orders_local.openapi import build_openapi

                self._openapi = json.dumps(build_openapi()).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [self._openapi]
        if environ.get("REQUEST_METHOD") == "GET":
            if self._contracts is None:
                from orders_local.asyncapi import served_documents

                self._contracts = served_documents()
            contract = self._contracts.get(str(environ.get("PATH_INFO", "")))
            if contract is not None:
                media_type, body = contract
                start_response("200 OK", [("Content-Type", media_type)])
                return [body]
        gateway = self.gateway
        if gateway is None:
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"message":"Service Unavailable"}']
        return gateway(environ, start_response)


# -- helpers ----------------------------------------------------------------------------------------


def _new_request_id() -> str:
    # API Gateway's request ids look like "JKJaXmPLvHcESHA=": base64 of 10 random bytes.
    return base64.b64encode(secrets.token_bytes(10)).decode("ascii")


def _wsgi_str(value: str) -> str:
    # WSGI carries raw bytes as latin-1 code points; undo that to get the text the client sent.
    return value.encode("latin-1").decode("utf-8", errors="replace")


def _raw_path(environ: WSGIEnvironment) -> str:
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw_uri:
        return _wsgi_str(str(raw_uri)).split("?", 1)[0]
    # Servers without RAW_URI give only the decoded path; re-encoding it is the best we can do.
    return quote(str(environ.get("PATH_INFO", "/")).encode("latin-1"), safe="/:@!$&'()*+,;=-._~")


def _bearer_token(request: Request) -> str:
    value = request.headers.get("Authorization", "").strip()
    if not value:
        raise InvalidToken("missing Authorization header")
    scheme, _, rest = value.partition(" ")
    # The JWT authorizer accepts the token with or without the "Bearer " prefix.
    token = rest.strip() if scheme.lower() == "bearer" else value
    if not token:
        raise InvalidToken("empty bearer token")
    return token


def _message(status: int, message: str) -> Response:
    return Response(json.dumps({"message": message}), status=status, mimetype="application/json")


def _to_response(result: Any) -> Response:
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 treats any other JSON value as the body of a 200 response.
        try:
            text = json.dumps(result)
        except (TypeError, ValueError) as exc:
            raise _BadLambdaResponse(f"result is not JSON serializable: {exc}") from exc
        return Response(text, status=200, mimetype="application/json")

    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int | str) or not str(status).isdigit():
        raise _BadLambdaResponse(f"statusCode {status!r} is not an integer")
    status_code = int(status)
    if not 100 <= status_code <= 599:
        raise _BadLambdaResponse(f"statusCode {status_code} is out of range")

    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise _BadLambdaResponse(f"body must be a string, got {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise _BadLambdaResponse("isBase64Encoded is true but body is not base64") from exc
    else:
        payload = body.encode("utf-8")

    response = Response(payload, status=status_code)
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    cookies = result.get("cookies") or []
    if not isinstance(headers, dict) or not isinstance(multi, dict) or not isinstance(cookies, list):
        raise _BadLambdaResponse("headers/multiValueHeaders must be objects and cookies a list")
    for name, value in headers.items():
        response.headers[str(name)] = _header_value(value)
    for name, values in multi.items():
        if name.lower() in {n.lower() for n in headers}:
            continue
        if not isinstance(values, list):
            raise _BadLambdaResponse(f"multiValueHeaders[{name!r}] must be a list")
        response.headers.remove(str(name))
        for value in values:
            response.headers.add(str(name), _header_value(value))
    for cookie in cookies:
        response.headers.add("Set-Cookie", str(cookie))
    return response


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
