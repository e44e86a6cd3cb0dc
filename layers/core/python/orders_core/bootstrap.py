"""Wires adapters from the environment: the only place that reads settings or makes clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orders_core.command_service import CommandService, WarningLog
from orders_core.envelope import format_timestamp
from orders_core.projections.base import Projection
from orders_core.projections.live import LiveProjection
from orders_core.projections.registry import registration
from orders_core.readmodels.dynamodb import DynamoDBReadStore
from orders_core.rebuild.control import ControlStore
from orders_core.rebuild.objects import S3ObjectStore
from orders_core.rebuild.steps import RebuildSteps
from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import EVENTS, PROJECTIONS_CONTROL, SNAPSHOTS, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class Settings:
    events_table: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        try:
            return cls(events_table=environ[EVENTS.env_var])
        except KeyError as missing:
            raise RuntimeError(f"environment variable {missing.args[0]} is not set") from None


def dynamodb_client() -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling; AWS_ENDPOINT_URL (local run) is honoured by boto3.
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def command_service(settings: Settings | None = None, *, log: WarningLog | None = None) -> CommandService:
    settings = settings or Settings.from_environ()
    client = dynamodb_client()
    return CommandService(
        DynamoDBEventStore(client, settings.events_table),
        snapshots=snapshot_store(client),
        snapshot_every=snapshot_every(),
        log=log,
    )


def snapshot_store(
    client: DynamoDBClient | None = None, environ: Mapping[str, str] = os.environ
) -> DynamoDBSnapshotStore | None:
    """The snapshots table named by SNAPSHOTS_TABLE; without it, aggregates are folded from events only
    (a stack that does not have the table yet keeps working, loading long streams page by page)."""
    name = environ.get(SNAPSHOTS.env_var)
    return DynamoDBSnapshotStore(client or dynamodb_client(), name) if name else None


def snapshot_every(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """SNAPSHOT_EVERY, such as "order=100,product=500": events between snapshots per aggregate
    type (0 turns a type off; unnamed types get the service's default)."""
    raw = environ.get("SNAPSHOT_EVERY", "").strip()
    every: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, count = part.partition("=")
        if not name.strip() or not count.strip().isdigit():
            raise RuntimeError(f"SNAPSHOT_EVERY must look like 'order=100,product=500', not {raw!r}")
        every[name.strip()] = int(count)
    return every


def table_name(spec: TableSpec, environ: Mapping[str, str] = os.environ) -> str:
    try:
        return environ[spec.env_var]
    except KeyError:
        raise RuntimeError(f"environment variable {spec.env_var} is not set") from None


def read_store(spec: TableSpec, client: DynamoDBClient | None = None) -> DynamoDBReadStore:
    return DynamoDBReadStore(client or dynamodb_client(), table_name(spec))


def projection_factory(client: DynamoDBClient | None = None) -> Callable[[str, int], Projection]:
    """Builds any registered projection at any generation, on its DynamoDB table."""
    client = client or dynamodb_client()
    events = DynamoDBEventStore(client, table_name(EVENTS))

    def build(name: str, generation: int) -> Projection:
        found = registration(name)
        return found.build(read_store(found.table, client), events, generation)

    return build


def control_store(client: DynamoDBClient | None = None) -> ControlStore:
    return ControlStore(read_store(PROJECTIONS_CONTROL, client))


def live_projection(name: str) -> LiveProjection:
    """What the stream feeds: the named projection at every generation in use."""
    registration(name)  # fail fast on a name that is not registered
    client = dynamodb_client()
    return LiveProjection(name, control_store(client), projection_factory(client))


def rebuild_steps() -> RebuildSteps:
    import boto3

    client = dynamodb_client()
    bucket = os.environ.get("REBUILD_BUCKET")
    if not bucket:
        raise RuntimeError("environment variable REBUILD_BUCKET is not set")
    return RebuildSteps(
        control=control_store(client),
        objects=S3ObjectStore(boto3.client("s3"), bucket),
        events=DynamoDBEventStore(client, table_name(EVENTS)),
        projection_for=projection_factory(client),
        read_store_for=lambda name: read_store(registration(name).table, client),
        now=lambda: format_timestamp(datetime.now(UTC)),
        export_poll_seconds=int(os.environ.get("REBUILD_EXPORT_POLL_SECONDS", "30")),
        retire_delay_seconds=int(os.environ.get("REBUILD_RETIRE_DELAY_SECONDS", "5")),
        buckets=int(os.environ.get("REBUILD_BUCKETS", "8")),
    )
