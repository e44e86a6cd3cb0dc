"""The record of every rebuild run, and its per-file and per-bucket progress.

Kept in the projections' control table (a partition of its own), through the ReadStore port.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from orders_core.readmodels.port import ReadStore

RUNS = "rebuilds"
# Read-modify-write rounds before an update of a run gives up (its writers are a handful of steps).
UPDATE_ROUNDS = 10
# The phases of a run that goes well, in order, and those of one that is abandoned.
PHASES = ("starting", "exporting", "shuffling", "applying", "catching_up", "retiring", "done")
ENDING = ("abandoning", "failed")


class RunConflict(Exception):
    """The run was saved by someone else since it was read."""


@dataclass(frozen=True)
class RebuildRun:
    rebuild_id: str
    projection: str
    status: str = "RUNNING"  # RUNNING | SUCCEEDED | FAILED
    phase: str = "starting"
    generation: int | None = None
    previous_generation: int | None = None
    started_at: str = ""
    finished_at: str | None = None
    export_time: str | None = None
    error: str | None = None
    execution_arn: str | None = None
    # How many times the record was saved: a save never replaces a later one.
    revision: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def advanced(run: RebuildRun, phase: str, **changes: Any) -> RebuildRun:
    """`run` in `phase` with `changes` (`details` are merged into the run's).

    A run never moves back: a retried step, or a late one (a shuffle that ends after the apply
    began), leaves the later phase as it is. An abandoned run stays abandoned: only the abandon
    itself moves it on, to "failed".
    """
    if run.phase in ENDING and phase not in ENDING:
        return run
    if phase in PHASES and run.phase in PHASES and PHASES.index(phase) < PHASES.index(run.phase):
        phase = run.phase
    if "details" in changes:
        changes["details"] = {**run.details, **changes["details"]}
    return replace(run, phase=phase, **changes)


class RunStore:
    def __init__(self, store: ReadStore) -> None:
        self._store = store

    # -- runs ------------------------------------------------------------------------------------

    def run(self, rebuild_id: str) -> RebuildRun | None:
        row = self._store.get_many([(RUNS, rebuild_id)]).get((RUNS, rebuild_id))
        return RebuildRun(**{**json.loads(row["doc"]), "revision": int(row["version"])}) if row else None

    def save_run(self, run: RebuildRun) -> RebuildRun:
        """Save `run` if nobody saved it since it was read (RunConflict otherwise)."""
        saved = replace(run, revision=run.revision + 1)
        doc = {k: v for k, v in asdict(saved).items() if k != "revision"}
        if not self._store.put_if_newer(
            (RUNS, run.rebuild_id), {"doc": json.dumps(doc)}, version=saved.revision
        ):
            raise RunConflict(f"rebuild {run.rebuild_id} was saved meanwhile")
        return saved

    def update(self, rebuild_id: str, change: Callable[[RebuildRun], RebuildRun]) -> RebuildRun:
        """Apply `change` to the latest record of the run and save it, again if another writer
        saved it meanwhile (steps, late bucket workers and the abandon step all write it)."""
        for _ in range(UPDATE_ROUNDS):
            run = self.run(rebuild_id)
            if run is None:
                raise LookupError(f"no rebuild {rebuild_id}")
            changed = change(run)
            if changed == run:
                return run
            try:
                return self.save_run(changed)
            except RunConflict:
                continue
        raise RunConflict(f"rebuild {rebuild_id} kept changing; gave up after {UPDATE_ROUNDS} attempts")

    def runs(self) -> list[RebuildRun]:
        rows = self._store.query_partition(RUNS)
        runs = [RebuildRun(**{**json.loads(row["doc"]), "revision": int(row["version"])}) for row in rows]
        return sorted(runs, key=lambda run: run.started_at, reverse=True)

    def record_progress(self, rebuild_id: str, part: str, counts: dict[str, int]) -> None:
        """Per export file or bucket; rewriting it on a retried step changes nothing."""
        self._store.put_if_newer((f"rebuild#{rebuild_id}", part), {"doc": json.dumps(counts)}, version=1)

    def progress(self, rebuild_id: str) -> dict[str, dict[str, int]]:
        rows = self._store.query_partition(f"rebuild#{rebuild_id}")
        return {str(row["sk"]): json.loads(row["doc"]) for row in rows}
