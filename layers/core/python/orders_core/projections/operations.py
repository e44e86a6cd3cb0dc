"""What operators do with parked commits: list them, and replay them once the cause is fixed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orders_core.domain.errors import InvalidCommand
from orders_core.envelope import Commit
from orders_core.projections.fanout import ReplayOutcome, replay
from orders_core.projections.live import LiveProjection
from orders_core.projections.parking import ParkedStream, ParkingLot


class ParkedCommits:
    def __init__(
        self,
        projections: Sequence[str],
        parking: ParkingLot,
        live: Callable[[str], LiveProjection],
        read_commits: Callable[[str, int], Sequence[Commit]],
    ) -> None:
        self._projections = tuple(projections)
        self._parking = parking
        self._live = live
        self._read_commits = read_commits

    def _chosen(self, projection: str | None) -> tuple[str, ...]:
        if projection is None:
            return self._projections
        if projection not in self._projections:
            raise InvalidCommand(f"unknown projection; known: {', '.join(self._projections)}", "projection")
        return (projection,)

    def parked(self, projection: str | None = None) -> list[ParkedStream]:
        return [parked for name in self._chosen(projection) for parked in self._parking.parked(name)]

    def replay(self, projection: str | None = None) -> list[ReplayOutcome]:
        outcomes: list[ReplayOutcome] = []
        for name in self._chosen(projection):
            outcomes.extend(replay(self._live(name), self._parking, self._read_commits))
        return outcomes
