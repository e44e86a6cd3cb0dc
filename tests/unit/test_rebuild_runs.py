"""A run's record has several writers (the steps, late bucket workers, the abandon step): no save
may replace a later one, and an abandoned run is never moved back by a late worker."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orders_core.projections.control import ControlStore
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.rebuild.runs import RebuildRun, RunConflict, RunStore
from orders_core.rebuild.steps import RebuildSteps
from orders_core.store.memory import InMemoryEventStore


def test_a_save_from_a_stale_read_is_refused_and_an_update_applies_to_the_latest() -> None:
    runs = RunStore(InMemoryReadStore())
    first = runs.save_run(RebuildRun(rebuild_id="r1", projection="inventory"))
    runs.save_run(replace(first, phase="exporting"))
    # A writer that read before the second save loses, visibly
    with pytest.raises(RunConflict):
        runs.save_run(replace(first, execution_arn="arn:x"))
    # The same change as an update lands on the latest record and keeps the other writer's change
    updated = runs.update("r1", lambda run: replace(run, execution_arn="arn:x"))
    assert (updated.phase, updated.execution_arn) == ("exporting", "arn:x")
    assert runs.run("r1") == updated


def _steps(runs: RunStore) -> RebuildSteps:
    never: Any = None  # the phase bookkeeping touches no objects, projections or read stores
    return RebuildSteps(
        control=ControlStore(InMemoryReadStore()),
        runs=runs,
        objects=never,
        events=InMemoryEventStore(),
        projection_for=never,
        read_store_for=never,
        now=lambda: "2026-11-29T00:00:00.000000Z",
    )


@pytest.mark.parametrize("ending", ["abandoning", "failed"])
def test_a_late_worker_does_not_move_an_abandoned_run_back(ending: str) -> None:
    runs = RunStore(InMemoryReadStore())
    runs.save_run(RebuildRun(rebuild_id="r1", projection="inventory", phase=ending, error="disk on fire"))
    steps = _steps(runs)

    steps._phase("r1", "applying")  # what a bucket worker that finished late does

    run = runs.run("r1")
    assert run is not None and (run.phase, run.error) == (ending, "disk on fire")
    # while the abandon step itself still moves it to its end
    steps._phase("r1", "failed", status="FAILED")
    run = runs.run("r1")
    assert run is not None and (run.phase, run.status) == ("failed", "FAILED")
