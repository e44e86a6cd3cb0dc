"""Rebuild worker: the task steps of the rebuild state machine, one Lambda for all of them."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from orders_core import composition
from orders_core.rebuild.steps import RebuildSteps

logger = Logger(service="orders-rebuild")


def dispatch(event: dict[str, Any], target: RebuildSteps) -> dict[str, Any]:
    step = event.get("step")
    rebuild_id = str(event["rebuild_id"])
    if step == "begin":
        return target.begin(rebuild_id)
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
        return target.retire(rebuild_id)
    if step == "abandon":
        error = event.get("error") or {}
        return target.abandon(
            rebuild_id, str(error.get("Error", "RebuildFailed")), str(error.get("Cause", ""))
        )
    raise ValueError(f"unknown rebuild step {step!r}")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(rebuild_id=event.get("rebuild_id"), step=event.get("step"))
    return dispatch(event, composition.root().rebuild_steps)
