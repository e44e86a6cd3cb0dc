"""What operators do with rebuilds: start one, follow runs, see every read model's generations,
release a claim that a run which will not end by itself still holds.

Starting records the run first, then starts the workflow (named after the run, so Step
Functions refuses a second execution of the same run); a start that fails is recorded as such.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.envelope import format_timestamp
from orders_core.projections.control import ControlStore
from orders_core.projections.fanout import PROJECTOR
from orders_core.projections.parking import ParkingLot
from orders_core.rebuild.endings import RunEndings
from orders_core.rebuild.errors import RebuildsUnavailable
from orders_core.rebuild.runs import RebuildRun, RunStore

# (rebuild_id, workflow input) -> the execution's ARN
StartExecution = Callable[[str, dict[str, Any]], str]
# rebuild_id -> the status of the execution named after it: RUNNING, SUCCEEDED, FAILED, TIMED_OUT,
# ABORTED, PENDING_REDRIVE (Step Functions' own), or NOT_FOUND when there is none.
DescribeExecution = Callable[[str], str]
RUNS_LISTED = 50
# How long a run that has not claimed yet keeps a second run of its read model from starting.
STARTING_HOLDS = timedelta(minutes=5)
# An execution in these may still run a step: its claim is not an operator's to release.
EXECUTION_LIVE = ("RUNNING", "PENDING_REDRIVE")


class RebuildOperations:
    def __init__(
        self,
        control: ControlStore,
        runs: RunStore,
        projections: Sequence[str],
        start_execution: StartExecution | None,
        *,
        describe_execution: DescribeExecution | None = None,
        endings: RunEndings | None = None,
        parking: ParkingLot | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._control = control
        self._runs = runs
        self._projections = tuple(projections)
        self._start_execution = start_execution
        self._describe_execution = describe_execution
        self._endings = endings
        self._parking = parking
        self._clock = clock

    def _known(self, projection: str) -> None:
        if projection not in self._projections:
            raise InvalidCommand(f"unknown projection; known: {', '.join(self._projections)}", "projection")

    def start(self, projection: str) -> RebuildRun:
        self._known(projection)
        if self._start_execution is None:
            raise RebuildsUnavailable(
                "no rebuild workflow is configured here (locally, 'orders serve' runs it only on its "
                "embedded moto, not with AWS_ENDPOINT_URL)"
            )
        running = self._control.control(projection)
        if running.building_rebuild_id:
            raise RuleViolation(f"rebuild {running.building_rebuild_id} of {projection} is still running")
        now = self._clock()
        # A run started moments ago may not have claimed yet (its first step): it holds the way too,
        # for a while (an execution that died before claiming must not block rebuilds for good).
        recently = format_timestamp(now - STARTING_HOLDS)
        for run in self._runs.runs():
            waiting = run.status == "RUNNING" and run.phase == "starting" and run.started_at >= recently
            if run.projection == projection and waiting:
                raise RuleViolation(f"rebuild {run.rebuild_id} of {projection} is still running")
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

    def release(self, projection: str) -> dict[str, Any]:
        """Give up the claim on `projection` of a run whose execution has ended without ending the
        run (the rule that reports such executions did not reach the worker, or its abandon
        failed): the run is abandoned as its own Abandon step would have (reason "released by an
        operator"), readers keep their generation. Refused (409) while the execution may still
        run a step, or when no run holds a claim."""
        self._known(projection)
        control = self._control.control(projection)
        rebuild_id = control.building_rebuild_id
        if rebuild_id is None:
            raise RuleViolation(f"nothing to release: no rebuild of {projection} holds a claim")
        if self._describe_execution is None or self._endings is None:
            raise RebuildsUnavailable(
                "no rebuild workflow is configured here: its executions cannot be checked"
            )
        status = self._describe_execution(rebuild_id)
        if status in EXECUTION_LIVE:
            run = self._runs.run(rebuild_id)
            execution = run.execution_arn if run and run.execution_arn else rebuild_id
            raise RuleViolation(
                f"rebuild {rebuild_id} of {projection} is still {status} (execution {execution}): "
                "stop the execution or let it end; its end releases the claim"
            )
        ended = self._endings.abandon(rebuild_id, "released by an operator")
        return {
            "projection": projection,
            "rebuild_id": rebuild_id,
            "generation": control.building_generation,
            "execution_status": status,
            "released": bool(ended["released"]),
            "status": ended["status"],
        }

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
        # What a run left behind, for operators (see rebuild/endings.py).
        for left in ("retirement", "abandoned_rows"):
            if run.details.get(left):
                view[left] = run.details[left]
        view.update(
            files_processed=len(files),
            files_total=run.details.get("files"),
            events_exported=sum(v["events"] for v in files),
            events_processed=sum(v["events"] for v in buckets),
            buckets_processed=len(buckets),
        )
        return view
