"""Which generation of each read model readers use, and the record of every rebuild run.

Stored through the ReadStore port (pk/sk rows), so the in-memory fake and DynamoDB share one
contract. The control row of a projection moves with `put_next_version`: two operators cannot
start two rebuilds of one projection, and a switch happens only for the run that built it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from orders_core.readmodels.port import ReadStore, VersionConflict

CONTROL = "control"
RUNS = "rebuilds"


class RebuildConflict(Exception):
    """Another rebuild of this projection is running, or this run lost its claim."""


@dataclass(frozen=True)
class ProjectionControl:
    name: str
    active_generation: int = 1
    building_generation: int | None = None
    building_rebuild_id: str | None = None
    highest_generation: int = 1
    revision: int = 0

    @property
    def write_generations(self) -> tuple[int, ...]:
        """The live projection writes the active generation and the one being built."""
        if self.building_generation is None:
            return (self.active_generation,)
        return (self.active_generation, self.building_generation)


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
    step: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def _control_key(name: str) -> tuple[str, str]:
    return (f"projection#{name}", CONTROL)


class ControlStore:
    def __init__(self, store: ReadStore) -> None:
        self._store = store

    # -- projections -----------------------------------------------------------------------------

    def control(self, name: str) -> ProjectionControl:
        row = self._store.get_many([_control_key(name)]).get(_control_key(name))
        if row is None:
            return ProjectionControl(name)
        return ProjectionControl(**{**json.loads(row["doc"]), "revision": int(row["version"])})

    def _save(self, before: ProjectionControl, after: ProjectionControl) -> ProjectionControl:
        saved = replace(after, revision=before.revision + 1)
        doc = {k: v for k, v in asdict(saved).items() if k != "revision"}
        try:
            self._store.put_next_version(
                _control_key(before.name),
                {"doc": json.dumps(doc)},
                version=saved.revision,
                expected=before.revision or None,
            )
        except VersionConflict as exc:
            raise RebuildConflict(f"the control of {before.name} changed meanwhile; try again") from exc
        return saved

    def claim(self, name: str, rebuild_id: str) -> ProjectionControl:
        """Reserve a fresh generation for `rebuild_id`; live writes start going there too."""
        current = self.control(name)
        if current.building_generation is not None:
            raise RebuildConflict(f"rebuild {current.building_rebuild_id} of {name} is still running")
        generation = current.highest_generation + 1
        return self._save(
            current,
            replace(
                current,
                building_generation=generation,
                building_rebuild_id=rebuild_id,
                highest_generation=generation,
            ),
        )

    def switch(self, name: str, rebuild_id: str) -> ProjectionControl:
        """Make the generation built by `rebuild_id` the one readers use."""
        current = self.control(name)
        if current.building_rebuild_id != rebuild_id or current.building_generation is None:
            raise RebuildConflict(f"rebuild {rebuild_id} no longer holds {name}")
        return self._save(
            current,
            replace(
                current,
                active_generation=current.building_generation,
                building_generation=None,
                building_rebuild_id=None,
            ),
        )

    def release(self, name: str, rebuild_id: str) -> bool:
        """Give up the claim of a failed run; the active generation is untouched."""
        current = self.control(name)
        if current.building_rebuild_id != rebuild_id:
            return False
        self._save(current, replace(current, building_generation=None, building_rebuild_id=None))
        return True

    # -- live progress -----------------------------------------------------------------------------

    def record_marker(self, name: str, marker: str) -> None:
        self._store.put_if_newer((f"projection#{name}", f"marker#{marker}"), {}, version=1)

    def has_marker(self, name: str, marker: str) -> bool:
        key = (f"projection#{name}", f"marker#{marker}")
        return key in self._store.get_many([key])

    def record_batch(self, name: str, *, at_ms: int, lag_ms: int) -> None:
        self._store.put_if_newer(
            (f"projection#{name}", "live"), {"lag_ms": lag_ms, "at_ms": at_ms}, version=at_ms
        )

    def live(self, name: str) -> dict[str, int] | None:
        key = (f"projection#{name}", "live")
        row = self._store.get_many([key]).get(key)
        return {"at_ms": int(row["at_ms"]), "lag_ms": int(row["lag_ms"])} if row else None

    # -- runs ------------------------------------------------------------------------------------

    def run(self, rebuild_id: str) -> RebuildRun | None:
        row = self._store.get_many([(RUNS, rebuild_id)]).get((RUNS, rebuild_id))
        return RebuildRun(**{**json.loads(row["doc"]), "step": int(row["version"])}) if row else None

    def save_run(self, run: RebuildRun) -> RebuildRun:
        saved = replace(run, step=run.step + 1)
        doc = {k: v for k, v in asdict(saved).items() if k != "step"}
        self._store.put_if_newer((RUNS, run.rebuild_id), {"doc": json.dumps(doc)}, version=saved.step)
        return saved

    def runs(self) -> list[RebuildRun]:
        rows = self._store.query_partition(RUNS)
        runs = [RebuildRun(**{**json.loads(row["doc"]), "step": int(row["version"])}) for row in rows]
        return sorted(runs, key=lambda run: run.started_at, reverse=True)

    def record_progress(self, rebuild_id: str, part: str, counts: dict[str, int]) -> None:
        """Per export file or bucket; rewriting it on a retried step changes nothing."""
        self._store.put_if_newer((f"rebuild#{rebuild_id}", part), {"doc": json.dumps(counts)}, version=1)

    def progress(self, rebuild_id: str) -> dict[str, dict[str, int]]:
        rows = self._store.query_partition(f"rebuild#{rebuild_id}")
        return {str(row["sk"]): json.loads(row["doc"]) for row in rows}
