"""Rebuild worker: the task steps of the rebuild state machine, one Lambda for all of them, and
the target of the rule that reports the state machine's executions which stopped, timed out or
failed (an EventBridge event, told apart by its detail-type: it has no "step")."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from orders_core import composition
from orders_core.rebuild.steps import RebuildSteps

logger = Logger(service="orders-rebuild")
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


def _error(event: dict[str, Any]) -> tuple[str, str]:
    """The Catch's {"Error", "Cause"} of a failed state."""
    error = event.get("error") or {}
    return str(error.get("Error", "RebuildFailed")), str(error.get("Cause", ""))


def dispatch(event: dict[str, Any], target: RebuildSteps) -> dict[str, Any]:
    if event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        detail = event["detail"]
        # The execution is named after the run (RebuildOperations.start).
        return target.abandon_execution(str(detail["name"]), str(detail["status"]))
    step = event.get("step")
    rebuild_id = str(event["rebuild_id"])
    if step == "begin":
        return target.begin(rebuild_id)
    if step == "export_done":
        return target.export_done(rebuild_id, str(event["export_arn"]))
    if step == "shuffle":
        return target.shuffle(rebuild_id, str(event["key"]))
    if step == "apply_bucket":
        return target.apply_bucket(rebuild_id, int(event["bucket"]))
    if step == "verify":
        return target.verify(rebuild_id)
    if step == "catch_up":
        return target.catch_up(rebuild_id)
    if step == "switch":
        return target.switch(rebuild_id)
    if step == "retire":
        cursor = event.get("cursor")
        return target.retire(rebuild_id, str(cursor) if cursor is not None else None)
    if step == "retirement_failed":
        return target.retirement_failed(rebuild_id, *_error(event))
    if step == "abandon":
        return target.abandon(rebuild_id, *_error(event))
    raise ValueError(f"unknown rebuild step {step!r}")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail: dict[str, Any] = event["detail"] if isinstance(event.get("detail"), dict) else {}
    logger.append_keys(
        rebuild_id=event.get("rebuild_id") or detail.get("name"),
        step=event.get("step") or event.get("detail-type"),
    )
    return dispatch(event, composition.root().rebuild_steps)
