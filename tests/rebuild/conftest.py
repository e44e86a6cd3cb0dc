"""A whole local system in-process on moto: tables, live projections, the rebuild workflow, and the
stand-in for the rule that abandons runs whose execution stopped, timed out or failed."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from admin_api import handler as admin
from projections.handler import handler_for
from rebuild_worker import handler as worker

from command_api import handler as commands
from orders_core import composition
from orders_core.envelope import envelopes_of
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import ALL_TABLES, EVENTS
from orders_local.moto_server import install_dynamodb_write_lock
from orders_local.rebuild_runner import ExecutionWatcher, create_state_machine, watch_executions
from orders_local.stream_poller import InMemoryCheckpointStore, PollerSettings, StreamPoller
from query_api import handler as queries
from tests.support.apigw import FakeLambdaContext, http_event

# Powertools keeps the current request in class attributes: one API call at a time, as the local
# gateway does. Stream pollers and the workflow's worker do not use the resolvers.
_api_lock = threading.Lock()


class LocalStack:
    def __init__(
        self, dynamodb: Any, names: dict[str, str], stepfunctions: Any, watcher: ExecutionWatcher
    ) -> None:
        self.dynamodb = dynamodb
        self.names = names
        self.stepfunctions = stepfunctions
        self.watcher = watcher
        self.events = DynamoDBEventStore(dynamodb, names[EVENTS.key])
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = dynamodb.describe_table(TableName=names[EVENTS.key])["Table"]["LatestStreamArn"]
        # One reader of the stream for every read model, as the stack has.
        self.pollers = {
            "projector": StreamPoller(
                f"projector-{uuid.uuid4().hex[:6]}",
                streams_client=streams,
                stream_arn=arn,
                handler=handler_for(composition.root().projector),
                checkpoints=InMemoryCheckpointStore(),
                settings=PollerSettings(batch_size=100, poll_interval_seconds=0.05),
            )
        }

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        target = {"GET": queries, "POST": commands, "PUT": commands}[method]
        if path.startswith("/admin"):
            target = admin
        with _api_lock:
            response = target.lambda_handler(http_event(method, path, **kwargs), FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])

    def log(self) -> list[Any]:
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.names[EVENTS.key], ProjectionExpression="stream_id"
        )
        streams = sorted({item["stream_id"]["S"] for page in pages for item in page["Items"]})
        return [e for s in streams for e in envelopes_of(self.events.read_commits(s))]

    def drain(self) -> None:
        for poller in self.pollers.values():
            poller.drain(timeout=60)


@pytest.fixture
def local_stack(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    # Live projections and the workflow's workers write the same rows from several threads, and
    # moto checks conditions without a lock: give it DynamoDB's atomicity, as `orders serve` does.
    install_dynamodb_write_lock()
    suffix = uuid.uuid4().hex[:6]
    names = {}
    for spec in ALL_TABLES:
        names[spec.key] = f"{spec.key}-{suffix}"
        dynamodb.create_table(**spec.create_table_request(names[spec.key]))
        monkeypatch.setenv(spec.env_var, names[spec.key])
    bucket = f"exports-{suffix}"
    monkeypatch.setenv("REBUILD_BUCKET", bucket)
    monkeypatch.setenv("REBUILD_EXPORT_POLL_SECONDS", "1")
    monkeypatch.setenv("REBUILD_RETIRE_DELAY_SECONDS", "1")
    # A rebuild waits out how long projectors cache the control row: keep it short here.
    monkeypatch.setenv("PROJECTION_CONTROL_TTL_SECONDS", "0.5")
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    arn = create_state_machine(
        stepfunctions=stepfunctions,
        dynamodb=dynamodb,
        s3=boto3.client("s3", region_name="us-east-1"),
        events_table=names[EVENTS.key],
        bucket=bucket,
        region="us-east-1",
        worker=worker.lambda_handler,
        name=f"rebuild-{suffix}",
        # Well above a local run's half minute, and both maps as wide as a local plan.
        timeout_seconds=600,
        shuffle_concurrency=4,
        apply_concurrency=8,
    )
    monkeypatch.setenv("REBUILD_STATE_MACHINE_ARN", arn)
    composition.use(None)
    # The status-change rule's stand-in: stopped, timed-out and failed executions reach the worker.
    watcher = watch_executions(stepfunctions, arn, worker.lambda_handler)
    stack = LocalStack(dynamodb, names, stepfunctions, watcher)
    for poller in stack.pollers.values():
        poller.start()
    yield stack
    watcher.stop()
    for poller in stack.pollers.values():
        poller.stop()
    composition.use(None)
