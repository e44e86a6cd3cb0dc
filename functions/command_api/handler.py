"""Command API: HTTP adapter for the order and inventory commands."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from command_api.models import (
    CancelOrderBody,
    ItemBody,
    PlaceOrderBody,
    ReorderLevelBody,
    ShipOrderBody,
    StockBody,
)
from orders_core import composition, telemetry, web
from orders_core.application import CommandResult, CommandService
from orders_core.domain import inventory, orders

SERVICE = "orders-commands"
logger = Logger(service=SERVICE)
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)

# Namespace for order ids derived from (customer, Idempotency-Key): a retried POST /orders
# without an order id lands on the same stream and is recognised there.
_ORDER_ID_NAMESPACE = uuid.UUID("6f1c2c1e-6d0b-4c53-9d8e-5a8f0e4f0a11")


def service() -> CommandService:
    # The service logs through this function's logger: its lines carry the correlation id too.
    return composition.root(log=logger).command_service


def _accepted(
    result: CommandResult, key: str, value: str, status: int = 200, **headers: str
) -> Response[str]:
    body = {key: value, "version": result.version, "correlation_id": result.correlation_id}
    all_headers = {"ETag": f'"{result.version}"', **headers}
    if result.replayed:
        all_headers["Idempotent-Replayed"] = "true"
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body), headers=all_headers
    )


def _line(item: Any) -> orders.OrderLine:
    return orders.OrderLine(product_id=item.product_id, quantity=item.quantity, unit_price=item.unit_price)


@app.post("/orders")
def place_order(body: Annotated[PlaceOrderBody, Body()]) -> Response[str]:
    who = web.caller(app)
    key = web.idempotency_key(app)
    if body.order_id:
        order_id = str(uuid.UUID(body.order_id))
    elif key:
        order_id = str(uuid.uuid5(_ORDER_ID_NAMESPACE, f"{who.user_id}\n{key}"))
    else:
        order_id = str(uuid.uuid4())
    command = orders.PlaceOrder(
        order_id=order_id,
        customer_id=who.user_id,
        items=tuple(_line(item) for item in body.items),
        shipping_address=orders.ShippingAddress(**body.shipping_address.model_dump()),
    )
    # Without a key, a client-chosen order id identifies the command: resending it is a retry.
    command_id = key or (f"place-order:{order_id}" if body.order_id else None)
    context = web.command_context(app, who, body.model_dump(mode="json"), command_id=command_id)
    result = service().execute(orders.ORDER, order_id, command, context, expect_new=True)
    return _accepted(result, "order_id", order_id, status=201, Location=f"/orders/{order_id}")


@app.post("/orders/<order_id>/items")
def add_item(order_id: Annotated[str, Path()], body: Annotated[ItemBody, Body()]) -> Response[str]:
    who = web.caller(app)
    order_id = web.order_id_from_path(order_id)
    command = orders.AddItem(order_id=order_id, requested_by=who.user_id, line=_line(body))
    context = web.command_context(app, who, body.model_dump(mode="json"))
    result = service().execute(orders.ORDER, order_id, command, context)
    return _accepted(result, "order_id", order_id)


@app.post("/orders/<order_id>/cancel")
def cancel_order(order_id: Annotated[str, Path()], body: Annotated[CancelOrderBody, Body()]) -> Response[str]:
    who = web.caller(app)
    order_id = web.order_id_from_path(order_id)
    command = orders.CancelOrder(
        order_id=order_id, requested_by=who.user_id, by_operator=who.is_operator, reason=body.reason
    )
    context = web.command_context(app, who, body.model_dump(mode="json"))
    result = service().execute(orders.ORDER, order_id, command, context)
    return _accepted(result, "order_id", order_id)


@app.post("/orders/<order_id>/ship")
def ship_order(order_id: Annotated[str, Path()], body: Annotated[ShipOrderBody, Body()]) -> Response[str]:
    who = web.require_operator(app)
    order_id = web.order_id_from_path(order_id)
    command = orders.ShipOrder(order_id=order_id, tracking_number=body.tracking_number)
    context = web.command_context(app, who, body.model_dump(mode="json"))
    result = service().execute(orders.ORDER, order_id, command, context)
    return _accepted(result, "order_id", order_id)


@app.post("/inventory/<product_id>/stock")
def receive_stock(product_id: Annotated[str, Path()], body: Annotated[StockBody, Body()]) -> Response[str]:
    who = web.require_operator(app)
    command = inventory.ReceiveStock(product_id=product_id, quantity=body.quantity)
    context = web.command_context(app, who, body.model_dump(mode="json"))
    result = service().execute(inventory.PRODUCT, product_id, command, context)
    return _accepted(result, "product_id", product_id)


@app.put("/inventory/<product_id>/reorder-level")
def set_reorder_level(
    product_id: Annotated[str, Path()], body: Annotated[ReorderLevelBody, Body()]
) -> Response[str]:
    who = web.require_operator(app)
    command = inventory.SetReorderLevel(product_id=product_id, reorder_level=body.reorder_level)
    context = web.command_context(app, who, body.model_dump(mode="json"))
    result = service().execute(inventory.PRODUCT, product_id, command, context)
    return _accepted(result, "product_id", product_id)


# The command each route carries, as the metrics' `command` dimension.
_COMMAND_OF_ROUTE = {
    "POST /orders": "PlaceOrder",
    "POST /orders/{order_id}/items": "AddItem",
    "POST /orders/{order_id}/cancel": "CancelOrder",
    "POST /orders/{order_id}/ship": "ShipOrder",
    "POST /inventory/{product_id}/stock": "ReceiveStock",
    "PUT /inventory/{product_id}/reorder-level": "SetReorderLevel",
}


def _outcome(status: int) -> str:
    if status < 400:
        return "CommandAccepted"  # retries answered from the first run included
    return "CommandRejected" if status < 500 else "CommandFailed"


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    command = _COMMAND_OF_ROUTE.get(str(event.get("routeKey", "")), "Unknown")
    with telemetry.invocation_metrics(SERVICE, command=command) as metrics:
        try:
            response = web.handle(app, event, context, logger=logger)
        except Exception:
            metrics.count("CommandFailed")
            raise
        finally:
            metrics.metadata("correlation_id", logger.get_correlation_id())
        metrics.count(_outcome(int(response["statusCode"])))
        metrics.metadata("status", response["statusCode"])
    return response
