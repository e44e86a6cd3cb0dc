"""Query API: reads for customers and operators."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from orders_core import bootstrap, web
from orders_core.command_service import CommandService
from orders_core.domain import orders
from orders_core.domain.errors import NotFound

logger = Logger(service="orders-queries")
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)

_service: CommandService | None = None


def service() -> CommandService:
    global _service
    if _service is None:
        _service = bootstrap.command_service()
    return _service


def use_service(replacement: CommandService | None) -> None:
    global _service
    _service = replacement


@app.get("/orders/<order_id>/events")
def order_events(order_id: Annotated[str, Path()]) -> Response[str]:
    who = web.caller(app)
    try:
        order_id = str(uuid.UUID(order_id))
    except ValueError:
        raise NotFound(f"order {order_id[:64]} not found") from None
    state, events = service().history(orders.ORDER, order_id)
    if state.status == "new" or not (who.is_operator or state.customer_id == who.user_id):
        raise NotFound(f"order {order_id} not found")
    body = {"order_id": order_id, "version": events[-1].version, "events": [e.to_json() for e in events]}
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(body),
        headers={"ETag": f'"{events[-1].version}"'},
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return web.handle(app, event, context)
