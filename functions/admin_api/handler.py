"""Admin API: operators start and follow rebuilds and see every projection's state."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, StrictStr

from orders_core import bootstrap, web
from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.envelope import format_timestamp
from orders_core.projections.registry import NAMES
from orders_core.rebuild.control import ControlStore, RebuildRun

logger = Logger(service="orders-admin")
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)


class StartRebuildBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    projection: StrictStr


@dataclass
class Admin:
    control: ControlStore
    start_execution: Any  # (rebuild_id, input) -> execution arn; None where no workflow is deployed


_admin: Admin | None = None


def admin() -> Admin:
    global _admin
    if _admin is None:
        import boto3

        # Absent where no workflow is deployed (a local run on an external endpoint): the other
        # admin routes still work, and starting a rebuild answers 503.
        state_machine = os.environ.get("REBUILD_STATE_MACHINE_ARN", "")
        client = boto3.client("stepfunctions")

        def start(rebuild_id: str, payload: dict[str, Any]) -> str:
            reply = client.start_execution(
                stateMachineArn=state_machine, name=rebuild_id, input=json.dumps(payload)
            )
            return str(reply["executionArn"])

        _admin = Admin(bootstrap.control_store(), start if state_machine else None)
    return _admin


def use_admin(replacement: Admin | None) -> None:
    global _admin
    _admin = replacement


def _run_view(run: RebuildRun, control: ControlStore) -> dict[str, Any]:
    progress = control.progress(run.rebuild_id)
    files = [v for k, v in progress.items() if k.startswith("file#")]
    buckets = [v for k, v in progress.items() if k.startswith("bucket#")]
    view = {k: v for k, v in asdict(run).items() if k not in ("step", "details")}
    view.update(
        files_processed=len(files),
        files_total=run.details.get("files"),
        events_exported=sum(v["events"] for v in files),
        events_processed=sum(v["events"] for v in buckets),
        buckets_processed=len(buckets),
    )
    return view


def _json(body: Any, status: int = 200) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


@app.post("/admin/rebuilds")
def start_rebuild(body: Annotated[StartRebuildBody, Body()]) -> Response[str]:
    web.require_operator(app)
    if body.projection not in NAMES:
        raise InvalidCommand(f"unknown projection; known: {', '.join(NAMES)}", "projection")
    target = admin()
    if target.start_execution is None:
        return web.problem(
            503,
            "Rebuilds unavailable",
            "no rebuild workflow is configured here (locally, 'orders serve' runs it only on its embedded "
            "moto, not with AWS_ENDPOINT_URL)",
        )
    running = target.control.control(body.projection)
    if running.building_rebuild_id:
        raise RuleViolation(f"rebuild {running.building_rebuild_id} of {body.projection} is still running")
    now = datetime.now(UTC)
    rebuild_id = f"{now:%Y%m%dT%H%M%S}-{body.projection.replace('_', '-')}-{secrets.token_hex(2)}"
    run = target.control.save_run(
        RebuildRun(rebuild_id=rebuild_id, projection=body.projection, started_at=format_timestamp(now))
    )
    try:
        arn = target.start_execution(rebuild_id, {"rebuild_id": rebuild_id, "projection": body.projection})
    except Exception as exc:
        target.control.save_run(
            RebuildRun(
                **{**asdict(run), "status": "FAILED", "phase": "failed", "error": f"could not start: {exc}"}
            )
        )
        raise
    target.control.save_run(RebuildRun(**{**asdict(run), "execution_arn": arn}))
    return _json({"rebuild_id": rebuild_id, "status": "RUNNING", "projection": body.projection}, status=202)


@app.get("/admin/rebuilds")
def list_rebuilds() -> Response[str]:
    web.require_operator(app)
    control = admin().control
    return _json({"rebuilds": [_run_view(run, control) for run in control.runs()[:50]]})


@app.get("/admin/rebuilds/<rebuild_id>")
def get_rebuild(rebuild_id: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    control = admin().control
    run = control.run(rebuild_id[:200])
    if run is None:
        raise NotFound(f"no rebuild {rebuild_id[:200]}")
    return _json(_run_view(run, control))


@app.get("/admin/projections")
def list_projections() -> Response[str]:
    web.require_operator(app)
    control = admin().control
    now_ms = int(time.time() * 1000)
    rows = []
    for name in NAMES:
        state = control.control(name)
        live = control.live(name)
        rows.append(
            {
                "projection": name,
                "active_generation": state.active_generation,
                "building_generation": state.building_generation,
                "rebuild_id": state.building_rebuild_id,
                "lag_ms": live["lag_ms"] if live else None,
                "last_batch_seconds_ago": round((now_ms - live["at_ms"]) / 1000, 1) if live else None,
            }
        )
    return _json({"projections": rows})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return web.handle(app, event, context, logger=logger)
