"""The rebuild workflow's task steps. The state machine (workflows/rebuild.asl.json) sequences them.

Every step may run twice: Step Functions retries a task after a transient error even when the
task had already succeeded (its reply was lost), and a step of an execution that was stopped or
timed out may still be running when the run is abandoned. So each step, called again with the
same input, answers as the first call did and changes nothing more (the run, the control row, the
rows); where a late step meets an abandoned run it gives way (see `begin` and `apply_bucket`).

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
from orders_core.rebuild.endings import RunEndings
from orders_core.rebuild.objects import ObjectStore
from orders_core.rebuild.runs import ENDING, RebuildRun, RunStore, advanced
from orders_core.store.export_files import commit_of, event_count, is_data_file, read_export_stream, stream_of
from orders_core.store.port import EventStore

DEFAULT_BUCKETS = 8
APPLY_CHUNK = 2_000
# Bytes of shuffled lines held before they are written out (as parts of each bucket's fragment).
SHUFFLE_BUFFER_BYTES = 64 * 1024 * 1024
# Deletion pages (of DELETE_PAGE_ITEMS rows evaluated each) per `retire` call: at 26 M rows of an
# old generation in a 52 M-row table, one page per call would be 52,000 task calls, past Step
# Functions' 25,000 events of history per execution; 50 pages keep each call under a minute.
RETIRE_PAGES_PER_CALL = 50
# Execution statuses (EventBridge's "Step Functions Execution Status Change") that end a run.
UNFINISHED_EXECUTION = ("ABORTED", "TIMED_OUT", "FAILED")


class NotCaughtUp(Exception):
    """The live projection has not yet delivered the marker: retry later (the workflow backs off)."""


class VerificationFailed(Exception):
    """The build is incomplete: a file or bucket was not processed (moto's Map hides such failures)."""


class RunEnded(Exception):
    """The run was abandoned (or has ended) while this step ran: it does no more."""


class ExportNotFound(Exception):
    """The export's data files cannot be told apart from another export's."""


ProjectionFactory = Callable[[str, int], Projection]


def export_prefix(rebuild_id: str) -> str:
    return f"rebuilds/{rebuild_id}/export"


def export_data_prefix(rebuild_id: str, export_arn: str) -> str:
    """Where DynamoDB writes the data files of the export `export_arn` (its id ends the ARN:
    arn:aws:dynamodb:<region>:<account>:table/<table>/export/<id>)."""
    return f"{export_prefix(rebuild_id)}/AWSDynamoDB/{export_arn.rsplit('/', 1)[-1]}/data/"


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
        export_poll_limit: int = 120,
        retire_delay_seconds: int = 5,
        buckets: int = DEFAULT_BUCKETS,
        claim_settle_seconds: int = 11,
        retire_pages_per_call: int = RETIRE_PAGES_PER_CALL,
        shuffle_buffer_bytes: int = SHUFFLE_BUFFER_BYTES,
    ) -> None:
        self._control = control
        # A shuffle writes its buckets' fragments whenever this much is buffered: its memory is
        # bounded by this, not by the size of the export file it reads.
        self._shuffle_buffer_bytes = shuffle_buffer_bytes
        self._runs = runs
        self._objects = objects
        self._events = events
        self._projection_for = projection_for
        self._read_store_for = read_store_for
        self._now = now
        self._export_poll_seconds = export_poll_seconds
        # The workflow gives up on an export after this many polls (a stuck export must not hold
        # the claim, and make every live write twice, for ever).
        self._export_poll_limit = export_poll_limit
        # Longer than readers cache the active generation (query API: 1 s).
        self._retire_delay_seconds = retire_delay_seconds
        # More buckets, more parallel apply workers: each must finish within Lambda's 15 minutes.
        self._buckets = buckets
        # Longer than the projectors cache a read model's control row: waited between the claim
        # and the export, so that every commit after the export time reaches the new generation.
        self._claim_settle_seconds = claim_settle_seconds
        self._retire_pages_per_call = retire_pages_per_call
        self._endings = RunEndings(control=control, runs=runs, read_store_for=read_store_for, now=now)

    def _run(self, rebuild_id: str) -> RebuildRun:
        run = self._runs.run(rebuild_id)
        if run is None:
            raise LookupError(f"no rebuild {rebuild_id}")
        return run

    def _phase(self, rebuild_id: str, phase: str, **changes: Any) -> RebuildRun:
        return self._runs.update(rebuild_id, lambda run: advanced(run, phase, **changes))

    def _data_prefix(self, run: RebuildRun) -> str:
        prefix = run.details.get("data_prefix")
        if not prefix:
            raise LookupError(
                f"rebuild {run.rebuild_id} has no finished export yet (export_done comes first)"
            )
        return str(prefix)

    # -- steps -------------------------------------------------------------------------------------

    def begin(self, rebuild_id: str) -> dict[str, Any]:
        """Claim a new generation and answer the plan. Again after success: the same plan, and
        nothing claimed (the claim the first call made is this run's)."""
        run = self._run(rebuild_id)
        if run.status != "RUNNING" or run.phase in ENDING:
            raise RunEnded(f"rebuild {rebuild_id} has ended ({run.status}): it claims nothing")
        current = self._control.control(run.projection)
        claimed = (
            current
            if current.building_rebuild_id == rebuild_id
            else self._control.claim(run.projection, rebuild_id)
        )
        now = self._now()

        def record(r: RebuildRun) -> RebuildRun:
            if r.generation is not None:
                return r  # recorded by an earlier call, with the first export time
            return advanced(
                r,
                "exporting",
                generation=claimed.building_generation,
                previous_generation=claimed.active_generation,
                export_time=now,
            )

        run = self._runs.update(rebuild_id, record)
        if run.phase in ENDING:
            # Abandoned while this call claimed (its execution was stopped or timed out meanwhile):
            # the abandon may have looked before the claim, so give it back here.
            self._endings.abandon(rebuild_id, run.error or "abandoned while it began")
            raise RunEnded(f"rebuild {rebuild_id} was abandoned while it began")
        return {
            "projection": run.projection,
            "generation": run.generation,
            "previous_generation": run.previous_generation,
            "export_prefix": export_prefix(rebuild_id),
            "buckets": list(range(self._buckets)),
            "export_poll_seconds": self._export_poll_seconds,
            "export_poll_limit": self._export_poll_limit,
            "claim_settle_seconds": self._claim_settle_seconds,
            "retire_delay_seconds": self._retire_delay_seconds,
        }

    def export_done(self, rebuild_id: str, export_arn: str) -> dict[str, str]:
        """Record which export this run reads: its data files' prefix. The first one recorded
        stays: if the export was requested twice (a retried request), the other one is never read.
        """
        run = self._run(rebuild_id)
        if run.details.get("data_prefix"):
            return {"data_prefix": str(run.details["data_prefix"])}
        prefix = self._find_data_prefix(rebuild_id, export_arn)
        recorded = self._runs.update(
            rebuild_id,
            lambda r: (
                r
                if r.details.get("data_prefix")
                else replace(r, details={**r.details, "data_prefix": prefix, "export_arn": export_arn})
            ),
        )
        return {"data_prefix": str(recorded.details["data_prefix"])}

    def _find_data_prefix(self, rebuild_id: str, export_arn: str) -> str:
        named = export_data_prefix(rebuild_id, export_arn)
        if any(is_data_file(key) for key in self._objects.list(named)):
            return named
        # moto names an export's folder with a fresh id, not the one ending its ARN: when the run's
        # export prefix holds one export's data, that is this one.
        folders = {
            key.rsplit("/data/", 1)[0] + "/data/"
            for key in self._objects.list(f"{export_prefix(rebuild_id)}/AWSDynamoDB/")
            if is_data_file(key)
        }
        if not folders:
            return named  # an export of an empty table has no data files
        if len(folders) == 1:
            return folders.pop()
        raise ExportNotFound(
            f"no data files under {named}, and {len(folders)} other exports under "
            f"{export_prefix(rebuild_id)}: cannot tell which is {export_arn}"
        )

    def shuffle(self, rebuild_id: str, key: str) -> dict[str, int]:
        """Split one export file into per-bucket fragments, grouping each stream in one bucket.
        Only the recorded export's data files count; any other file (a manifest, another export's
        file) is skipped with zero counts."""
        if not is_data_file(key) or not key.startswith(self._data_prefix(self._run(rebuild_id))):
            return {"commits": 0, "events": 0}
        fragments: dict[int, list[str]] = {}
        buffered = commits = events = parts = 0
        file_id = f"{zlib.crc32(key.encode()):08x}"

        def flush() -> None:
            # Part numbers follow the file's order: a retried shuffle rewrites the same objects.
            for bucket, lines in fragments.items():
                fragment = f"{bucket_prefix(rebuild_id, bucket)}{file_id}-{parts:05d}.jsonl"
                self._objects.put(fragment, "\n".join(lines).encode())
            fragments.clear()

        with contextlib.closing(self._objects.open(key)) as body:
            for item in read_export_stream(body):
                line = json.dumps(item, separators=(",", ":"))
                fragments.setdefault(bucket_of(stream_of(item), self._buckets), []).append(line)
                buffered += len(line)
                commits += 1
                events += event_count(item)
                if buffered >= self._shuffle_buffer_bytes:
                    flush()
                    buffered, parts = 0, parts + 1
        flush()
        name = f"{file_id}.jsonl"
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
        if self._run(rebuild_id).phase in ENDING:
            # The run was abandoned while this worker wrote: clean up after ourselves (never the
            # generation readers use, should a switch have won against the abandon).
            if self._control.control(run.projection).active_generation != run.generation:
                self._endings.delete_generation(run.projection, run.generation)
            raise RunEnded(f"rebuild {rebuild_id} was abandoned while bucket {bucket} was applied")
        counts = {"commits": len(ordered), "events": sum(len(c.events) for c in ordered)}
        self._runs.record_progress(rebuild_id, f"bucket#{bucket:03d}", counts)
        self._phase(rebuild_id, "applying")
        return counts

    def verify(self, rebuild_id: str) -> dict[str, int]:
        """Every export file shuffled, every bucket applied, nothing lost between the two."""
        run = self._run(rebuild_id)
        files = [key for key in self._objects.list(self._data_prefix(run)) if is_data_file(key)]
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
        """Readers move to the new generation. Again after success: readers stay where they are."""
        run = self._run(rebuild_id)
        if run.generation is None:
            raise LookupError(f"rebuild {rebuild_id} has no generation yet")
        control = self._control.switch(run.projection, rebuild_id, run.generation)
        self._phase(rebuild_id, "retiring")
        return {"active_generation": control.active_generation}

    def retire(self, rebuild_id: str, cursor: str | None = None) -> dict[str, Any]:
        """Delete the next rows of the old generation (at most `retire_pages_per_call` pages),
        from `cursor` (None: from the start). While rows may remain the answer has `more` and the
        cursor to call again with; the last call also deletes the run's scratch objects and ends
        the run (SUCCEEDED). Again after that: nothing more to do."""
        run = self._run(rebuild_id)
        if run.phase == "done":
            return {"deleted_rows": 0, "more": False, "cursor": None}
        if (
            run.generation is None
            or self._control.control(run.projection).active_generation != run.generation
        ):
            # Never delete the generation readers may still use.
            raise LookupError(f"rebuild {rebuild_id} has not switched readers: nothing to retire")
        deleted = 0
        if run.previous_generation is not None:
            store = self._read_store_for(run.projection)
            for _ in range(self._retire_pages_per_call):
                page, cursor = store.delete_partition_prefix_page(
                    f"{run.previous_generation}#", cursor=cursor
                )
                deleted += page
                if cursor is None:
                    break
            if cursor is not None:
                return {"deleted_rows": deleted, "more": True, "cursor": cursor}
        self._objects.delete_prefix(f"rebuilds/{rebuild_id}/")
        now = self._now()

        def finish(r: RebuildRun) -> RebuildRun:
            # A retirement that finished after all is no longer worth a note.
            details = {k: v for k, v in r.details.items() if k != "retirement"}
            return advanced(r, "done", status="SUCCEEDED", finished_at=r.finished_at or now, details=details)

        self._runs.update(rebuild_id, finish)
        return {"deleted_rows": deleted, "more": False, "cursor": None}

    def retirement_failed(self, rebuild_id: str, error: str, cause: str) -> dict[str, Any]:
        """Retiring failed after the switch: the run SUCCEEDED, readers stay on the new generation,
        and `details["retirement"]` tells operators which rows were left (see endings.py)."""
        return self._endings.retirement_failed(rebuild_id, _reason(error, cause))

    def abandon(self, rebuild_id: str, error: str, cause: str) -> dict[str, Any]:
        """A failed run: before the switch, readers keep the active generation and the partial one
        is removed (FAILED); after it, as `retirement_failed`. An ended run is left as it is."""
        return self._endings.abandon(rebuild_id, _reason(error, cause))

    def abandon_execution(self, rebuild_id: str, status: str) -> dict[str, Any]:
        """The run's execution stopped (ABORTED), timed out or failed without its own Abandon step
        having ended the run: end it as `abandon` does. Any other status, a run that has ended, or
        an execution that is not a run (a Distributed Map's child) changes nothing."""
        if status not in UNFINISHED_EXECUTION:
            return {"rebuild_id": rebuild_id, "ignored": f"execution {status}"}
        if self._runs.run(rebuild_id) is None:
            return {"rebuild_id": rebuild_id, "ignored": "no such rebuild"}
        return {"rebuild_id": rebuild_id, **self._endings.abandon(rebuild_id, f"execution {status}")}


def _reason(error: str, cause: str) -> str:
    try:
        parsed = json.loads(cause)
    except (ValueError, TypeError):
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return f"{parsed.get('errorType', error)}: {parsed['errorMessage']}"
    return f"{error}: {cause}" if cause else error
