"""The rebuild worker's and the admin API's adapters: each step and the EventBridge status event
reach their step, and operators release a claim over HTTP (200, 409, 422, 403)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from admin_api import handler as admin
from rebuild_worker import handler as worker

from orders_core import composition
from orders_core.domain.errors import RuleViolation
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.readmodels.port import ReadStore
from orders_core.tables import CUSTOMER_ORDERS, PROJECTIONS_CONTROL, TableSpec
from tests.support.apigw import FakeLambdaContext, http_event
from tests.support.rebuilds import PROJECTION, RebuildWorld

OPS: dict[str, Any] = {"user": "ops", "operator": True}


def status_event(rebuild_id: str, status: str) -> dict[str, Any]:
    """What EventBridge delivers for an execution of the rebuild state machine that ended."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:orders-rebuild:{rebuild_id}"
    return {
        "version": "0",
        "id": "5a4c8f3e-0000-4000-8000-000000000001",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-29T10:05:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:orders-rebuild",
            "name": rebuild_id,
            "status": status,
            "startDate": 1795860000000,
            "stopDate": 1795860300000,
            "input": json.dumps({"rebuild_id": rebuild_id, "projection": PROJECTION}),
            "output": None,
        },
    }


class Recorder:
    """Stands in for RebuildSteps: records which step was called with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> dict[str, Any]:
            self.calls.append((name, args))
            return {"step": name}

        return call


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"step": "begin", "rebuild_id": "r1"}, ("begin", ("r1",))),
        (
            {"step": "export_done", "rebuild_id": "r1", "export_arn": "arn:x/export/01-ab"},
            ("export_done", ("r1", "arn:x/export/01-ab")),
        ),
        ({"step": "shuffle", "rebuild_id": "r1", "key": "k"}, ("shuffle", ("r1", "k"))),
        ({"step": "apply_bucket", "rebuild_id": "r1", "bucket": 3}, ("apply_bucket", ("r1", 3))),
        ({"step": "verify", "rebuild_id": "r1"}, ("verify", ("r1",))),
        ({"step": "catch_up", "rebuild_id": "r1"}, ("catch_up", ("r1",))),
        ({"step": "switch", "rebuild_id": "r1"}, ("switch", ("r1",))),
        ({"step": "retire", "rebuild_id": "r1", "cursor": None}, ("retire", ("r1", None))),
        (
            {"step": "retire", "rebuild_id": "r1", "cursor": "WyIxIyIsInYiXQ"},
            ("retire", ("r1", "WyIxIyIsInYiXQ")),
        ),
        (
            {
                "step": "retirement_failed",
                "rebuild_id": "r1",
                "error": {"Error": "States.Timeout", "Cause": "c"},
            },
            ("retirement_failed", ("r1", "States.Timeout", "c")),
        ),
        (
            {"step": "abandon", "rebuild_id": "r1", "error": {"Error": "E", "Cause": "c"}},
            ("abandon", ("r1", "E", "c")),
        ),
        (status_event("r1", "ABORTED"), ("abandon_execution", ("r1", "ABORTED"))),
        (status_event("r1", "TIMED_OUT"), ("abandon_execution", ("r1", "TIMED_OUT"))),
    ],
)
def test_the_worker_hands_each_step_and_the_status_event_to_its_step(
    event: dict[str, Any], expected: tuple[str, tuple[Any, ...]]
) -> None:
    recorder = Recorder()
    assert worker.dispatch(event, recorder) == {"step": expected[0]}  # type: ignore[arg-type]
    assert recorder.calls == [expected]


def test_an_unknown_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown rebuild step"):
        worker.dispatch({"step": "rewind", "rebuild_id": "r1"}, Recorder())  # type: ignore[arg-type]


class Executions:
    def __init__(self) -> None:
        self.status: dict[str, str] = {}

    def start(self, rebuild_id: str, payload: dict[str, Any]) -> str:
        self.status[rebuild_id] = "RUNNING"
        return f"arn:aws:states:us-east-1:123456789012:execution:orders-rebuild:{rebuild_id}"

    def describe(self, rebuild_id: str) -> str:
        return self.status.get(rebuild_id, "NOT_FOUND")


@pytest.fixture
def world() -> Iterator[tuple[RebuildWorld, Executions]]:
    world = RebuildWorld()
    world.place_orders(3)
    others: dict[str, ReadStore] = {}
    stores = {PROJECTIONS_CONTROL.key: world.control_store, CUSTOMER_ORDERS.key: world.table}

    def read_store_for(spec: TableSpec) -> ReadStore:
        return stores.get(spec.key) or others.setdefault(spec.key, InMemoryReadStore())

    executions = Executions()
    composition.use(
        composition.Root(
            composition.Settings(),
            event_store=world.events,
            read_store_for=read_store_for,
            objects=world.objects,
            start_execution=executions.start,
            describe_execution=executions.describe,
        )
    )
    yield world, executions
    composition.use(None)


def admin_call(method: str, path: str, body: Any = None, **who: Any) -> tuple[int, Any]:
    event = http_event(method, path, body=body, **(who or OPS))
    response = admin.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_stopped_execution_s_event_abandons_its_run_through_the_worker(
    world: tuple[RebuildWorld, Executions],
) -> None:
    rebuilds, _ = world
    status, started = admin_call("POST", "/admin/rebuilds", {"projection": PROJECTION})
    assert status == 202
    rebuilds.run_until("apply_bucket", started["rebuild_id"])

    answer = worker.lambda_handler(status_event(started["rebuild_id"], "ABORTED"), FakeLambdaContext())

    assert answer["status"] == "FAILED" and answer["released"]
    status, run = admin_call("GET", f"/admin/rebuilds/{started['rebuild_id']}")
    assert (run["status"], run["error"]) == ("FAILED", "execution ABORTED")
    assert rebuilds.claim().building_rebuild_id is None and rebuilds.rows(2) == {}


def test_operators_release_a_claim_once_its_execution_has_ended(
    world: tuple[RebuildWorld, Executions],
) -> None:
    rebuilds, executions = world
    release = "/admin/rebuilds/release"
    # Nothing holds a claim yet: a clear 409; a projection nobody knows: 422; a customer: 403
    status, problem = admin_call("POST", release, {"projection": PROJECTION})
    assert status == 409 and "nothing to release" in problem["detail"]
    assert admin_call("POST", release, {"projection": "no-such-projection"})[0] == 422
    assert admin_call("POST", release, {"projection": PROJECTION, "force": True})[0] == 422
    assert admin_call("POST", release, {})[0] == 422
    assert admin_call("POST", release, {"projection": PROJECTION}, user="alice")[0] == 403

    # Given a rebuild whose execution runs
    _, started = admin_call("POST", "/admin/rebuilds", {"projection": PROJECTION})
    rebuild_id = started["rebuild_id"]
    rebuilds.run_until("begin", rebuild_id)

    # Then its claim is not released, and the refusal names the execution
    status, problem = admin_call("POST", release, {"projection": PROJECTION})
    assert status == 409 and f"execution:orders-rebuild:{rebuild_id}" in problem["detail"]
    assert rebuilds.claim().building_rebuild_id == rebuild_id

    # When its execution has timed out (and its event was lost), then it is
    executions.status[rebuild_id] = "TIMED_OUT"
    status, released = admin_call("POST", release, {"projection": PROJECTION})
    assert status == 200
    assert released == {
        "projection": PROJECTION,
        "rebuild_id": rebuild_id,
        "generation": 2,
        "execution_status": "TIMED_OUT",
        "released": True,
        "status": "FAILED",
    }
    assert admin_call("POST", "/admin/rebuilds", {"projection": PROJECTION})[0] == 202


def test_release_reads_the_execution_s_status_from_step_functions(moto_session: None) -> None:
    # Given the workflow on (moto's) Step Functions, as `orders serve` has it, and a run it started
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    waits = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    machine = stepfunctions.create_state_machine(
        name=f"rebuild-{uuid.uuid4().hex[:6]}",
        definition=json.dumps(waits),
        roleArn="arn:aws:iam::123456789012:role/rebuild",
    )["stateMachineArn"]
    rebuilds = RebuildWorld()
    root = composition.Root(
        composition.Settings.from_environ({"REBUILD_STATE_MACHINE_ARN": machine}),
        event_store=rebuilds.events,
        read_store_for=lambda spec: (
            rebuilds.control_store if spec.key == PROJECTIONS_CONTROL.key else rebuilds.table
        ),
        objects=rebuilds.objects,
    )
    run = root.rebuild_operations.start(PROJECTION)
    rebuilds.run_until("begin", run.rebuild_id)

    # Then its claim is kept while the execution runs, and released once it was stopped
    with pytest.raises(RuleViolation, match="still RUNNING"):
        root.rebuild_operations.release(PROJECTION)
    assert run.execution_arn
    stepfunctions.stop_execution(executionArn=run.execution_arn)
    released = root.rebuild_operations.release(PROJECTION)
    assert (released["execution_status"], released["status"]) == ("ABORTED", "FAILED")
    assert rebuilds.claim().building_rebuild_id is None
