"""The rebuild workflow's task steps. The state machine (workflows/rebuild.asl.json) sequences them;
each step is idempotent, because Step Functions retries it after throttling or a crash.

Why it is exact: from `begin` on, the live projection writes the new generation as well as the
active one, and the export is requested after `begin`. Every commit is therefore either in the
export (written before the export time) or delivered live after `begin` (written after it);
both paths apply through the same exactly-once rules, so overlaps count once.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orders_core.envelope import Commit, CommitMetadata, NewEvent
from orders_core.errors import ConcurrencyError
from orders_core.projections.base import Projection
from orders_core.projections.control import ControlStore
from orders_core.projections.live import MARKER_EVENT, MARKER_STREAM_PREFIX
from orders_core.readmodels.port import ReadStore
from orders_core.rebuild.objects import ObjectStore
from orders_core.rebuild.runs import RebuildRun, RunStore
from orders_core.store.export_files import commit_of, event_count, is_data_file, read_export_file, stream_of
from orders_core.store.port import EventStore

DEFAULT_BUCKETS = 8
# Phases a run only leaves for one another: once abandoned, no step moves it back.
ENDING = ("abandoning", "failed")
APPLY_CHUNK = 2_000


class NotCaughtUp(Exception):
    """The live projection has not yet delivered the marker: retry later (the workflow backs off)."""


class VerificationFailed(Exception):
    """The build is incomplete: a file or bucket was not processed (moto's Map hides such failures)."""


ProjectionFactory = Callable[[str, int], Projection]


def export_prefix(rebuild_id: str) -> str:
    return f"rebuilds/{rebuild_id}/export"


def bucket_prefix(rebuild_id: str, bucket: int) -> str:
    return f"rebuilds/{rebuild_id}/buckets/{bucket:03d}/"


def bucket_of(stream_id: str, buckets: int) -> int:
    return zlib.crc32(stream_id.encode()) % buckets


class RebuildSteps:
    def __init__(
        self,
        *,
        control: ControlStore,
        runs: RunStore,
        objects: ObjectStore,
        events: EventStore,
        projection_for: ProjectionFactory,
        read_store_for: Callable[[str], ReadStore],
        now: Callable[[], str],
        export_poll_seconds: int = 30,
        retire_delay_seconds: int = 5,
        buckets: int = DEFAULT_BUCKETS,
        claim_settle_seconds: int = 11,
    ) -> None:
        self._control = control
        self._runs = runs
        self._objects = objects
        self._events = events
        self._projection_for = projection_for
        self._read_store_for = read_store_for
        self._now = now
        self._export_poll_seconds = export_poll_seconds
        # Longer than readers cache the active generation (query API: 1 s).
        self._retire_delay_seconds = retire_delay_seconds
        # More buckets, more parallel apply workers: each must finish within Lambda's 15 minutes.
        self._buckets = buckets
        # Longer than the projectors cache a read model's control row: waited between the claim
        # and the export, so that every commit after the export time reaches the new generation.
        self._claim_settle_seconds = claim_settle_seconds

    def _run(self, rebuild_id: str) -> RebuildRun:
        run = self._runs.run(rebuild_id)
        if run is None:
            raise LookupError(f"no rebuild {rebuild_id}")
        return run

    def _phase(self, rebuild_id: str, phase: str, **changes: Any) -> RebuildRun:
        def move(run: RebuildRun) -> RebuildRun:
            if run.phase in ENDING and phase not in ENDING:
                return run  # a late worker of an abandoned run: its end stays as the abandon wrote it
            return replace(run, phase=phase, **changes)

        return self._runs.update(rebuild_id, move)

    # -- steps -------------------------------------------------------------------------------------

    def begin(self, rebuild_id: str) -> dict[str, Any]:
        run = self._run(rebuild_id)
        claimed = self._control.claim(run.projection, rebuild_id)
        self._phase(
            rebuild_id,
            "exporting",
            generation=claimed.building_generation,
            previous_generation=claimed.active_generation,
            export_time=self._now(),
        )
        return {
            "projection": run.projection,
            "generation": claimed.building_generation,
            "previous_generation": claimed.active_generation,
            "export_prefix": export_prefix(rebuild_id),
            "buckets": list(range(self._buckets)),
            "export_poll_seconds": self._export_poll_seconds,
            "claim_settle_seconds": self._claim_settle_seconds,
            "retire_delay_seconds": self._retire_delay_seconds,
        }

    def shuffle(self, rebuild_id: str, key: str) -> dict[str, int]:
        """Split one export file into per-bucket fragments, grouping each stream in one bucket."""
        if not is_data_file(key):
            return {"commits": 0, "events": 0}
        fragments: dict[int, list[str]] = {}
        commits = events = 0
        for item in read_export_file(self._objects.get(key)):
            stream = stream_of(item)
            fragments.setdefault(bucket_of(stream, self._buckets), []).append(
                json.dumps(item, separators=(",", ":"))
            )
            commits += 1
            events += event_count(item)
        name = f"{zlib.crc32(key.encode()):08x}.jsonl"
        for bucket, lines in fragments.items():
            self._objects.put(bucket_prefix(rebuild_id, bucket) + name, "\n".join(lines).encode())
        counts = {"commits": commits, "events": events}
        self._runs.record_progress(rebuild_id, f"file#{name}", counts)
        if commits:
            self._phase(rebuild_id, "shuffling")
        return counts

    def apply_bucket(self, rebuild_id: str, bucket: int) -> dict[str, int]:
        """Apply one bucket's commits, stream by stream in version order, to the new generation."""
        run = self._run(rebuild_id)
        if run.generation is None:
            raise LookupError(f"rebuild {rebuild_id} has no generation yet")
        unique: dict[tuple[str, int], Commit] = {}
        for key in self._objects.list(bucket_prefix(rebuild_id, bucket)):
            for line in self._objects.get(key).decode().splitlines():
                commit = commit_of(json.loads(line))
                unique[(commit.stream_id, commit.first_version)] = commit
        ordered = [unique[key] for key in sorted(unique)]
        projection = self._projection_for(run.projection, run.generation)
        for start in range(0, len(ordered), APPLY_CHUNK):
            failures = projection.process(ordered[start : start + APPLY_CHUNK])
            if failures:
                first = min(failures)
                raise RuntimeError(
                    f"bucket {bucket}: {len(failures)} commits failed, first: {failures[first]!r}"
                )
        if self._run(rebuild_id).phase in ("abandoning", "failed"):
            # The run was abandoned while this worker wrote: clean up after ourselves.
            self._read_store_for(run.projection).delete_partition_prefix(f"{run.generation}#")
            raise RuntimeError(f"rebuild {rebuild_id} was abandoned while bucket {bucket} was applied")
        counts = {"commits": len(ordered), "events": sum(len(c.events) for c in ordered)}
        self._runs.record_progress(rebuild_id, f"bucket#{bucket:03d}", counts)
        self._phase(rebuild_id, "applying")
        return counts

    def verify(self, rebuild_id: str) -> dict[str, int]:
        """Every export file shuffled, every bucket applied, nothing lost between the two."""
        files = [key for key in self._objects.list(export_prefix(rebuild_id)) if is_data_file(key)]
        progress = self._runs.progress(rebuild_id)
        shuffled = {k: v for k, v in progress.items() if k.startswith("file#")}
        applied = {k: v for k, v in progress.items() if k.startswith("bucket#")}
        problems = []
        if len(shuffled) < len(files):
            problems.append(f"{len(files) - len(shuffled)} of {len(files)} export files were not shuffled")
        if len(applied) < self._buckets:
            problems.append(f"{self._buckets - len(applied)} of {self._buckets} buckets were not applied")
        commits_in = sum(v["commits"] for v in shuffled.values())
        commits_out = sum(v["commits"] for v in applied.values())
        if commits_in != commits_out:
            problems.append(f"{commits_in} commits exported but {commits_out} applied")
        if problems:
            raise VerificationFailed("; ".join(problems))
        events = sum(v["events"] for v in applied.values())
        self._phase(rebuild_id, "catching_up", details={"files": len(files), "events": events})
        return {"files": len(files), "commits": commits_out, "events": events}

    def catch_up(self, rebuild_id: str) -> dict[str, bool]:
        """Write a marker after the export and wait until the live projection has delivered it:
        then every commit before the marker has reached the new generation too."""
        run = self._run(rebuild_id)
        marker_stream = f"{MARKER_STREAM_PREFIX}{rebuild_id}"
        with contextlib.suppress(ConcurrencyError):  # written by an earlier attempt of this step
            self._events.append(
                marker_stream,
                0,
                [NewEvent(type=MARKER_EVENT, data={"rebuild_id": rebuild_id, "projection": run.projection})],
                CommitMetadata(
                    command_id=f"catch-up:{rebuild_id}",
                    correlation_id=rebuild_id,
                    causation_id=rebuild_id,
                    actor="rebuild",
                    recorded_at=self._now(),
                ),
            )
        if not self._control.has_marker(run.projection, rebuild_id):
            raise NotCaughtUp(f"the live {run.projection} projection has not reached the rebuild marker yet")
        return {"caught_up": True}

    def switch(self, rebuild_id: str) -> dict[str, int]:
        run = self._run(rebuild_id)
        control = self._control.switch(run.projection, rebuild_id)
        self._phase(rebuild_id, "retiring")
        return {"active_generation": control.active_generation}

    def retire(self, rebuild_id: str) -> dict[str, Any]:
        """Drop the old generation's rows and the run's scratch files."""
        run = self._run(rebuild_id)
        deleted = 0
        if run.previous_generation is not None:
            store = self._read_store_for(run.projection)
            deleted = store.delete_partition_prefix(f"{run.previous_generation}#")
        self._objects.delete_prefix(f"rebuilds/{rebuild_id}/")
        self._phase(rebuild_id, "done", status="SUCCEEDED", finished_at=self._now())
        return {"deleted_rows": deleted}

    def abandon(self, rebuild_id: str, error: str, cause: str) -> dict[str, Any]:
        """A failed run: readers keep the active generation; the partial one is removed."""
        run = self._run(rebuild_id)
        reason = _reason(error, cause)
        # Marked first: a bucket worker still running looks at this after it writes, and removes
        # what it wrote (see apply_bucket), so nothing of the partial generation outlives the run.
        self._phase(rebuild_id, "abandoning", error=reason)
        released = self._control.release(run.projection, rebuild_id)
        if released and run.generation is not None:
            self._read_store_for(run.projection).delete_partition_prefix(f"{run.generation}#")
        self._phase(rebuild_id, "failed", status="FAILED", finished_at=self._now(), error=reason)
        return {"released": released, "error": reason}


def _reason(error: str, cause: str) -> str:
    try:
        parsed = json.loads(cause)
    except (ValueError, TypeError):
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return f"{parsed.get('errorType', error)}: {parsed['errorMessage']}"
    return f"{error}: {cause}" if cause else error
