"""An operator releases a projection's claim that a run whose execution ended still holds:
refused while the execution may still run a step, done as the run's own Abandon would after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orders_core.domain.errors import InvalidCommand, RuleViolation
from orders_core.rebuild.endings import RunEndings
from orders_core.rebuild.errors import RebuildsUnavailable
from orders_core.rebuild.operations import RebuildOperations
from tests.support.rebuilds import NOW, PROJECTION, RebuildWorld


class Executions:
    """Step Functions as far as operations see it: the status of the execution named after a run."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.started: list[str] = []

    def describe(self, rebuild_id: str) -> str:
        return self.status.get(rebuild_id, "NOT_FOUND")

    def start(self, rebuild_id: str, payload: dict[str, Any]) -> str:
        self.started.append(rebuild_id)
        self.status[rebuild_id] = "RUNNING"
        return f"arn:aws:states:us-east-1:123456789012:execution:orders-rebuild:{rebuild_id}"


@pytest.fixture
def world() -> RebuildWorld:
    world = RebuildWorld()
    world.place_orders(3)
    return world


def operations(world: RebuildWorld, executions: Executions, *, describe: bool = True) -> RebuildOperations:
    endings = RunEndings(
        control=world.control, runs=world.runs, read_store_for=lambda _name: world.table, now=lambda: NOW
    )
    return RebuildOperations(
        world.control,
        world.runs,
        [PROJECTION],
        executions.start,
        describe_execution=executions.describe if describe else None,
        endings=endings,
    )


def test_a_claim_is_released_only_once_its_execution_has_ended(world: RebuildWorld) -> None:
    # Given a rebuild started by an operator whose execution got as far as applying its buckets
    executions = Executions()
    ops = operations(world, executions)
    run = ops.start(PROJECTION)
    world.run_until("apply_bucket", run.rebuild_id)
    assert world.rows(2)

    # When an operator asks to release it while the execution runs, then it is refused, by name
    with pytest.raises(RuleViolation) as refused:
        ops.release(PROJECTION)
    assert run.rebuild_id in str(refused.value) and f"execution:orders-rebuild:{run.rebuild_id}" in str(
        refused.value
    )
    assert world.claim().building_rebuild_id == run.rebuild_id

    # When the execution was stopped (and its status event never reached the worker)
    executions.status[run.rebuild_id] = "ABORTED"
    released = ops.release(PROJECTION)

    # Then the run is abandoned as its own Abandon step would have, and the next rebuild can start
    assert released == {
        "projection": PROJECTION,
        "rebuild_id": run.rebuild_id,
        "generation": 2,
        "execution_status": "ABORTED",
        "released": True,
        "status": "FAILED",
    }
    ended = world.run(run.rebuild_id)
    assert (ended.status, ended.error) == ("FAILED", "released by an operator")
    assert world.claim().building_rebuild_id is None and world.rows(2) == {} and world.rows(1)
    with pytest.raises(RuleViolation, match="nothing to release"):
        ops.release(PROJECTION)
    assert ops.start(PROJECTION).rebuild_id == executions.started[-1]


def test_a_run_whose_execution_never_started_can_be_released(world: RebuildWorld) -> None:
    # Given a run that claimed, with no execution by its name (one that never existed, or expired)
    world.start()
    world.run_until("begin")
    released = operations(world, Executions()).release(PROJECTION)
    assert released["execution_status"] == "NOT_FOUND" and released["released"]
    assert world.claim().building_rebuild_id is None


def test_release_names_a_known_projection_and_needs_the_workflow(world: RebuildWorld) -> None:
    world.start()
    world.run_until("begin")
    with pytest.raises(InvalidCommand):
        operations(world, Executions()).release("no-such-projection")
    with pytest.raises(RebuildsUnavailable):
        operations(world, Executions(), describe=False).release(PROJECTION)
    assert world.claim().building_rebuild_id == world.rebuild_id


def test_a_second_run_is_refused_while_the_first_has_not_claimed_yet(world: RebuildWorld) -> None:
    # Given a run just started whose workflow has not run its first step (no claim yet)
    executions = Executions()
    now = [datetime(2026, 11, 29, 12, 0, tzinfo=UTC)]
    endings = RunEndings(
        control=world.control, runs=world.runs, read_store_for=lambda _name: world.table, now=lambda: NOW
    )
    ops = RebuildOperations(
        world.control, world.runs, [PROJECTION], executions.start, clock=lambda: now[0], endings=endings
    )
    first = ops.start(PROJECTION)
    assert world.control.control(PROJECTION).building_rebuild_id is None

    # Then a second start is refused, naming the first
    with pytest.raises(RuleViolation, match=first.rebuild_id):
        ops.start(PROJECTION)
    # and once the first has had minutes to claim and never did (its execution died), it no longer holds
    now[0] += timedelta(minutes=6)
    assert ops.start(PROJECTION).rebuild_id != first.rebuild_id
