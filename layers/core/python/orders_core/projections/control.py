"""Which generation of each read model readers use, which one a rebuild is building, and
what the live projection reports (rebuild markers it delivered, its lag).

Stored through the ReadStore port (pk/sk rows), so the in-memory fake and DynamoDB share one
contract. The control row of a projection moves with `put_next_version`: two operators cannot
start two rebuilds of one projection, and a switch happens only for the run that built it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from orders_core.readmodels.port import ReadStore, VersionConflict

CONTROL = "control"


class ClaimConflict(Exception):
    """Another rebuild of this projection holds its claim, or this run lost its claim."""


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
            raise ClaimConflict(f"the control of {before.name} changed meanwhile; try again") from exc
        return saved

    def claim(self, name: str, rebuild_id: str) -> ProjectionControl:
        """Reserve a fresh generation for `rebuild_id`; live writes start going there too."""
        current = self.control(name)
        if current.building_generation is not None:
            raise ClaimConflict(f"rebuild {current.building_rebuild_id} of {name} is still running")
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

    def switch(self, name: str, rebuild_id: str, generation: int) -> ProjectionControl:
        """Make `generation`, built by `rebuild_id`, the one readers use.

        Once readers use it, switching again changes nothing (a retried switch whose first reply
        was lost): generation numbers are never reused, so only this run can have made it active.
        """
        current = self.control(name)
        if current.active_generation == generation and current.building_rebuild_id != rebuild_id:
            return current
        if current.building_rebuild_id != rebuild_id or current.building_generation != generation:
            raise ClaimConflict(f"rebuild {rebuild_id} no longer holds {name}")
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
