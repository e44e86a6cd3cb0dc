"""How a rebuild run ends when it does not end by retiring: the switch draws the line.

Before the switch readers use the previous generation, so a run that fails is abandoned: its
claim is released, its partial generation deleted, the run marked FAILED. After the switch
readers use the new generation, and no failure may take that back: the run SUCCEEDED, and what
retiring did not finish is written down for operators (`details["retirement"]`).

What an unfinished retirement leaves: rows of the old generation in the read model's table, and
the run's scratch objects in the export bucket. Both are harmless. Readers and the live
projection use only the active generation, and generation numbers are never reused, so nothing
reads those rows again; the scratch objects expire with the bucket's lifecycle rule. The rows
cost storage until someone deletes them (every item whose pk begins with "<generation>#"); no
later rebuild does it, as each retires only the generation it replaced.

The same holds for an abandoned generation, which is deleted within a bounded number of scan
pages (an abandon runs in one Lambda call, a release in one API request): a partial generation of
millions of rows is not deleted in full, and `details["abandoned_rows"]` says so.

Every entry point is safe to repeat, from the workflow's own Abandon step, from the rule that
reports executions which stopped, timed out or failed, and from an operator's release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orders_core.projections.control import ControlStore, ProjectionControl
from orders_core.readmodels.port import ReadStore
from orders_core.rebuild.runs import ENDING, RebuildRun, RunStore

# Scan pages (of DELETE_PAGE_ITEMS rows evaluated) an abandon spends deleting the partial
# generation: under a minute, well within the worker's 15.
DELETE_PAGES = 50


class RunEndings:
    def __init__(
        self,
        *,
        control: ControlStore,
        runs: RunStore,
        read_store_for: Callable[[str], ReadStore],
        now: Callable[[], str],
        delete_pages: int = DELETE_PAGES,
    ) -> None:
        self._control = control
        self._runs = runs
        self._read_store_for = read_store_for
        self._now = now
        self._delete_pages = delete_pages

    def _run(self, rebuild_id: str) -> RebuildRun:
        run = self._runs.run(rebuild_id)
        if run is None:
            raise LookupError(f"no rebuild {rebuild_id}")
        return run

    def abandon(self, rebuild_id: str, reason: str) -> dict[str, Any]:
        """End a failed run: before the switch, release its claim and delete its partial
        generation (FAILED); after it, as `retirement_failed` (SUCCEEDED, readers untouched).

        A run that has already failed and holds no claim is left as it is, its first reason kept.
        """
        run = self._run(rebuild_id)
        control = self._control.control(run.projection)
        if _switched(run, control):
            return self._succeeded_unretired(run, reason)
        holds = control.building_rebuild_id == rebuild_id
        if run.phase == "failed" and not holds:
            return {"status": run.status, "released": run.generation is not None, "error": run.error}
        # The generation to delete: a run whose begin claimed but did not record it yet has it
        # only in the control row.
        generation = (
            run.generation if run.generation is not None else (control.building_generation if holds else None)
        )
        # Marked first: a bucket worker still running looks at this after it writes, and removes
        # what it wrote (see RebuildSteps.apply_bucket), so nothing of the partial generation
        # outlives the run.
        self._runs.update(
            rebuild_id, lambda r: r if r.phase in ENDING else replace(r, phase="abandoning", error=reason)
        )
        self._control.release(run.projection, rebuild_id)
        after = self._control.control(run.projection)
        if generation is not None and after.active_generation == generation:
            # The switch won the race with this abandon (an execution that timed out while its
            # switch task still ran): readers are on the run's generation now, keep it.
            return self._succeeded_unretired(self._run(rebuild_id), reason)
        left = {}
        if generation is not None and not self.delete_generation(run.projection, generation):
            left = {"abandoned_rows": _left_note(run.projection, generation, "abandoned")}
        now = self._now()
        ended = self._runs.update(
            rebuild_id,
            lambda r: replace(
                r,
                phase="failed",
                status="FAILED",
                finished_at=r.finished_at or now,
                error=r.error or reason,
                details={**r.details, **left},
            ),
        )
        # "released": the run had claimed a generation, and holds it no more (whichever call let go).
        return {"status": ended.status, "released": generation is not None, "error": ended.error}

    def delete_generation(self, projection: str, generation: int) -> bool:
        """Delete a generation nobody reads, within the page budget; True if it is all gone."""
        store = self._read_store_for(projection)
        cursor: str | None = None
        for _ in range(self._delete_pages):
            _, cursor = store.delete_partition_prefix_page(f"{generation}#", cursor=cursor)
            if cursor is None:
                return True
        return False

    def retirement_failed(self, rebuild_id: str, reason: str) -> dict[str, Any]:
        """Retiring failed after the switch: the run SUCCEEDED, the leftovers are written down.
        Called for a run that has not switched (which the workflow does not do), it abandons it:
        only the switch may say that readers moved."""
        return self.abandon(rebuild_id, reason)

    def _succeeded_unretired(self, run: RebuildRun, reason: str) -> dict[str, Any]:
        if run.phase == "done":
            # Ended already: retired in full, or written down by an earlier call.
            return {"status": run.status, "released": False, "retirement": run.details.get("retirement")}
        note = (
            f"retiring generation {run.previous_generation} did not finish ({reason}); readers use "
            f"generation {run.generation}. " + _left_note(run.projection, run.previous_generation, "retired")
        )
        now = self._now()
        ended = self._runs.update(
            run.rebuild_id,
            lambda r: (
                r
                if r.phase == "done"
                else replace(
                    r,
                    phase="done",
                    status="SUCCEEDED",
                    finished_at=r.finished_at or now,
                    # An abandon that lost the race with the switch marked an error: it did not happen.
                    error=None,
                    details={**r.details, "retirement": note},
                )
            ),
        )
        return {"status": ended.status, "released": False, "retirement": ended.details.get("retirement")}


def _switched(run: RebuildRun, control: ProjectionControl) -> bool:
    """Readers use the run's generation (generation numbers are never reused, so only this run's
    switch can have made it active), or the run recorded its switch."""
    if run.phase in ("retiring", "done"):
        return True
    return run.generation is not None and control.active_generation == run.generation


def _left_note(projection: str, generation: int | None, what: str) -> str:
    return (
        f"Rows of {what} generation {generation} may remain in the {projection} table: harmless (no "
        "reader or projector uses that generation again, and generation numbers are never reused), "
        f"they cost storage until deleted (every item whose pk begins with '{generation}#')."
    )
