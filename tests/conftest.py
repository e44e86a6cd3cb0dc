"""Shared fixtures: one moto mock for the whole run, a fresh table per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

# Unit and integration tests never reach AWS: fake credentials, fixed region, and stream
# calls that moto understands in-process.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture(scope="session")
def moto_session() -> Iterator[None]:
    from moto import mock_aws

    from orders_local.moto_server import install_dynamodb_write_lock

    # Atomic conditional writes, and transactions that do not deep-copy every table they touch
    # (moto's own do, and keep the copies: gigabytes over a long run).
    install_dynamodb_write_lock()
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(moto_session: None) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def events_table(dynamodb: Any) -> str:
    from orders_core.tables import EVENTS

    name = f"events-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**EVENTS.create_table_request(name))
    return name


@pytest.fixture
def snapshots_table(dynamodb: Any) -> str:
    from orders_core.tables import SNAPSHOTS

    name = f"snapshots-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**SNAPSHOTS.create_table_request(name))
    return name
