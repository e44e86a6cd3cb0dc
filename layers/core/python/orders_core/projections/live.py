"""A read model as the stream feeds it: every generation readers use or a rebuild is building.

Which generations those are comes from the projection's control row, cached for at most
`control_ttl_seconds` so that a batch costs no read of it: a rebuild that claims a new generation
waits longer than that before it exports (`claim_settle_seconds`), so every batch after the export
time writes the new generation too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from orders_core.envelope import Commit
from orders_core.projections.base import Projection
from orders_core.projections.control import ControlStore, ProjectionControl

# A rebuild's catch-up writes a marker commit on a stream of its own after its export; once the
# live projection has applied it, every commit before it has reached the new generation too.
MARKER_STREAM_PREFIX = "rebuild-"
MARKER_EVENT = "RebuildMarker"
# How stale a live projection's view of its control row may be; rebuilds wait longer.
CONTROL_TTL_SECONDS = 10.0


class LiveProjection:
    def __init__(
        self,
        name: str,
        control: ControlStore,
        projection_for: Callable[[str, int], Projection],
        *,
        control_ttl_seconds: float = CONTROL_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._control = control
        self._projection_for = projection_for
        self._by_generation: dict[int, Projection] = {}
        self._ttl = control_ttl_seconds
        self._clock = clock
        self._cached: tuple[float, ProjectionControl] | None = None

    def _generation(self, generation: int) -> Projection:
        if generation not in self._by_generation:
            self._by_generation[generation] = self._projection_for(self.name, generation)
        return self._by_generation[generation]

    def control(self) -> ProjectionControl:
        now = self._clock()
        if self._cached is None or now - self._cached[0] >= self._ttl:
            self._cached = (now, self._control.control(self.name))
        return self._cached[1]

    def apply(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        """Apply a batch to every generation in use; the positions that failed, with their error."""
        failures: dict[int, Exception] = {}
        for generation in self.control().write_generations:
            for position, error in self._generation(generation).process(commits).items():
                failures.setdefault(position, error)
        return failures

    def record_markers(self, commits: Sequence[Commit]) -> None:
        """Tell the rebuilds of this read model that their markers were delivered."""
        for commit in commits:
            if commit.stream_id.startswith(MARKER_STREAM_PREFIX):
                for event in commit.events:
                    if event.type == MARKER_EVENT and event.data.get("projection") == self.name:
                        self._control.record_marker(self.name, str(event.data["rebuild_id"]))

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        """Apply a batch on its own (no parking): a failure fails the batch from that commit on, so
        a marker counts only when everything before it in the batch was applied as well."""
        failures = self.apply(commits)
        first_failure = min(failures, default=len(commits))
        self.record_markers(commits[:first_failure])
        return failures
