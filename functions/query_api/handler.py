"""Query API: HTTP adapter for reads, from the read models and the event log (orders_core.queries)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from orders_core import composition, web
from orders_core.domain import orders
from orders_core.queries.orders import AsOf, AtVersion, PointInTime
from orders_core.queries.temporal import parse_instant

logger = Logger(service="orders-queries")
app = APIGatewayHttpResolver(enable_validation=True)
web.install_problem_handlers(app)


def _json(body: Any, *, version: int | None = None) -> Response[str]:
    headers = {"ETag": f'"{version}"'} if version is not None else {}
    return Response(status_code=200, content_type="application/json", body=json.dumps(body), headers=headers)


def _point_in_time(as_of: str | None, at_version: int | None, min_version: int | None) -> PointInTime | None:
    if as_of is not None and at_version is not None:
        raise web.InvalidParameter(
            "ask for one point in time: as_of or at_version, not both", "as_of", "at_version"
        )
    if as_of is None and at_version is None:
        return None
    if min_version is not None:
        # min_version waits for the read model; the past is read from the event store, always complete.
        raise web.InvalidParameter("min_version cannot be combined with as_of or at_version", "min_version")
    if at_version is not None:
        return AtVersion(at_version)
    try:
        return AsOf(parse_instant(as_of or ""))
    except ValueError as exc:
        raise web.InvalidParameter(str(exc), "as_of") from exc


# An instant as parse_instant reads it: RFC 3339 with seconds and an offset, at most 9 decimals.
AS_OF_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+\-][0-9]{2}:[0-9]{2})$"
)


def _calendar_day(day: str) -> str:
    try:
        if date.fromisoformat(day).isoformat() == day:
            return day
    except ValueError:
        pass
    raise web.InvalidParameter("the date must be a calendar day as YYYY-MM-DD", "date")


@app.get("/orders/<order_id>")
def get_order(
    order_id: Annotated[str, Path()],
    min_version: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
    as_of: Annotated[
        str | None, Query(max_length=64, json_schema_extra={"format": "date-time", "pattern": AS_OF_PATTERN})
    ] = None,
    at_version: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
) -> Response[str]:
    who = web.caller(app)
    order_id = web.order_id_from_path(order_id)
    point = _point_in_time(as_of, at_version, min_version)
    queries = composition.root().order_queries
    if point is not None:
        then = queries.order_at(order_id, who, point)
        return _json({**then.view.to_json(), "as_of": then.as_of}, version=then.view.version)
    view = queries.order(order_id, who, min_version=min_version)
    return _json(view.to_json(), version=view.version)


@app.get("/orders/<order_id>/events")
def order_events(order_id: Annotated[str, Path()]) -> Response[str]:
    who = web.caller(app)
    history = composition.root().order_queries.history(web.order_id_from_path(order_id), who)
    body = {
        "order_id": history.order_id,
        "version": history.version,
        "events": [e.to_json() for e in history.events],
    }
    return _json(body, version=history.version)


def _orders_page(customer_id: str, who: web.Caller, limit: int, cursor: str | None) -> Response[str]:
    views, next_cursor = composition.root().order_queries.customer_orders(
        customer_id, who, limit=limit, cursor=cursor
    )
    return _json({"orders": [view.to_json() for view in views], "next_cursor": next_cursor})


@app.get("/customers/me/orders")
def my_orders(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response[str]:
    who = web.caller(app)
    return _orders_page(who.user_id, who, limit, cursor)


@app.get("/customers/<customer_id>/orders")
def customer_orders_page(
    customer_id: Annotated[str, Path()],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response[str]:
    return _orders_page(customer_id, web.caller(app), limit, cursor)


@app.get("/analytics/sales/<day>")
def sales_of_day(day: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    figures = composition.root().reports.sales_of_day(_calendar_day(day))
    return _json(figures, version=figures["revision"])


@app.get("/inventory/<product_id>")
def product_inventory(product_id: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    orders.check_product_id(product_id)
    stock = composition.root().reports.product_stock(product_id)
    return _json(stock, version=stock["revision"])


@app.get("/analytics/products/<product_id>")
def product_sales(product_id: Annotated[str, Path()]) -> Response[str]:
    web.require_operator(app)
    orders.check_product_id(product_id)
    figures = composition.root().reports.product_sales(product_id)
    return _json(figures, version=figures["revision"])


@app.get("/customers/me/summary")
def my_summary() -> Response[str]:
    summary = composition.root().reports.customer_summary(web.caller(app).user_id)
    return _json(summary, version=summary["revision"])


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return web.handle(app, event, context, logger=logger)
