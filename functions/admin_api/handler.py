"""Admin API: HTTP adapter for operators: start, follow and release rebuilds, see every
projection's state, list and replay parked commits."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from orders_core import composition, web
from orders_core.projections.registry import NAMES as PROJECTIONS

logger = Logger(service="orders-admin")
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)


# A read model by its registered name: the operations refuse any other (422). Stated in the schema
# only, so that the refusal keeps its message (which lists the names).
KNOWN_PROJECTION: dict[str, Any] = {"enum": list(PROJECTIONS)}


class StartRebuildBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    projection: Annotated[StrictStr, Field(json_schema_extra=KNOWN_PROJECTION)]


class ReleaseRebuildBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    projection: Annotated[StrictStr, Field(max_length=100, json_schema_extra=KNOWN_PROJECTION)]


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    projection: Annotated[StrictStr, Field(max_length=100, json_schema_extra=KNOWN_PROJECTION)] | None = None


def _json(body: Any, status: int = 200) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


@app.post("/admin/rebuilds")
def start_rebuild(body: Annotated[StartRebuildBody, Body()]) -> Response[str]:
    web.require_operator(app)
    run = composition.root().rebuild_operations.start(body.projection)
    return _json(
        {"rebuild_id": run.rebuild_id, "status": run.status, "projection": run.projection}, status=202
    )


@app.post("/admin/rebuilds/release")
def release_rebuild(body: Annotated[ReleaseRebuildBody, Body()]) -> Response[str]:
    web.require_operator(app)
    return _json(composition.root().rebuild_operations.release(body.projection))


@app.get("/admin/rebuilds")
def list_rebuilds() -> Response[str]:
    web.require_operator(app)
    return _json({"rebuilds": composition.root().rebuild_operations.runs()})


@app.get("/admin/rebuilds/<rebuild_id>")
def get_rebuild(rebuild_id: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    return _json(composition.root().rebuild_operations.run(rebuild_id[:200]))


@app.get("/admin/projections")
def list_projections() -> Response[str]:
    web.require_operator(app)
    now_ms = int(time.time() * 1000)
    return _json({"projections": composition.root().rebuild_operations.projections(now_ms)})


@app.get("/admin/failures")
def list_failures(
    projection: Annotated[str | None, Query(max_length=100, json_schema_extra=KNOWN_PROJECTION)] = None,
) -> Response[str]:
    web.require_operator(app)
    parked = composition.root().parked_commits.parked(projection)
    return _json({"parked": [p.to_json() for p in parked]})


@app.post("/admin/failures/replay")
def replay_failures(body: Annotated[ReplayBody, Body()]) -> Response[str]:
    web.require_operator(app)
    outcomes = composition.root().parked_commits.replay(body.projection)
    return _json({"replayed": [o.to_json() for o in outcomes]})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return web.handle(app, event, context, logger=logger)
