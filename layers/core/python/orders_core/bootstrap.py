"""Wires adapters from the environment: the only place that reads settings or makes clients."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orders_core.command_service import CommandService
from orders_core.projections.base import Projection
from orders_core.projections.registry import registration
from orders_core.readmodels.dynamodb import DynamoDBReadStore
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import EVENTS, TableSpec

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


def command_service(settings: Settings | None = None) -> CommandService:
    settings = settings or Settings.from_environ()
    return CommandService(DynamoDBEventStore(dynamodb_client(), settings.events_table))


def table_name(spec: TableSpec, environ: Mapping[str, str] = os.environ) -> str:
    try:
        return environ[spec.env_var]
    except KeyError:
        raise RuntimeError(f"environment variable {spec.env_var} is not set") from None


def read_store(spec: TableSpec, client: DynamoDBClient | None = None) -> DynamoDBReadStore:
    return DynamoDBReadStore(client or dynamodb_client(), table_name(spec))


def projection(name: str, generation: int = 1) -> Projection:
    """The named projection on its DynamoDB table, reading gaps from the events table."""
    client = dynamodb_client()
    found = registration(name)
    events = DynamoDBEventStore(client, table_name(EVENTS))
    return found.build(read_store(found.table, client), events, generation)
