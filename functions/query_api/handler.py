"""Query API: reads for customers and operators, from the read models and the event log."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from orders_core import bootstrap, web
from orders_core.command_service import CommandService
from orders_core.domain import orders
from orders_core.domain.errors import InvalidCommand, NotFound
from orders_core.projections import customer_orders, customer_summary, inventory, sales
from orders_core.projections.customer_orders import CustomerOrders, OrderView
from orders_core.projections.customer_summary import CustomerSummary
from orders_core.projections.inventory import Inventory
from orders_core.projections.sales import SalesAnalytics
from orders_core.readmodels.port import InvalidCursor
from orders_core.rebuild.control import ControlStore
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.temporal import TemporalOrders, parse_instant

logger = Logger(service="orders-queries")
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)

MAX_WAIT_SECONDS = 3.0
# Readers may use the previous generation this long after a switch; retiring waits longer.
ACTIVE_GENERATION_TTL_SECONDS = 1.0
_POLL_SECONDS = 0.1


class ReadModels:
    """The read models at the generation readers use now (looked up at most once a second)."""

    def __init__(
        self,
        history: CommandService,
        control: ControlStore,
        build: Callable[[str, int], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history = history
        self._control = control
        self._build = build
        self._clock = clock
        self._active: dict[str, tuple[float, int]] = {}
        self._built: dict[tuple[str, int], Any] = {}

    def _current(self, name: str) -> Any:
        now = self._clock()
        cached = self._active.get(name)
        if cached is None or now - cached[0] > ACTIVE_GENERATION_TTL_SECONDS:
            cached = (now, self._control.control(name).active_generation)
            self._active[name] = cached
        key = (name, cached[1])
        if key not in self._built:
            self._built[key] = self._build(name, cached[1])
        return self._built[key]

    @property
    def orders(self) -> CustomerOrders:
        return cast(CustomerOrders, self._current(customer_orders.NAME))

    @property
    def sales(self) -> SalesAnalytics:
        return cast(SalesAnalytics, self._current(sales.NAME))

    @property
    def inventory(self) -> Inventory:
        return cast(Inventory, self._current(inventory.NAME))

    @property
    def summaries(self) -> CustomerSummary:
        return cast(CustomerSummary, self._current(customer_summary.NAME))


_models: ReadModels | None = None


def models() -> ReadModels:
    global _models
    if _models is None:
        client = bootstrap.dynamodb_client()
        events = DynamoDBEventStore(client, bootstrap.table_name(bootstrap.EVENTS))
        _models = ReadModels(
            CommandService(events, snapshots=bootstrap.snapshot_store(client)),
            bootstrap.control_store(client),
            bootstrap.projection_factory(client),
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
    as_of: Annotated[str | None, Query(max_length=64)] = None,
    at_version: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
) -> Response[str]:
    who = web.caller(app)
    order_id = _order_id(order_id)
    if as_of is not None or at_version is not None:
        return _order_then(order_id, who, as_of=as_of, at_version=at_version, min_version=min_version)
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


def _order_then(
    order_id: str, who: web.Caller, *, as_of: str | None, at_version: int | None, min_version: int | None
) -> Response[str]:
    """The order as it was at a version or an instant, folded from the event store (see temporal.py)."""
    if as_of is not None and at_version is not None:
        message = "ask for one point in time: as_of or at_version, not both"
        errors = [{"field": "as_of", "message": message}, {"field": "at_version", "message": message}]
        return web.problem(422, "Invalid request", message, errors=errors)
    if min_version is not None:
        # min_version waits for the read model; the past is read from the event store, always complete.
        raise InvalidCommand("min_version cannot be combined with as_of or at_version", "min_version")
    history = models().history
    temporal = TemporalOrders(history.store, history.snapshots)
    if at_version is not None:
        found = temporal.at_version(order_id, at_version)
    else:
        try:
            instant = parse_instant(as_of or "")
        except ValueError as exc:
            raise InvalidCommand(str(exc), "as_of") from exc
        found = temporal.as_of(order_id, instant)
    view = _visible(found.view if found else None, who)
    if found is None or view is None:
        raise NotFound(f"order {order_id} not found")
    if at_version is not None and view.version < at_version:
        # A version the order has not reached is a resource that does not exist (yet), not bad input.
        raise NotFound(f"order {order_id} is at version {view.version}; it has no version {at_version}")
    return _json({**view.to_json(), "as_of": found.as_of}, version=view.version)


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


@app.get("/customers/me/summary")
def my_summary() -> Response[str]:
    who = web.caller(app)
    summary = models().summaries.get(who.user_id)
    if summary is None:
        raise NotFound("no orders yet")
    return _json(summary, version=summary["revision"])


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
    return web.handle(app, event, context, logger=logger)
