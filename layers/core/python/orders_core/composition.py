"""The composition root: the one place that reads configuration and builds adapters.

`Settings` is read from the environment once, at cold start, into one typed object (the
environment-model pattern of the Lambda handler cookbook). `Root` builds every adapter and
service from it on first use, so each function builds only what its routes need; tests and the
local run hand `Root` the adapters they want instead (in-memory stores, a local workflow).
Handlers ask `root()` for one service and call it: nothing else in the code base makes clients.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orders_core.tables import (
    EVENTS,
    LIVE_CONNECTIONS,
    PROJECTIONS_CONTROL,
    READ_MODEL_TABLES,
    SNAPSHOTS,
    TableSpec,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_stepfunctions.client import SFNClient

    from orders_core.application import CommandService, WarningLog
    from orders_core.integration.port import EventBus
    from orders_core.integration.publisher import IntegrationPublisher
    from orders_core.live.notifier import LiveNotifier
    from orders_core.live.port import AlertMarkers, ConnectionStore, Pusher
    from orders_core.live.sessions import LiveSessions
    from orders_core.projections.base import Projection
    from orders_core.projections.control import ControlStore
    from orders_core.projections.fanout import Projector
    from orders_core.projections.live import LiveProjection
    from orders_core.projections.operations import ParkedCommits
    from orders_core.projections.parking import ParkingLot
    from orders_core.queries.orders import OrderQueries
    from orders_core.queries.read_models import ActiveReadModels
    from orders_core.queries.reports import Reports
    from orders_core.readmodels.port import ReadStore
    from orders_core.rebuild.endings import RunEndings
    from orders_core.rebuild.objects import ObjectStore
    from orders_core.rebuild.operations import DescribeExecution, RebuildOperations, StartExecution
    from orders_core.rebuild.runs import RunStore
    from orders_core.rebuild.steps import RebuildSteps
    from orders_core.snapshots.port import SnapshotStore
    from orders_core.store.port import EventStore


class ConfigurationError(RuntimeError):
    """The environment lacks a setting this function needs, or holds an unreadable one."""


def _parse_snapshot_every(raw: str) -> dict[str, int]:
    every: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, count = part.partition("=")
        if not name.strip() or not count.strip().isdigit():
            raise ValueError(f"SNAPSHOT_EVERY must look like 'order=100,product=500', not {raw!r}")
        every[name.strip()] = int(count)
    return every


class Settings(BaseModel):
    """Every setting of every function, by its environment variable; each function's stack
    construct sets the ones its code uses (infra/), and a missing one fails where it is needed."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # Table names by TableSpec.key (EVENTS_TABLE -> "events", ...).
    tables: dict[str, str] = Field(default_factory=dict)
    # Events between snapshots per aggregate type, such as "order=100,product=500" (0: never).
    snapshot_every: dict[str, int] = Field(default_factory=dict, alias="SNAPSHOT_EVERY")
    # How stale a projector's view of a read model's generations may be (rebuilds wait it out).
    projection_control_ttl_seconds: float = Field(default=10.0, ge=0, alias="PROJECTION_CONTROL_TTL_SECONDS")
    rebuild_bucket: str | None = Field(default=None, alias="REBUILD_BUCKET")
    rebuild_state_machine_arn: str | None = Field(default=None, alias="REBUILD_STATE_MACHINE_ARN")
    rebuild_export_poll_seconds: int = Field(default=30, ge=1, alias="REBUILD_EXPORT_POLL_SECONDS")
    # DescribeExport polls before the workflow gives up on an export (120 x 30 s: an hour).
    rebuild_export_poll_limit: int = Field(default=120, ge=1, alias="REBUILD_EXPORT_POLL_LIMIT")
    rebuild_retire_delay_seconds: int = Field(default=5, ge=0, alias="REBUILD_RETIRE_DELAY_SECONDS")
    rebuild_buckets: int = Field(default=8, ge=1, alias="REBUILD_BUCKETS")
    # The event bus integration events are published on (its name; the publisher function only).
    integration_event_bus: str | None = Field(default=None, alias="INTEGRATION_EVENT_BUS")
    # Live updates (ADR 14). The stage's @connections API, where the notifier pushes:
    # https://<api-id>.execute-api.<region>.amazonaws.com/<stage> (the local server's, locally).
    live_connections_endpoint: str | None = Field(default=None, alias="LIVE_CONNECTIONS_ENDPOINT")
    # What the $connect authorizer accepts: tokens of this issuer (the user pool) issued to one of
    # these app clients (comma-separated), as the HTTP API's JWT authorizer does.
    live_token_issuer: str | None = Field(default=None, alias="LIVE_TOKEN_ISSUER")
    live_token_client_ids: tuple[str, ...] = Field(default=(), alias="LIVE_TOKEN_CLIENT_IDS")

    @field_validator("live_token_client_ids", mode="before")
    @classmethod
    def _client_ids(cls, value: Any) -> Any:
        return (
            tuple(filter(None, (part.strip() for part in value.split(","))))
            if isinstance(value, str)
            else value
        )

    @field_validator("snapshot_every", mode="before")
    @classmethod
    def _snapshot_every(cls, value: Any) -> Any:
        return _parse_snapshot_every(value) if isinstance(value, str) else value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        specs = (EVENTS, SNAPSHOTS, PROJECTIONS_CONTROL, *READ_MODEL_TABLES, LIVE_CONNECTIONS)
        tables = {spec.key: environ[spec.env_var] for spec in specs if environ.get(spec.env_var)}
        values = {name: value for name, value in environ.items() if value != ""}
        try:
            return cls.model_validate({**values, "tables": tables})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ConfigurationError(f"unreadable settings: {problems}") from None

    def table(self, spec: TableSpec) -> str:
        try:
            return self.tables[spec.key]
        except KeyError:
            raise ConfigurationError(f"environment variable {spec.env_var} is not set") from None

    def has_table(self, spec: TableSpec) -> bool:
        return spec.key in self.tables


