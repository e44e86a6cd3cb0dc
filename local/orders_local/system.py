"""The whole service on one machine: moto (or an external endpoint), the tables, the gateway."""

from __future__ import annotations

import errno
import importlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from werkzeug.serving import BaseWSGIServer, get_sockaddr, make_server, select_address_family

from orders_core import composition
from orders_core.api_routes import ROUTES
from orders_core.tables import ALL_TABLES, EVENTS
from orders_local.gateway import LambdaHandler, LocalGateway
from orders_local.moto_server import install_dynamodb_write_lock, start_moto
from orders_local.openapi import build_openapi
from orders_local.projection_workers import ProjectionWorkers
from orders_local.rebuild_runner import ExecutionWatcher, create_state_machine, watch_executions
from orders_local.tokens import load_or_create_secret

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from moto.server import ThreadedMotoServer

logger = logging.getLogger(__name__)

DEFAULT_CORS_ORIGINS: tuple[str, ...] = ("http://localhost:3000", "http://127.0.0.1:3000")
# Credentials moto accepts; forced when we run moto so real credentials are never used to sign.
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class CannotListen(OSError):
    """The API's address could not be bound (bad host, privileged port, ...)."""

    def __init__(self, host: str, port: int, code: int | None, reason: str) -> None:
        super().__init__(code, reason)
        self.host = host
        self.port = port


class PortInUse(CannotListen):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, errno.EADDRINUSE, f"port {port} on {host} is already in use")


class UnsupportedEndpoint(Exception):
    """AWS_ENDPOINT_URL cannot be reached, or lacks a service the local run needs (one line, for the user)."""


# Error codes with which endpoints say "no such operation/service"; messages are matched too, since
# emulators differ (DynamoDB Local answers UnknownOperationException, others a 400 with some text).
_UNKNOWN_OPERATION_CODES = frozenset(
    {
        "UnknownOperationException",
        "UnknownOperation",
        "InvalidAction",
        "NotImplemented",
        "NotImplementedException",
        "UnsupportedOperation",
        "UnsupportedOperationException",
        "UnrecognizedClientException",
        "404",
        "501",
    }
)
_UNKNOWN_OPERATION_TEXT = re.compile(
    r"unknown (operation|action|service)|not (implemented|supported)|unrecognized|invalid action", re.I
)
_RUN_EMBEDDED = "run `orders serve` without AWS_ENDPOINT_URL (embedded moto)"
# A probe should answer (or fail) in seconds, not after botocore's default minute-long retries.
_PROBE_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})


def probe_endpoint(
    endpoint_url: str,
    *,
    projections: bool,
    client: Callable[[str], Any] | None = None,
) -> str | None:
    """What keeps ``orders serve`` from running on an external endpoint, as one line; None if nothing.

    One cheap call per service the run needs: DynamoDB always; DynamoDB Streams (the projector's
    poller) and SQS (its on-failure queue) only with the read models. ``client(service)`` builds the
    clients (tests pass stubbed or fake ones)."""

    def default_client(service: Any) -> Any:
        return boto3.client(service, endpoint_url=endpoint_url, config=_PROBE_CONFIG)

    make = client or default_client
    checks: list[tuple[str, str, Callable[[Any], object]]] = [
        ("dynamodb", "DynamoDB", lambda c: c.list_tables(Limit=1)),
    ]
    if projections:
        checks += [
            ("dynamodbstreams", "DynamoDB Streams", lambda c: c.list_streams(Limit=1)),
            ("sqs", "SQS", lambda c: c.list_queues()),
        ]
    for service, label, call in checks:
        advice = _RUN_EMBEDDED if service == "dynamodb" else f"{_RUN_EMBEDDED} or add --no-projections"
        try:
            call(make(service))
        except BotoConnectionError as exc:
            reason = _one_line(exc)
            return f"cannot reach {endpoint_url} (AWS_ENDPOINT_URL): {reason}; start it, or {_RUN_EMBEDDED}"
        except ClientError as exc:
            if _is_unknown_operation(exc):
                return f"this endpoint ({endpoint_url}) has no {label}: {advice}"
            error = exc.response.get("Error", {})
            detail = _one_line(f"{error.get('Code', 'error')} {error.get('Message', '')}")
            return f"this endpoint ({endpoint_url}) refused the {label} probe ({detail}): {advice}"
        except BotoCoreError as exc:
            # An answer botocore cannot read: something else than this service is listening there.
            return f"this endpoint ({endpoint_url}) has no {label} ({_one_line(exc)}): {advice}"
    return None


