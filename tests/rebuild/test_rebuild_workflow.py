"""Rebuilding read models with the shared workflow on moto, while commands keep arriving."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from rebuild_worker import handler as worker_handler

from orders_core.projections.registry import NAMES
from orders_core.rebuild.steps import RebuildSteps
from orders_local.rebuild_runner import LostResponse
from tests.rebuild.conftest import LocalStack
from tests.support import oracle
from tests.support.counting import scan_all

ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}
OPS = {"user": "op", "operator": True}


def write_history(stack: LocalStack, rng: random.Random, orders: int) -> list[str]:
    placed = []
    for product in ("sku-1", "sku-2", "sku-3"):
        stack.call("POST", f"/inventory/{product}/stock", body={"quantity": 500}, **OPS)
    for n in range(orders):
        customer = f"c{n % 7}"
        items = [
            {"product_id": f"sku-{rng.randint(1, 3)}", "quantity": rng.randint(1, 4), "unit_price": "7.25"}
            for _ in range(rng.randint(1, 3))
        ]
        status, body = stack.call(
            "POST", "/orders", body={"items": items, "shipping_address": ADDRESS}, user=customer
        )
        assert status == 201, body
        placed.append((body["order_id"], customer))
        roll = rng.random()
        if roll < 0.3:
            item = {"product_id": "sku-2", "quantity": 1, "unit_price": "2.00"}
            stack.call("POST", f"/orders/{body['order_id']}/items", body=item, user=customer)
        elif roll < 0.5:
            stack.call("POST", f"/orders/{body['order_id']}/ship", body={"tracking_number": f"T{n}"}, **OPS)
        elif roll < 0.6:
            stack.call("POST", f"/orders/{body['order_id']}/cancel", body={"reason": "no"}, user=customer)
    return [order_id for order_id, _ in placed]


def wait_for_run(stack: LocalStack, rebuild_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, run = stack.call("GET", f"/admin/rebuilds/{rebuild_id}", **OPS)
        assert status == 200, run
        if run["status"] != "RUNNING":
            return run
        time.sleep(0.2)
    raise AssertionError(f"rebuild {rebuild_id} still running after {timeout}s: {run}")


def projection_state(stack: LocalStack, name: str) -> tuple[int, int | None]:
    """(active generation, generation being built) of one read model."""
    status, projections = stack.call("GET", "/admin/projections", **OPS)
    assert status == 200, projections
    state = {p["projection"]: p for p in projections["projections"]}[name]
    return state["active_generation"], state["building_generation"]


def rows_of_generation(stack: LocalStack, table: str, generation: int) -> list[Any]:
    return scan_all(
        stack.dynamodb,
        TableName=stack.names[table],
        FilterExpression="begins_with(pk, :g)",
        ExpressionAttributeValues={":g": {"S": f"{generation}#"}},
    )


def execution_status(stack: LocalStack, run: dict[str, Any], timeout: float = 30) -> str:
    """How the run's execution ended (the run's record may be final a step before the execution:
    a retried last step, the Succeed state)."""
    deadline = time.monotonic() + timeout
    while True:
        status = str(stack.stepfunctions.describe_execution(executionArn=run["execution_arn"])["status"])
        if status != "RUNNING" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def start_rebuild(stack: LocalStack, projection: str) -> str:
    status, started = stack.call("POST", "/admin/rebuilds", body={"projection": projection}, **OPS)
    assert status == 202, started
    return str(started["rebuild_id"])


def assert_views_equal_a_fold_of_the_log(stack: LocalStack) -> None:
    from orders_core import composition

    log = [e for e in stack.log() if e.stream_id.startswith(("order-", "product-"))]
    views = composition.root().read_models
    for order_id, expected in oracle.order_views(log).items():
        view = views.orders.get(order_id)
        assert view is not None and view.to_json() == expected, order_id
    for day, expected in oracle.daily_sales(log).items():
        assert {k: v for k, v in (views.sales.get(day) or {}).items() if k != "revision"} == expected
    for product, expected in oracle.inventory(log).items():
        assert {k: v for k, v in (views.inventory.get(product) or {}).items() if k != "revision"} == expected
    for customer, expected in oracle.customer_summaries(log).items():
        assert {k: v for k, v in (views.summaries.get(customer) or {}).items() if k != "revision"} == expected
    for product, expected in oracle.product_sales(log).items():
        figures = views.product_sales.get(product) or {}
        assert {k: v for k, v in figures.items() if k != "revision"} == expected, product


def test_rebuilding_every_read_model_under_live_traffic_loses_and_doubles_nothing(
    local_stack: LocalStack,
) -> None:
    # Given a log of some thousands of events, projected live
    rng = random.Random(21)
    order_ids = write_history(local_stack, rng, orders=550)
    local_stack.drain()

    # While commands and queries keep arriving...
    stop = threading.Event()
    query_failures: list[Any] = []
    queries_made = [0]

    def keep_commanding() -> None:
        n = 0
        while not stop.is_set():
            write_history(local_stack, random.Random(n), orders=1)
            n += 1
            # Live traffic, not a flood: on one in-process moto the one projector applies every
            # read model in turn and summaries still re-read their partition (ADR 11), so a
            # writer at full speed would outrun it and no catch-up could ever finish.
            stop.wait(0.05)

    def keep_querying() -> None:
        while not stop.is_set():
            order_id = rng.choice(order_ids)
            for path, who in (
                (f"/orders/{order_id}", OPS),
                ("/admin/projections", OPS),
                ("/customers/me/summary", {"user": "c1"}),
            ):
                status, body = local_stack.call("GET", path, **who)
                queries_made[0] += 1
                if status != 200:
                    query_failures.append((path, status, body))
            time.sleep(0.01)

    workers = [threading.Thread(target=keep_commanding), threading.Thread(target=keep_querying)]
    for thread in workers:
        thread.start()
    try:
        # ...an operator rebuilds every projection, one after the other
        runs = []
        for name in NAMES:
            status, started = local_stack.call("POST", "/admin/rebuilds", body={"projection": name}, **OPS)
            assert status == 202 and started["status"] == "RUNNING"
            run = wait_for_run(local_stack, started["rebuild_id"])
            assert run["status"] == "SUCCEEDED", (run["projection"], run["phase"], run["error"])
            runs.append(run)
    finally:
        stop.set()
        for thread in workers:
            thread.join()
    local_stack.drain()

    # Then each read model moved to generation 2 and equals an independent fold of the whole log
    status, projections = local_stack.call("GET", "/admin/projections", **OPS)
    assert {p["projection"]: p["active_generation"] for p in projections["projections"]} == dict.fromkeys(
        NAMES, 2
    )
    assert all(run["events_processed"] > 2_000 and run["generation"] == 2 for run in runs), [
        (run["projection"], run["events_processed"], run["generation"], run["files_processed"])
        for run in runs
    ]
    assert_views_equal_a_fold_of_the_log(local_stack)
    # And no query failed during the runs
    assert queries_made[0] > 50 and query_failures == []
    # And the old generation is gone
    for name in ("customer_orders", "inventory"):
        table = local_stack.names[name]
        old = scan_all(
            local_stack.dynamodb,
            TableName=table,
            FilterExpression="begins_with(pk, :g)",
            ExpressionAttributeValues={":g": {"S": "1#"}},
        )
        assert old == []


def test_a_run_that_fails_midway_leaves_readers_on_the_old_generation(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_ids = write_history(local_stack, random.Random(4), orders=30)
    local_stack.drain()
    status, before = local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS)
    assert status == 200
    original = RebuildSteps.apply_bucket

    def broken(self: RebuildSteps, rebuild_id: str, bucket: int) -> dict[str, int]:
        if bucket == 5:
            raise RuntimeError("disk on fire")
        return original(self, rebuild_id, bucket)

    monkeypatch.setattr(RebuildSteps, "apply_bucket", broken)

    status, started = local_stack.call(
        "POST", "/admin/rebuilds", body={"projection": "customer_orders"}, **OPS
    )
    run = wait_for_run(local_stack, started["rebuild_id"])

    # On AWS the apply map fails with its child (no tolerated failures); moto's Distributed Map
    # reports success, and the verify step's count is what fails the run: either way, FAILED.
    assert run["status"] == "FAILED"
    assert "disk on fire" in run["error"] or "1 of 8 buckets were not applied" in run["error"], run["error"]
    _, projections = local_stack.call("GET", "/admin/projections", **OPS)
    state = {p["projection"]: p for p in projections["projections"]}["customer_orders"]
    assert (state["active_generation"], state["building_generation"]) == (1, None)
    assert local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS) == (200, before)
    # The partial generation was removed; a new run can start again
    partial = scan_all(
        local_stack.dynamodb,
        TableName=local_stack.names["customer_orders"],
        FilterExpression="begins_with(pk, :g)",
        ExpressionAttributeValues={":g": {"S": "2#"}},
    )
    assert partial == []
    monkeypatch.setattr(RebuildSteps, "apply_bucket", original)
    status, again = local_stack.call("POST", "/admin/rebuilds", body={"projection": "customer_orders"}, **OPS)
    assert status == 202
    assert wait_for_run(local_stack, again["rebuild_id"])["status"] == "SUCCEEDED"


def test_a_second_rebuild_of_the_same_projection_is_refused_while_one_runs(local_stack: LocalStack) -> None:
    write_history(local_stack, random.Random(9), orders=5)
    _, first = local_stack.call("POST", "/admin/rebuilds", body={"projection": "inventory"}, **OPS)
    time.sleep(0.5)  # let the workflow claim its generation
    status, refused = local_stack.call("POST", "/admin/rebuilds", body={"projection": "inventory"}, **OPS)
    assert status == 409 and "still running" in refused["detail"]
    assert wait_for_run(local_stack, first["rebuild_id"])["status"] == "SUCCEEDED"
    status, unknown = local_stack.call("POST", "/admin/rebuilds", body={"projection": "nope"}, **OPS)
    assert status == 422 and unknown["errors"][0]["field"] == "projection"
    assert (
        local_stack.call("POST", "/admin/rebuilds", body={"projection": "inventory"}, user="alice")[0] == 403
    )


def test_every_step_retried_after_it_succeeded_switches_once_and_doubles_nothing(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a log projected live
    write_history(local_stack, random.Random(7), orders=60)
    local_stack.drain()
    # When every step (each file, bucket and retire page too) does its work and then its answer is
    # lost once, as when Lambda's reply does not reach Step Functions (Lambda.ServiceException,
    # which every task retries)
    original = worker_handler.dispatch
    answered: set[tuple[Any, ...]] = set()
    lost: Counter[str] = Counter()
    lock = threading.Lock()

    def answer_lost_once(event: dict[str, Any], target: RebuildSteps) -> dict[str, Any]:
        result = original(event, target)
        step = event.get("step")
        if step is None:  # a status-change event: not a step of the workflow
            return result
        key = (step, event.get("key"), event.get("bucket"), event.get("cursor"))
        with lock:
            first = key not in answered
            answered.add(key)
            if first:
                lost[step] += 1
        if first:
            raise LostResponse(f"{step} ran; its answer was lost")
        return result

    monkeypatch.setattr(worker_handler, "dispatch", answer_lost_once)
    # sales_analytics: a summary kept by deltas, where a commit applied twice would show in its sums
    rebuild_id = start_rebuild(local_stack, "sales_analytics")
    run = wait_for_run(local_stack, rebuild_id, timeout=240)

    # Then the run succeeded, every step having run at least twice
    assert run["status"] == "SUCCEEDED", (run["phase"], run["error"])
    assert execution_status(local_stack, run) == "SUCCEEDED"
    assert set(lost) >= {
        "begin",
        "export_done",
        "shuffle",
        "apply_bucket",
        "verify",
        "catch_up",
        "switch",
        "retire",
    }, lost
    assert lost["apply_bucket"] == 8
    # And readers switched once: to generation 2, nothing left claimed (a second claim would be 3)
    assert run["generation"] == 2
    assert projection_state(local_stack, "sales_analytics") == (2, None)
    # And nothing was doubled: every read model equals an independent fold of the log
    local_stack.drain()
    assert_views_equal_a_fold_of_the_log(local_stack)
    assert rows_of_generation(local_stack, "sales_analytics", 1) == []
    # And the stand-in for the status-change rule had nothing to do
    assert [e for e in local_stack.watcher.delivered if e["detail"]["name"] == rebuild_id] == []


def test_a_failure_after_the_switch_leaves_readers_switched_and_the_run_succeeded(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_ids = write_history(local_stack, random.Random(5), orders=30)
    local_stack.drain()
    status, before = local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS)
    assert status == 200

    def broken(self: RebuildSteps, rebuild_id: str, cursor: str | None = None) -> dict[str, Any]:
        raise RuntimeError("the old generation will not go")

    monkeypatch.setattr(RebuildSteps, "retire", broken)
    rebuild_id = start_rebuild(local_stack, "customer_orders")
    run = wait_for_run(local_stack, rebuild_id)

    # The execution and the run succeeded: readers are on the new generation, whatever retire did
    assert execution_status(local_stack, run) == "SUCCEEDED"
    assert run["status"] == "SUCCEEDED", (run["phase"], run["error"])
    assert "will not go" in str(run.get("retirement")), run
    assert projection_state(local_stack, "customer_orders") == (2, None)
    assert local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS) == (200, before)
    # The old generation is left (invisible to readers), not half-abandoned
    assert rows_of_generation(local_stack, "customer_orders", 1) != []
    assert rows_of_generation(local_stack, "customer_orders", 2) != []
    assert [e for e in local_stack.watcher.delivered if e["detail"]["name"] == rebuild_id] == []


def test_a_stopped_execution_is_abandoned_without_an_operator(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_ids = write_history(local_stack, random.Random(11), orders=30)
    local_stack.drain()
    status, before = local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS)
    assert status == 200
    original = RebuildSteps.apply_bucket
    applying = threading.Event()

    def slow(self: RebuildSteps, rebuild_id: str, bucket: int) -> dict[str, int]:
        applying.set()
        time.sleep(3)
        return original(self, rebuild_id, bucket)

    monkeypatch.setattr(RebuildSteps, "apply_bucket", slow)
    rebuild_id = start_rebuild(local_stack, "customer_orders")
    assert applying.wait(90), "the run never reached the apply"

    # When someone stops the execution while buckets are being applied (no Abandon step runs)
    _, running = local_stack.call("GET", f"/admin/rebuilds/{rebuild_id}", **OPS)
    local_stack.stepfunctions.stop_execution(
        executionArn=running["execution_arn"], error="Operator", cause="stopped mid-apply"
    )
    run = wait_for_run(local_stack, rebuild_id)

    # Then the status-change rule's stand-in handed the ABORTED execution to the worker, which
    # abandoned the run: the claim is released and readers never left generation 1
    assert execution_status(local_stack, run) == "ABORTED"
    assert run["status"] == "FAILED" and "ABORTED" in run["error"], run
    # The watcher counts an event as delivered once the worker has returned, a moment after the
    # worker has written the run
    deadline = time.monotonic() + 10
    while not local_stack.watcher.delivered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e["detail"]["name"], e["detail"]["status"]) for e in local_stack.watcher.delivered] == [
        (rebuild_id, "ABORTED")
    ]
    assert projection_state(local_stack, "customer_orders") == (1, None)
    assert local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS) == (200, before)
    # The bucket workers still in flight when it stopped clean up after themselves
    deadline = time.monotonic() + 30
    while rows_of_generation(local_stack, "customer_orders", 2) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rows_of_generation(local_stack, "customer_orders", 2) == []

    # And the next rebuild needs nobody to release anything: it succeeds, into a new generation
    monkeypatch.setattr(RebuildSteps, "apply_bucket", original)
    again = wait_for_run(local_stack, start_rebuild(local_stack, "customer_orders"))
    assert again["status"] == "SUCCEEDED", (again["phase"], again["error"])
    assert projection_state(local_stack, "customer_orders") == (3, None)
    assert local_stack.call("GET", f"/orders/{order_ids[0]}", **OPS) == (200, before)
