"""The projection the stream feeds: writes every generation readers use or a rebuild is building."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orders_core.envelope import Commit
from orders_core.projections.base import Projection
from orders_core.projections.control import ControlStore

# A rebuild's catch-up writes a marker commit on a stream of its own after its export; once the
# live projection has applied it, every commit before it has reached the new generation too.
MARKER_STREAM_PREFIX = "rebuild-"
MARKER_EVENT = "RebuildMarker"


class LiveProjection:
    def __init__(
        self, name: str, control: ControlStore, projection_for: Callable[[str, int], Projection]
    ) -> None:
        self.name = name
        self._control = control
        self._projection_for = projection_for
        self._by_generation: dict[int, Projection] = {}

    def _generation(self, generation: int) -> Projection:
        if generation not in self._by_generation:
            self._by_generation[generation] = self._projection_for(self.name, generation)
        return self._by_generation[generation]

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        # Read on every batch (one strongly consistent GetItem): a batch that starts after a
        # rebuild claimed its generation must write there too, or the rebuild could miss it.
        control = self._control.control(self.name)
        failures: dict[int, Exception] = {}
        for generation in control.write_generations:
            for position, error in self._generation(generation).process(commits).items():
                failures.setdefault(position, error)
        for position, commit in enumerate(commits):
            # A marker counts only when everything before it in the batch was applied as well.
            if commit.stream_id.startswith(MARKER_STREAM_PREFIX) and not any(p <= position for p in failures):
                for event in commit.events:
                    if event.type == MARKER_EVENT and event.data.get("projection") == self.name:
                        self._control.record_marker(self.name, str(event.data["rebuild_id"]))
        return failures

    def record_lag(self, now_ms: int, oldest_record_ms: int | None) -> None:
        """How far behind the stream this projection runs, for operators (`orders projections`)."""
        lag = max(0, now_ms - oldest_record_ms) if oldest_record_ms is not None else 0
        self._control.record_batch(self.name, at_ms=now_ms, lag_ms=lag)