def _is_unknown_operation(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    return code.rsplit("#", 1)[-1] in _UNKNOWN_OPERATION_CODES or bool(
        _UNKNOWN_OPERATION_TEXT.search(f"{code} {error.get('Message', '')}")
    )


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


class LocalSystem:
    """Start with ``start()`` or ``with LocalSystem(...) as system:``; ``system.url`` is the API."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
        secret: str | None = None,
        handlers: Mapping[str, LambdaHandler] | None = None,
        table_prefix: str = "orders",
        projections: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.cors_origins = tuple(cors_origins)
        self.secret = secret if secret is not None else load_or_create_secret()
        self._handler_overrides = dict(handlers or {})
        self.table_prefix = table_prefix
        self.endpoint_url: str | None = None
        self.table_names: dict[str, str] = {}
        self._moto: ThreadedMotoServer | None = None
        self._http: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._gateway: LocalGateway | None = None
        self._saved_env: dict[str, str | None] = {}
        self._run_projections = projections
        self._openapi: bytes | None = None
        self.workers: ProjectionWorkers | None = None
        # Stands in for the stack's rule on the rebuild executions' status changes (rebuild_runner).
        self.rebuild_watcher: ExecutionWatcher | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def moto_started(self) -> bool:
        return self._moto is not None

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("LocalSystem is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._http.port}"

    def start(self) -> LocalSystem:
        if self._http is not None:
            raise RuntimeError("LocalSystem is already started")
        try:
            # Bound first: a busy port should fail in milliseconds, before moto and imports.
            self._http = self._bind_http_server()
            self._prepare_aws()
            if self._moto is None:
                # An external endpoint: say what it lacks now, rather than fail half-way through.
                assert self.endpoint_url is not None
                problem = probe_endpoint(self.endpoint_url, projections=self._run_projections)
                if problem is not None:
                    raise UnsupportedEndpoint(problem)
            self._create_tables()
            if self._run_projections and self._moto is not None:
                # The workflow's worker can only run inside our own moto.
                self._prepare_rebuilds()
            # Every setting is in the environment now: compose once, before the first request.
            composition.use(composition.Root(composition.Settings.from_environ()))
            self._gateway = LocalGateway(
                self._load_handlers(), secret=self.secret, cors_origins=self.cors_origins
            )
            self._thread = threading.Thread(
                target=self._http.serve_forever, name="orders-local-gateway", daemon=True
            )
            self._thread.start()
            if self._run_projections:
                self.workers = ProjectionWorkers(
                    endpoint_url=self.endpoint_url,
                    events_table=self.table_names[EVENTS.key],
                    checkpoint_table=f"{self.table_prefix}-checkpoints",
                    failure_queue=f"{self.table_prefix}-projection-failures",
                )
                self.workers.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Idempotent; also cleans up after a start() that failed half-way."""
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self.rebuild_watcher is not None:
            self.rebuild_watcher.stop()
            self.rebuild_watcher = None
        if self._http is not None:
            if self._thread is not None:
                self._http.shutdown()  # serve_forever closes the socket on its way out
                self._thread.join()
            else:
                self._http.server_close()
        self._http = None
        self._thread = None
        self._gateway = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        composition.use(None)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def __enter__(self) -> LocalSystem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- steps --------------------------------------------------------------------------------------

    def _bind_http_server(self) -> BaseWSGIServer:
        # werkzeug's make_server prints to stderr and calls sys.exit(1) when it cannot bind; binding
        # the socket here and handing it over keeps errors as exceptions the caller can report.
        family = select_address_family(self.host, self.port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(get_sockaddr(self.host, self.port, family))
                sock.listen(128)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(self.host, self.port) from exc
                reason = f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                raise CannotListen(self.host, self.port, exc.errno, reason) from exc
            # Requests that arrive before the gateway is ready wait in the listen backlog.
            server = make_server(self.host, self.port, self._serve, threaded=True, fd=sock.fileno())
        finally:
            sock.close()  # the server holds its own duplicate of the descriptor
        return server

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/openapi.json" and environ.get("REQUEST_METHOD") == "GET":
            # Served beside the API, without auth, so that tools and people can read the contract.
            if self._openapi is None:
                self._openapi = json.dumps(build_openapi()).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [self._openapi]
        gateway = self._gateway
        if gateway is None:
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"message":"Service Unavailable"}']
        return gateway(environ, start_response)

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _prepare_aws(self) -> None:
        # The gateway logs one line per request itself; werkzeug's own access log would double it.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        external = os.environ.get("AWS_ENDPOINT_URL")
        if external:
            self.endpoint_url = external
            # Local emulators want some credentials; keep whatever the user has configured.
            if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
                for name, value in MOTO_CREDENTIALS.items():
                    self._set_env(name, value)
        else:
            install_dynamodb_write_lock()
            self._moto, self.endpoint_url = start_moto(0)
            self._set_env("AWS_ENDPOINT_URL", self.endpoint_url)
            for name, value in MOTO_CREDENTIALS.items():
                self._set_env(name, value)
            if "AWS_SESSION_TOKEN" in os.environ:
                self._saved_env.setdefault("AWS_SESSION_TOKEN", os.environ.pop("AWS_SESSION_TOKEN"))
            # moto's Step Functions tasks call back to localhost:$MOTO_PORT in server mode.
            self._set_env("MOTO_PORT", self.endpoint_url.rsplit(":", 1)[1])
        region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._set_env("AWS_DEFAULT_REGION", region)
        if not os.environ.get("AWS_REGION"):
            self._set_env("AWS_REGION", region)  # Lambda sets it; Powertools and handlers may read it
        self._set_env("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
        if "POWERTOOLS_METRICS_DISABLED" not in os.environ:
            # The functions print their metrics to stdout as EMF JSON; locally nothing collects them.
            self._set_env("POWERTOOLS_METRICS_DISABLED", "true")

    def _create_tables(self) -> None:
        client: Any = boto3.client("dynamodb", endpoint_url=self.endpoint_url)
        for spec in ALL_TABLES:
            name = spec.local_name(self.table_prefix)
            try:
                client.create_table(**spec.create_table_request(name))
                logger.info("created table %s", name)
            except client.exceptions.ResourceInUseException:
                logger.info("table %s already exists", name)
            client.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
            self.table_names[spec.key] = name
            self._set_env(spec.env_var, name)

    def _prepare_rebuilds(self) -> None:
        """The rebuild workflow on moto's Step Functions, its export bucket, its worker in-process,
        and the stand-in for the rule that abandons runs whose execution stopped, timed out or failed."""
        from rebuild_worker.handler import lambda_handler as rebuild_worker

        region = os.environ["AWS_DEFAULT_REGION"]
        bucket = f"{self.table_prefix}-rebuild-exports"
        self._set_env("REBUILD_BUCKET", bucket)
        self._set_env("REBUILD_EXPORT_POLL_SECONDS", os.environ.get("REBUILD_EXPORT_POLL_SECONDS", "1"))
        self._set_env("REBUILD_RETIRE_DELAY_SECONDS", os.environ.get("REBUILD_RETIRE_DELAY_SECONDS", "2"))
        # A rebuild waits this out between its claim and its export: short, for a local run.
        self._set_env("PROJECTION_CONTROL_TTL_SECONDS", os.environ.get("PROJECTION_CONTROL_TTL_SECONDS", "1"))
        stepfunctions = boto3.client("stepfunctions", endpoint_url=self.endpoint_url)
        arn = create_state_machine(
            stepfunctions=stepfunctions,
            dynamodb=boto3.client("dynamodb", endpoint_url=self.endpoint_url),
            s3=boto3.client("s3", endpoint_url=self.endpoint_url),
            events_table=self.table_names[EVENTS.key],
            bucket=bucket,
            region=region,
            worker=rebuild_worker,
            name=f"{self.table_prefix}-rebuild",
        )
        self._set_env("REBUILD_STATE_MACHINE_ARN", arn)
        self.rebuild_watcher = watch_executions(stepfunctions, arn, rebuild_worker)

    def _load_handlers(self) -> dict[str, LambdaHandler]:
        handlers = dict(self._handler_overrides)
        for function in sorted({route.function for route in ROUTES} - handlers.keys()):
            # Imported only for the functions not overridden, and only once the port is bound (see
            # start()). Importing a handler module creates no clients and reads no settings: its
            # services are built on first use.
            module = importlib.import_module(f"{function}.handler")
            handlers[function] = module.lambda_handler
        return handlers
