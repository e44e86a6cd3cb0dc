"""The WebSocket API on one machine: what API Gateway's WebSocket API does for live updates.

`LiveServer` serves `ws://<host>:<port>/?token=<jwt>` with the `websockets` library and stands in
for API Gateway around the same route function the stack deploys (functions/live_api):

* **Handshake.** The token comes as `?token=` (browsers cannot set headers on a WebSocket). A
  missing, expired or forged one is refused with HTTP 401 before the upgrade, and nothing else
  is sent: what API Gateway answers when the identity source is missing or the Lambda authorizer
  says "Unauthorized". Tokens are the local ones (orders_local.tokens), as the local HTTP gateway
  checks them; the identity they carry reaches the routes as the stack's authorizer passes it
  (orders_core.live.identity).
* **Routes.** $connect runs before the upgrade (a failure refuses the handshake with its
  status), $disconnect after the connection closed, $default for every client message; each gets
  API Gateway's WebSocket event shape (`requestContext.routeKey`, `connectionId`, `authorizer`).
* **The @connections API** on a second, plain HTTP port (`management_url`, the stage URL a
  notifier's `apigatewaymanagementapi` client is pointed at): `POST /@connections/{id}` sends the
  body as one text frame, `DELETE` closes the connection, `GET` describes it; a connection that
  is not open answers 410 GoneException, as on AWS, also while its $connect is still running.
* **Limits.** Messages up to 128 KB either way (larger ones: 413 for a push, close code 1009 for a
  client's); a connection is closed (1001) after 2 hours. The 10-minute idle timeout, throttling
  and the 500 new connections per second are not modelled.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve
from werkzeug.serving import BaseWSGIServer, make_server

from orders_core.live.identity import Identity, NoIdentity, identity_from_claims
from orders_core.live.port import CONNECTION_LIFETIME_SECONDS
from orders_local.lambda_events import DEFAULT_ACCOUNT_ID, FakeLambdaContext
from orders_local.tokens import InvalidToken, verify_token

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

RouteHandler = Callable[[dict[str, Any], Any], Any]

DEFAULT_LIVE_PORT = 8001
API_ID = "local-live"
STAGE = "local"
# API Gateway's message payload limit for WebSocket APIs (frames are at most 32 KB; a message
# may span frames up to this).
MAX_MESSAGE_BYTES = 128 * 1024
_CONNECTIONS_PATH = re.compile(r"(?:/[^/@]+)?/@connections/(?P<connection_id>[^/]+)")


class LivePortInUse(OSError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"live updates: port {port} on {host} is already in use")
        self.host = host
        self.port = port


@dataclass
class _Client:
    connection_id: str
    identity: Identity
    connected_at: float  # epoch seconds
    source_ip: str
    user_agent: str
    socket: ServerConnection | None = None
    # websockets refuses two threads sending on one connection at once: pushes take turns.
    sending: threading.Lock = field(default_factory=threading.Lock)
    last_active_at: float = 0.0


def _default_route_handler() -> RouteHandler:
    from live_api.handler import lambda_handler

    return lambda_handler


class LiveServer:
    """`start()` binds both ports (0: any free one) and serves in background threads; `stop()`
    closes every connection (1001) and both ports."""

    def __init__(
        self,
        *,
        secret: str,
        host: str = "127.0.0.1",
        port: int = DEFAULT_LIVE_PORT,
        route_handler: RouteHandler | None = None,
        max_connection_seconds: float = CONNECTION_LIFETIME_SECONDS,
    ) -> None:
        self.host = host
        self.port = port
        self._secret = secret
        self._route_handler = route_handler
        self._max_connection_seconds = max_connection_seconds
        self._server: Server | None = None
        self._management: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._opening: dict[ServerConnection, _Client] = {}
        self._open: dict[str, _Client] = {}

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL, without its `?token=`."""
        if self._server is None:
            raise RuntimeError("LiveServer is not started")
        return f"ws://{self._display_host}:{self._server.socket.getsockname()[1]}/"

    def url_with_token(self, token: str) -> str:
        return f"{self.url}?token={token}"

    @property
    def management_url(self) -> str:
        """The stage URL of the local @connections API (an `apigatewaymanagementapi` endpoint)."""
        if self._management is None:
            raise RuntimeError("LiveServer is not started")
        return f"http://{self._display_host}:{self._management.port}/{STAGE}"

    @property
    def _display_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def open_connections(self) -> list[str]:
        with self._lock:
            return sorted(self._open)

    def start(self) -> LiveServer:
        if self._server is not None:
            raise RuntimeError("LiveServer is already started")
        if self._route_handler is None:
            self._route_handler = _default_route_handler()
        try:
            self._server = serve(
                self._session,
                sock=self._bind(),
                process_request=self._handshake,
                max_size=MAX_MESSAGE_BYTES,
                logger=logging.getLogger("orders_local.live_server.websockets"),
            )
            self._management = make_server(self.host, 0, self._manage, threaded=True)
        except BaseException:
            self.stop()
            raise
        for name, target in (
            ("orders-live-websocket", self._server.serve_forever),
            ("orders-live-management", self._management.serve_forever),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("live updates on %s (management %s)", self.url, self.management_url)
        return self

    def stop(self) -> None:
        """Idempotent. Open connections are closed with 1001 and get their $disconnect."""
        if self._server is not None:
            self._server.shutdown()  # closes every connection and waits for their handlers
            self._server = None
        if self._management is not None:
            if self._threads:
                self._management.shutdown()
            self._management.server_close()
            self._management = None
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise LivePortInUse(self.host, self.port) from exc
            raise
        return sock

    # -- the WebSocket side -----------------------------------------------------------------------

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Authorize, then run $connect, before the upgrade; a refusal sends only its status."""
        token = (parse_qs(urlsplit(request.path).query).get("token") or [""])[0]
        try:
            identity = identity_from_claims(verify_token(token, secret=self._secret)) if token else None
        except (InvalidToken, NoIdentity) as exc:
            logger.info("live connection refused: %s", getattr(exc, "reason", exc))
            identity = None
        if identity is None:
            return _json_response(HTTPStatus.UNAUTHORIZED, {"message": "Unauthorized"})
        address = connection.remote_address
        client = _Client(
            connection_id=_new_connection_id(),
            identity=identity,
            connected_at=time.time(),
            source_ip=str(address[0]) if address else "",
            user_agent=request.headers.get("User-Agent", ""),
        )
        try:
            reply = self._route("$connect", client, headers=request.headers, query=token)
        except Exception:
            logger.exception("$connect failed for %s", client.connection_id)
            return _json_response(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal server error"})
        status = int(reply.get("statusCode", 200)) if isinstance(reply, Mapping) else 200
        if not 200 <= status < 300:
            return _json_response(HTTPStatus(status), {"message": HTTPStatus(status).phrase})
        with self._lock:
            self._opening[connection] = client
        return None

    def _session(self, connection: ServerConnection) -> None:
        with self._lock:
            client = self._opening.pop(connection)
            client.socket = connection
            client.last_active_at = time.time()
            self._open[client.connection_id] = client
        closes_at = time.monotonic() + self._max_connection_seconds
        try:
            while True:
                remaining = closes_at - time.monotonic()
                if remaining <= 0:
                    connection.close(1001, "Going away")  # API Gateway's 2-hour limit
                    break
                try:
                    message = connection.recv(timeout=remaining)
                except TimeoutError:
                    continue
                client.last_active_at = time.time()
                self._route("$default", client, body=message)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("live connection %s failed", client.connection_id)
        finally:
            with self._lock:
                self._open.pop(client.connection_id, None)
            try:
                self._route("$disconnect", client, close_code=connection.close_code)
            except Exception:
                logger.exception("$disconnect failed for %s", client.connection_id)

    def _route(
        self,
        route_key: str,
        client: _Client,
        *,
        headers: Headers | None = None,
        query: str | None = None,
        body: str | bytes | None = None,
        close_code: int | None = None,
    ) -> Any:
        assert self._route_handler is not None
        event = _route_event(
            route_key, client, headers=headers, token=query, body=body, close_code=close_code
        )
        context = FakeLambdaContext(
            function_name="live_api",
            aws_request_id=event["requestContext"]["requestId"],
            invoked_function_arn=f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:live_api",
        )
        return self._route_handler(event, context)

    # -- the @connections API ---------------------------------------------------------------------

    def _manage(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = _CONNECTIONS_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if found is None:
            return _wsgi_json(start_response, HTTPStatus.NOT_FOUND, {"message": "Not Found"})
        with self._lock:
            client = self._open.get(found["connection_id"])
        method = environ.get("REQUEST_METHOD", "")
        if client is None or client.socket is None:
            return _wsgi_json(start_response, HTTPStatus.GONE, {"message": None}, error_type="GoneException")
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_MESSAGE_BYTES:
                return _wsgi_json(
                    start_response,
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"message": f"Message too long: at most {MAX_MESSAGE_BYTES} bytes"},
                    error_type="PayloadTooLargeException",
                )
            data = environ["wsgi.input"].read(length)
            try:
                with client.sending:
                    client.socket.send(_as_frame(data))
            except ConnectionClosed:
                return _wsgi_json(
                    start_response, HTTPStatus.GONE, {"message": None}, error_type="GoneException"
                )
            return _wsgi_json(start_response, HTTPStatus.OK, None)
        if method == "DELETE":
            client.socket.close(1000)
            return _wsgi_json(start_response, HTTPStatus.NO_CONTENT, None)
        if method == "GET":
            return _wsgi_json(
                start_response,
                HTTPStatus.OK,
                {
                    "connectedAt": _iso(client.connected_at),
                    "identity": {"sourceIp": client.source_ip, "userAgent": client.user_agent},
                    "lastActiveAt": _iso(client.last_active_at),
                },
            )
        return _wsgi_json(start_response, HTTPStatus.METHOD_NOT_ALLOWED, {"message": "Method Not Allowed"})


def _new_connection_id() -> str:
    # API Gateway's ids are short opaque strings; these are as unguessable.
    return secrets.token_urlsafe(12)


def _as_frame(data: bytes) -> str | bytes:
    """A text frame for UTF-8 (every message here is JSON), a binary one otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _route_event(
    route_key: str,
    client: _Client,
    *,
    headers: Headers | None,
    token: str | None,
    body: str | bytes | None,
    close_code: int | None,
) -> dict[str, Any]:
    """The event API Gateway's WebSocket API passes to a Lambda proxy integration."""
    now = time.time()
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    request_context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "messageDirection": "IN",
        "stage": STAGE,
        "apiId": API_ID,
        "domainName": "localhost",
        "connectionId": client.connection_id,
        "connectedAt": int(client.connected_at * 1000),
        "requestId": str(uuid.uuid4()),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": client.source_ip, "userAgent": client.user_agent},
        # What the stack's authorizer returns as context, with its principalId, for every route.
        "authorizer": {"principalId": client.identity.subject, **client.identity.authorizer_context()},
    }
    event: dict[str, Any] = {"requestContext": request_context, "isBase64Encoded": False}
    if route_key == "$connect":
        event["headers"] = dict(headers.raw_items()) if headers is not None else {}
        event["queryStringParameters"] = {"token": token} if token else {}
    if route_key == "$disconnect":
        request_context["disconnectStatusCode"] = close_code
        request_context["disconnectReason"] = ""
    if body is not None:
        event["body"] = body if isinstance(body, str) else body.decode("utf-8", errors="replace")
    return event


def _json_response(status: HTTPStatus, payload: Mapping[str, Any]) -> Response:
    body = json.dumps(payload).encode()
    headers = Headers(
        [
            ("Date", datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")),
            ("Connection", "close"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _wsgi_json(
    start_response: StartResponse, status: HTTPStatus, payload: Any, *, error_type: str | None = None
) -> list[bytes]:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if error_type is not None:
        # How the @connections API names its errors (botocore reads the code from this header).
        headers.append(("x-amzn-ErrorType", error_type))
    start_response(f"{status.value} {status.phrase}", headers)
    return [body]


def _iso(epoch_seconds: float) -> str:
    return (
        datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
