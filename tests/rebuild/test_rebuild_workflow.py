"""Rebuilding read models with the shared workflow on moto, while commands keep arriving."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from orders_core.projections.registry import NAMES
from orders_core.rebuild.steps import RebuildSteps
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

    assert run["status"] == "FAILED" and "disk on fire" in run["error"]
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