def dynamodb_client() -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling; AWS_ENDPOINT_URL (local run) is honoured by boto3.
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def events_client() -> EventBridgeClient:
    import boto3
    from botocore.config import Config

    # The publisher retries refused entries itself (orders_core.integration.publisher); beneath it
    # the SDK retries throttled requests. Short timeouts keep a batch well inside the function's.
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    return boto3.client("events", config=config)


_UNSET: Any = object()
# Scan pages (1,000 rows evaluated each) a release spends deleting the abandoned generation.
RELEASE_DELETE_PAGES = 10


class Root:
    """Builds each adapter and service once, on first use. Pass any adapter to use it instead."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        dynamodb: DynamoDBClient | None = None,
        event_store: EventStore | None = None,
        snapshot_store: SnapshotStore | None = _UNSET,
        read_store_for: Callable[[TableSpec], ReadStore] | None = None,
        objects: ObjectStore | None = None,
        start_execution: StartExecution | None = _UNSET,
        describe_execution: DescribeExecution | None = _UNSET,
        event_bus: EventBus | None = None,
        live_connections: ConnectionStore | None = None,
        live_alerts: AlertMarkers | None = None,
        pusher: Pusher | None = None,
        log: WarningLog | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_environ()
        self._dynamodb = dynamodb
        self._event_store = event_store
        self._snapshot_store = snapshot_store
        self._read_store_for = read_store_for
        self._objects = objects
        self._start_execution = start_execution
        self._describe_execution = describe_execution
        self._event_bus = event_bus
        self._live_connections = live_connections
        self._live_alerts = live_alerts
        self._pusher = pusher
        self._log = log
        self._read_stores: dict[str, ReadStore] = {}
        self._lock = threading.Lock()

    # -- adapters --------------------------------------------------------------------------------

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._dynamodb or dynamodb_client()

    @cached_property
    def event_store(self) -> EventStore:
        if self._event_store is not None:
            return self._event_store
        from orders_core.store.dynamodb import DynamoDBEventStore

        return DynamoDBEventStore(self.dynamodb, self.settings.table(EVENTS))

    @cached_property
    def snapshot_store(self) -> SnapshotStore | None:
        """Without SNAPSHOTS_TABLE aggregates are folded from events only (a stack without the
        table keeps working, loading long streams page by page)."""
        if self._snapshot_store is not _UNSET:
            store: SnapshotStore | None = self._snapshot_store
            return store
        if not self.settings.has_table(SNAPSHOTS):
            return None
        from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore

        return DynamoDBSnapshotStore(self.dynamodb, self.settings.table(SNAPSHOTS))

    def read_store(self, spec: TableSpec) -> ReadStore:
        with self._lock:
            if spec.key not in self._read_stores:
                if self._read_store_for is not None:
                    self._read_stores[spec.key] = self._read_store_for(spec)
                else:
                    from orders_core.readmodels.dynamodb import DynamoDBReadStore

                    self._read_stores[spec.key] = DynamoDBReadStore(self.dynamodb, self.settings.table(spec))
            return self._read_stores[spec.key]

    @cached_property
    def control(self) -> ControlStore:
        from orders_core.projections.control import ControlStore

        return ControlStore(self.read_store(PROJECTIONS_CONTROL))

    @cached_property
    def runs(self) -> RunStore:
        from orders_core.rebuild.runs import RunStore

        return RunStore(self.read_store(PROJECTIONS_CONTROL))

    def projection(self, name: str, generation: int) -> Projection:
        """Any registered projection at any generation, on its own table."""
        from orders_core.projections.registry import registration

        found = registration(name)
        return found.build(self.read_store(found.table), self.event_store, generation)

    # -- services ----------------------------------------------------------------------------------

    @cached_property
    def command_service(self) -> CommandService:
        from orders_core.application import CommandService

        return CommandService(
            self.event_store,
            snapshots=self.snapshot_store,
            snapshot_every=self.settings.snapshot_every,
            log=self._log,
        )

    @cached_property
    def read_models(self) -> ActiveReadModels:
        from orders_core.queries.read_models import ActiveReadModels

        return ActiveReadModels(self.control, self.projection)

    @cached_property
    def order_queries(self) -> OrderQueries:
        from orders_core.queries.orders import OrderQueries

        return OrderQueries(self.read_models, self.event_store, self.snapshot_store)

    @cached_property
    def reports(self) -> Reports:
        from orders_core.queries.reports import Reports

        return Reports(self.read_models)

    def live_projection(self, name: str) -> LiveProjection:
        """A read model as the stream feeds it: at every generation in use."""
        from orders_core.projections.live import LiveProjection
        from orders_core.projections.registry import registration

        registration(name)  # fail fast on a name that is not registered
        return LiveProjection(
            name,
            self.control,
            self.projection,
            control_ttl_seconds=self.settings.projection_control_ttl_seconds,
        )

    @cached_property
    def parking(self) -> ParkingLot:
        from orders_core.projections.parking import ParkingLot

        return ParkingLot(self.read_store(PROJECTIONS_CONTROL))

    @cached_property
    def projector(self) -> Projector:
        """What the events stream feeds: every registered read model, through one reader."""
        from orders_core.envelope import format_timestamp
        from orders_core.projections.fanout import PROJECTOR, Projector
        from orders_core.projections.registry import NAMES

        control = self.control
        return Projector(
            [self.live_projection(name) for name in NAMES],
            self.parking,
            now=lambda: format_timestamp(datetime.now(UTC)),
            heartbeat=lambda at_ms, lag_ms: control.record_batch(PROJECTOR, at_ms=at_ms, lag_ms=lag_ms),
        )

    @cached_property
    def event_bus(self) -> EventBus:
        if self._event_bus is not None:
            return self._event_bus
        from orders_core.integration.eventbridge import EventBridgeBus

        if not self.settings.integration_event_bus:
            raise ConfigurationError("environment variable INTEGRATION_EVENT_BUS is not set")
        return EventBridgeBus(events_client(), self.settings.integration_event_bus)

    @cached_property
    def integration_publisher(self) -> IntegrationPublisher:
        """What the events stream's second reader feeds: every order and product event, on the bus."""
        from orders_core.integration.publisher import IntegrationPublisher

        return IntegrationPublisher(self.event_bus)

    # -- live updates (ADR 14) ----------------------------------------------------------------------

    @cached_property
    def live_connections(self) -> ConnectionStore:
        if self._live_connections is not None:
            return self._live_connections
        from orders_core.live.dynamodb import DynamoDBConnectionStore

        return DynamoDBConnectionStore(self.dynamodb, self.settings.table(LIVE_CONNECTIONS))

    @cached_property
    def live_alerts(self) -> AlertMarkers:
        if self._live_alerts is not None:
            return self._live_alerts
        from orders_core.live.dynamodb import DynamoDBAlertMarkers

        return DynamoDBAlertMarkers(self.dynamodb, self.settings.table(LIVE_CONNECTIONS))

    @cached_property
    def pusher(self) -> Pusher:
        if self._pusher is not None:
            return self._pusher
        from orders_core.live.apigateway import ApiGatewayPusher, management_client

        if not self.settings.live_connections_endpoint:
            raise ConfigurationError("environment variable LIVE_CONNECTIONS_ENDPOINT is not set")
        return ApiGatewayPusher(management_client(self.settings.live_connections_endpoint))

    @cached_property
    def live_sessions(self) -> LiveSessions:
        """What $connect and $disconnect do: remember and forget connections."""
        from orders_core.live.sessions import LiveSessions

        return LiveSessions(self.live_connections)

    @cached_property
    def live_notifier(self) -> LiveNotifier:
        """What the order view's and inventory's streams feed: pushes to the live connections."""
        from orders_core.live.notifier import LiveNotifier
        from orders_core.web import OPERATORS_GROUP

        read_models = self.read_models

        def product_summary(product_id: str) -> dict[str, Any] | None:
            return read_models.inventory.get(product_id)

        return LiveNotifier(
            connections=self.live_connections,
            alerts=self.live_alerts,
            pusher=self.pusher,
            active_generation=read_models.active_generation,
            product_summary=product_summary,
            operators_group=OPERATORS_GROUP,
        )

    @cached_property
    def parked_commits(self) -> ParkedCommits:
        from orders_core.projections.operations import ParkedCommits
        from orders_core.projections.registry import NAMES

        events = self.event_store
        return ParkedCommits(
            NAMES,
            self.parking,
            self.live_projection,
            lambda stream_id, version: events.read_commits(stream_id, after_version=version - 1),
        )

    @cached_property
    def rebuild_steps(self) -> RebuildSteps:
        from orders_core.envelope import format_timestamp
        from orders_core.rebuild.steps import RebuildSteps

        settings = self.settings
        return RebuildSteps(
            control=self.control,
            runs=self.runs,
            objects=self.objects,
            events=self.event_store,
            projection_for=self.projection,
            read_store_for=self._read_model_store,
            now=lambda: format_timestamp(datetime.now(UTC)),
            export_poll_seconds=settings.rebuild_export_poll_seconds,
            export_poll_limit=settings.rebuild_export_poll_limit,
            # Longer than readers cache the active generation and projectors their control row.
            retire_delay_seconds=max(
                settings.rebuild_retire_delay_seconds, int(settings.projection_control_ttl_seconds) + 1
            ),
            buckets=settings.rebuild_buckets,
            # Every projector sees the claim before the export starts.
            claim_settle_seconds=int(settings.projection_control_ttl_seconds) + 1,
        )

    @cached_property
    def objects(self) -> ObjectStore:
        if self._objects is not None:
            return self._objects
        import boto3

        from orders_core.rebuild.objects import S3ObjectStore

        if not self.settings.rebuild_bucket:
            raise ConfigurationError("environment variable REBUILD_BUCKET is not set")
        return S3ObjectStore(boto3.client("s3"), self.settings.rebuild_bucket)

    @cached_property
    def rebuild_operations(self) -> RebuildOperations:
        from orders_core.projections.registry import NAMES
        from orders_core.rebuild.operations import RebuildOperations

        return RebuildOperations(
            self.control,
            self.runs,
            NAMES,
            self._workflow_starter(),
            describe_execution=self._execution_describer(),
            endings=self.rebuild_endings,
            parking=self.parking,
        )

    @cached_property
    def rebuild_endings(self) -> RunEndings:
        from orders_core.envelope import format_timestamp
        from orders_core.rebuild.endings import RunEndings

        return RunEndings(
            control=self.control,
            runs=self.runs,
            read_store_for=self._read_model_store,
            now=lambda: format_timestamp(datetime.now(UTC)),
            # An operator's release runs within one API request (API Gateway gives up after 30 s):
            # a smaller deletion budget than the worker's.
            delete_pages=RELEASE_DELETE_PAGES,
        )

    def _read_model_store(self, name: str) -> ReadStore:
        from orders_core.projections.registry import registration

        return self.read_store(registration(name).table)

    def _workflow_starter(self) -> StartExecution | None:
        if self._start_execution is not _UNSET:
            starter: StartExecution | None = self._start_execution
            return starter
        state_machine = self.settings.rebuild_state_machine_arn
        if not state_machine:
            # Absent where no workflow is deployed (a local run on an external endpoint): the other
            # admin routes still work, and starting a rebuild answers 503.
            return None
        client = self._stepfunctions

        def start(rebuild_id: str, payload: dict[str, Any]) -> str:
            reply = client.start_execution(
                stateMachineArn=state_machine, name=rebuild_id, input=json.dumps(payload)
            )
            return str(reply["executionArn"])

        return start

    def _execution_describer(self) -> DescribeExecution | None:
        if self._describe_execution is not _UNSET:
            describer: DescribeExecution | None = self._describe_execution
            return describer
        state_machine = self.settings.rebuild_state_machine_arn
        if not state_machine:
            return None
        client = self._stepfunctions
        # An execution's ARN is its state machine's with "execution" for "stateMachine" and its
        # name (the run's id) appended: arn:aws:states:<region>:<account>:execution:<machine>:<name>.
        prefix = state_machine.replace(":stateMachine:", ":execution:", 1) + ":"

        from botocore.exceptions import ClientError

        def describe(rebuild_id: str) -> str:
            try:
                return str(client.describe_execution(executionArn=prefix + rebuild_id)["status"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                    return "NOT_FOUND"  # the run's start failed before its execution existed
                raise

        return describe

    @cached_property
    def _stepfunctions(self) -> SFNClient:
        import boto3

        return boto3.client("stepfunctions")


_root: Root | None = None
_root_lock = threading.Lock()


def root(*, log: WarningLog | None = None) -> Root:
    """This process's root, built from the environment on first use (`log`: where the services
    write their warnings, given by the first function to ask)."""
    global _root
    with _root_lock:
        if _root is None:
            _root = Root(log=log)
        return _root


def use(replacement: Root | None) -> None:
    """Let tests and the local run choose the adapters (None: build from the environment again)."""
    global _root
    with _root_lock:
        _root = replacement
