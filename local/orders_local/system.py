"""The whole service on one machine: moto (or an external endpoint), the tables, the gateway."""

from __future__ import annotations

import errno
import importlib
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
from moto.core.config import default_user_config
from werkzeug.serving import BaseWSGIServer, get_sockaddr, make_server, select_address_family

from orders_core import composition
from orders_core.api_routes import ROUTES
from orders_core.tables import ALL_TABLES, EVENTS
from orders_local.gateway import ApiApplication, LambdaHandler, LocalGateway
from orders_local.gateway_process import GatewayProcess
from orders_local.live_server import LiveServer
from orders_local.moto_queries import install_partition_queries
from orders_local.moto_server import (
    install_cached_event_paths,
    install_cached_service_lookup,
    install_dynamodb_write_lock,
    install_light_queue_sends,
    install_light_stream_reads,
    start_moto,
)
from orders_local.projection_workers import ProjectionWorkers
from orders_local.rebuild_runner import ExecutionWatcher, create_state_machine, watch_executions
from orders_local.stream_readers import ReaderPlan, StreamReaders
from orders_local.tokens import load_or_create_secret

if TYPE_CHECKING:
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


def default_workers() -> int:
    """Instances per function when none are asked for: twice the cores this process may use, from
    2 to 8. An instance spends most of a request waiting for moto (in this process), so more
    instances than cores keep moto busy (on 2 cores, 4 per function answered 8 clients 1.5 times
    faster than 2); past 8, moto's one process is the limit anyway."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(8, 2 * cores)


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
        workers: int | None = None,
        live_port: int | None = None,
    ) -> None:
        """``workers``: instances per function, each a process (default: ``default_workers()``);
        0 runs every function in this process, one request at a time, as do ``handlers`` (callables
        that stand in for the functions, which cannot be sent to other processes)."""
        if workers is not None and workers < 0:
            raise ValueError("workers must be 0 (in this process) or more")
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
        self._application = ApiApplication()
        self._saved_env: dict[str, str | None] = {}
        self._saved_stepfunctions_config: Any = None  # moto's settings, as before the rebuilds
        self._run_projections = projections
        self.instances_per_function = 0 if handlers else (default_workers() if workers is None else workers)
        # With instances: the gateway and its instances, in processes of their own.
        self.gateway_process: GatewayProcess | None = None
        self.workers: ProjectionWorkers | None = None
        # Stands in for the stack's rule on the rebuild executions' status changes (rebuild_runner).
        self.rebuild_watcher: ExecutionWatcher | None = None
        # Live updates (ADR 14): the WebSocket API on live_port (0: any free port; None: off) and
        # the notifier's pollers on the order view's and inventory's streams.
        self.live_port = live_port
        self.live: LiveServer | None = None
        # The live notifier's pollers (on the read models' streams) and the events stream's second
        # reader, the integration publisher onto moto's EventBridge (ADR 15).
        self.stream_readers: StreamReaders | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._thread is not None or self.gateway_process is not None

    @property
    def moto_started(self) -> bool:
        return self._moto is not None

    @property
    def live_url(self) -> str:
        """ws://host:port/ of the live updates (clients append ?token=<jwt>)."""
        if self.live is None:
            raise RuntimeError("live updates are not running")
        return self.live.url

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("LocalSystem is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._http.port}"

    def instance_pids(self, function: str | None = None) -> list[int]:
        """The processes of the functions' live instances (of one function, or of all); none when
        the functions run in this process."""
        return self.gateway_process.instance_pids(function) if self.gateway_process is not None else []

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
            if self.live_port is not None and self._run_projections:  # nothing would feed it otherwise
                self.live = LiveServer(secret=self.secret, host=self.host, port=self.live_port).start()
                # Where the notifier's apigatewaymanagementapi client pushes: the local @connections API.
                self._set_env("LIVE_CONNECTIONS_ENDPOINT", self.live.management_url)
            # Every setting is in the environment now: compose once (the rebuild worker runs in
            # this process, called by moto's Step Functions). The gateway's and the projector's
            # processes start now, and take their settings from the same environment.
            composition.use(composition.Root(composition.Settings.from_environ()))
            separate = bool(self.instances_per_function)
            if separate:
                self.gateway_process = GatewayProcess(
                    listening_fd=self._http.socket.fileno(),
                    host=self.host,
                    port=self._http.port,
                    secret=self.secret,
                    cors_origins=self.cors_origins,
                    functions=sorted({route.function for route in ROUTES}),
                    per_function=self.instances_per_function,
                )
                self.gateway_process.launch()  # its instances' imports overlap the projector's start
            if self._run_projections:
                self.workers = ProjectionWorkers(
                    endpoint_url=self.endpoint_url,
                    events_table=self.table_names[EVENTS.key],
                    checkpoint_table=f"{self.table_prefix}-checkpoints",
                    failure_queue=f"{self.table_prefix}-projection-failures",
                    own_process=separate,
                )
                self.workers.start()
                plan = ReaderPlan(
                    endpoint_url=self.endpoint_url,
                    table_names=dict(self.table_names),
                    table_prefix=self.table_prefix,
                    live=self.live is not None,
                    # The bus and its archive live in our own moto (an external endpoint may lack them).
                    integration=self._moto is not None,
                )
                if plan.live or plan.integration:
                    self.stream_readers = StreamReaders(plan, own_process=separate)
                    self.stream_readers.start()
            if self.gateway_process is not None:
                self.gateway_process.wait_ready()  # it serves on our socket from now on
            else:
                self._application.gateway = LocalGateway(
                    self._load_handlers(), secret=self.secret, cors_origins=self.cors_origins
                )
                self._thread = threading.Thread(
                    target=self._http.serve_forever, name="orders-local-gateway", daemon=True
                )
                self._thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Idempotent; also cleans up after a start() that failed half-way. Leaves no process."""
        if self.stream_readers is not None:
            self.stream_readers.stop()
            self.stream_readers = None
        if self.live is not None:
            self.live.stop()  # before the routes' tables go: each open connection gets its $disconnect
            self.live = None
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self.rebuild_watcher is not None:
            self.rebuild_watcher.stop()
            self.rebuild_watcher = None
        if self.gateway_process is not None:
            # It stops serving, then stops its instances: a request still running is answered 500.
            self.gateway_process.stop()
            self.gateway_process = None
        if self._http is not None:
            if self._thread is not None:
                self._http.shutdown()  # serve_forever closes the socket on its way out
                self._thread.join()
            else:
                self._http.server_close()
        self._http = None
        self._thread = None
        self._application.gateway = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        composition.use(None)
        if self._saved_stepfunctions_config is not None:
            # The rebuilds turned on moto's execution of state machines, for this whole process.
            default_user_config["stepfunctions"] = self._saved_stepfunctions_config
            self._saved_stepfunctions_config = None
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
            server = make_server(self.host, self.port, self._application, threaded=True, fd=sock.fileno())
        finally:
            sock.close()  # the server holds its own duplicate of the descriptor
        return server

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
            install_cached_event_paths()
            install_light_queue_sends()
            install_light_stream_reads()
            install_cached_service_lookup()
            # An instance meeting an aggregate for the first time reads it with a Query: one
            # partition's worth of work, not a sort of the whole table (moto_queries).
            install_partition_queries()
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

        self._saved_stepfunctions_config = dict(default_user_config.get("stepfunctions", {}))
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
