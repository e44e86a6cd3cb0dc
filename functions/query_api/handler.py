"""Query API: reads for customers and operators, from the read models and the event log."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from orders_core import bootstrap, web
from orders_core.command_service import CommandService
from orders_core.domain import orders
from orders_core.domain.errors import InvalidCommand, NotFound
from orders_core.projections import customer_orders, inventory, sales
from orders_core.projections.customer_orders import CustomerOrders, OrderView
from orders_core.projections.inventory import Inventory
from orders_core.projections.registry import registration
from orders_core.projections.sales import SalesAnalytics
from orders_core.readmodels.port import InvalidCursor
from orders_core.store.dynamodb import DynamoDBEventStore

logger = Logger(service="orders-queries")
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)

MAX_WAIT_SECONDS = 3.0
_POLL_SECONDS = 0.1


@dataclass
class ReadModels:
    history: CommandService
    orders: CustomerOrders
    sales: SalesAnalytics
    inventory: Inventory


_models: ReadModels | None = None


def models() -> ReadModels:
    global _models
    if _models is None:
        client = bootstrap.dynamodb_client()
        events = DynamoDBEventStore(client, bootstrap.table_name(bootstrap.EVENTS))

        def store(name: str) -> Any:
            return bootstrap.read_store(registration(name).table, client)

        _models = ReadModels(
            history=CommandService(events),
            orders=CustomerOrders(store(customer_orders.NAME), events),
            sales=SalesAnalytics(store(sales.NAME), events),
            inventory=Inventory(store(inventory.NAME), events),
        )
    return _models


def use_models(replacement: ReadModels | None) -> None:
    """Let tests and the local run choose the stores."""
    global _models
    _models = replacement


def _json(body: Any, *, status: int = 200, version: int | None = None, **headers: str) -> Response[str]:
    if version is not None:
        headers["ETag"] = f'"{version}"'
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body), headers=headers
    )


def _order_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(f"order {raw[:64]} not found") from None


def _visible(view: OrderView | None, who: web.Caller) -> OrderView | None:
    # Another customer's order is answered exactly like a missing one.
    if view is None or not (who.is_operator or view.customer_id == who.user_id):
        return None
    return view


@app.get("/orders/<order_id>")
def get_order(
    order_id: Annotated[str, Path()],
    min_version: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
) -> Response[str]:
    who = web.caller(app)
    order_id = _order_id(order_id)
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while True:
        view = _visible(models().orders.get(order_id), who)
        if min_version is None or (view is not None and view.version >= min_version):
            break
        if time.monotonic() >= deadline:
            at = f"version {view.version}" if view else "no version yet"
            return web.problem(
                503,
                "View not caught up",
                f"the order view shows {at}; version {min_version} is not visible yet, retry shortly",
                headers={"Retry-After": "1"},
            )
        time.sleep(_POLL_SECONDS)
    if view is None:
        raise NotFound(f"order {order_id} not found")
    return _json(view.to_json(), version=view.version)


def _orders_page(customer_id: str, limit: int, cursor: str | None) -> Response[str]:
    try:
        views, next_cursor = models().orders.for_customer(customer_id, limit=limit, cursor=cursor)
    except InvalidCursor as exc:
        raise InvalidCommand(str(exc), "cursor") from exc
    return _json({"orders": [view.to_json() for view in views], "next_cursor": next_cursor})


@app.get("/customers/me/orders")
def my_orders(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response[str]:
    return _orders_page(web.caller(app).user_id, limit, cursor)


@app.get("/customers/<customer_id>/orders")
def customer_orders_page(
    customer_id: Annotated[str, Path()],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response[str]:
    who = web.caller(app)
    if not who.is_operator and customer_id != who.user_id:
        raise NotFound("customer not found")
    return _orders_page(customer_id, limit, cursor)


@app.get("/analytics/sales/<day>")
def sales_of_day(day: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    try:
        canonical = date.fromisoformat(day).isoformat()
    except ValueError:
        raise InvalidCommand("the date must be a calendar day as YYYY-MM-DD", "date") from None
    if canonical != day:
        raise InvalidCommand("the date must be a calendar day as YYYY-MM-DD", "date")
    figures = models().sales.get(day)
    if figures is None:
        raise NotFound(f"no sales recorded for {day}")
    return _json(figures, version=figures["revision"])


@app.get("/inventory/<product_id>")
def product_inventory(product_id: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    orders.check_product_id(product_id)
    stock = models().inventory.get(product_id)
    if stock is None:
        raise NotFound(f"product {product_id} not found")
    return _json(stock, version=stock["revision"])


@app.get("/orders/<order_id>/events")
def order_events(order_id: Annotated[str, Path()]) -> Response[str]:
    who = web.caller(app)
    order_id = _order_id(order_id)
    state, events = models().history.history(orders.ORDER, order_id)
    if state.status == "new" or not (who.is_operator or state.customer_id == who.user_id):
        raise NotFound(f"order {order_id} not found")
    body = {"order_id": order_id, "version": events[-1].version, "events": [e.to_json() for e in events]}
    return _json(body, version=events[-1].version)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return web.handle(app, event, context)
