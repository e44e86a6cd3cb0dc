"""What operators do with rebuilds: start one, follow runs, see every read model's generations.

Starting records the run first, then starts the workflow (named after the run, so Step
Functions refuses a second execution of the same run); a start that fails is recorded as such.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.envelope import format_timestamp
from orders_core.projections.control import ControlStore
from orders_core.projections.fanout import PROJECTOR
from orders_core.projections.parking import ParkingLot
from orders_core.rebuild.runs import RebuildRun, RunStore

# (rebuild_id, workflow input) -> the execution's ARN
StartExecution = Callable[[str, dict[str, Any]], str]
RUNS_LISTED = 50


class RebuildsUnavailable(Exception):
    """No rebuild workflow is deployed where this runs."""


class RebuildOperations:
    def __init__(
        self,
        control: ControlStore,
        runs: RunStore,
        projections: Sequence[str],
        start_execution: StartExecution | None,
        *,
        parking: ParkingLot | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._control = control
        self._runs = runs
        self._projections = tuple(projections)
        self._start_execution = start_execution
        self._parking = parking
        self._clock = clock

    def start(self, projection: str) -> RebuildRun:
        if projection not in self._projections:
            raise InvalidCommand(f"unknown projection; known: {', '.join(self._projections)}", "projection")
        if self._start_execution is None:
            raise RebuildsUnavailable(
                "no rebuild workflow is configured here (locally, 'orders serve' runs it only on its "
                "embedded moto, not with AWS_ENDPOINT_URL)"
            )
        running = self._control.control(projection)
        if running.building_rebuild_id:
            raise RuleViolation(f"rebuild {running.building_rebuild_id} of {projection} is still running")
        now = self._clock()
        rebuild_id = f"{now:%Y%m%dT%H%M%S}-{projection.replace('_', '-')}-{secrets.token_hex(2)}"
        self._runs.save_run(
            RebuildRun(rebuild_id=rebuild_id, projection=projection, started_at=format_timestamp(now))
        )
        try:
            arn = self._start_execution(rebuild_id, {"rebuild_id": rebuild_id, "projection": projection})
        except Exception as exc:
            failed = f"could not start: {exc}"
            self._runs.update(rebuild_id, lambda r: replace(r, status="FAILED", phase="failed", error=failed))
            raise
        # The workflow may already have saved the run (its first step): add to the latest record.
        return self._runs.update(rebuild_id, lambda r: replace(r, execution_arn=arn))

    def runs(self) -> list[dict[str, Any]]:
        """The latest runs, newest first, as operators see them."""
        return [self._view(run) for run in self._runs.runs()[:RUNS_LISTED]]

    def run(self, rebuild_id: str) -> dict[str, Any]:
        found = self._runs.run(rebuild_id)
        if found is None:
            raise NotFound(f"no rebuild {rebuild_id}")
        return self._view(found)

    def projections(self, now_ms: int) -> list[dict[str, Any]]:
        """Every read model: the generation readers use, a rebuild in progress, how far behind the
        stream the projector that feeds them all runs, and how many streams it parked."""
        rows = []
        live = self._control.live(PROJECTOR)
        for name in self._projections:
            state = self._control.control(name)
            rows.append(
                {
                    "projection": name,
                    "active_generation": state.active_generation,
                    "building_generation": state.building_generation,
                    "rebuild_id": state.building_rebuild_id,
                    "lag_ms": live["lag_ms"] if live else None,
                    "last_batch_seconds_ago": round((now_ms - live["at_ms"]) / 1000, 1) if live else None,
                    "parked_streams": len(self._parking.parked(name)) if self._parking else 0,
                }
            )
        return rows

    def _view(self, run: RebuildRun) -> dict[str, Any]:
        progress = self._runs.progress(run.rebuild_id)
        files = [v for k, v in progress.items() if k.startswith("file#")]
        buckets = [v for k, v in progress.items() if k.startswith("bucket#")]
        view = {k: v for k, v in asdict(run).items() if k not in ("revision", "details")}
        view.update(
            files_processed=len(files),
            files_total=run.details.get("files"),
            events_exported=sum(v["events"] for v in files),
            events_processed=sum(v["events"] for v in buckets),
            buckets_processed=len(buckets),
        )
        return view
