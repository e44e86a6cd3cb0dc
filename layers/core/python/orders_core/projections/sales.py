"""Daily sales analytics: one summary per UTC day of placement, kept by deltas (projections/deltas)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders_core.domain.money import CENT
from orders_core.domain.orders import ItemAdded, OrderCancelled, OrderPlaced
from orders_core.projections.base import Fact
from orders_core.projections.deltas import DeltaSummaries, Shares, bump

NAME = "sales_analytics"
TOP_PRODUCTS = 10
_QTY, _REV = "qty:", "rev:"
# A busy day's row is written by every batch that touches the day: eight rows share the load.
SHARDS = 8


def fold(order: dict[str, Any], fact: Fact) -> None:
    """One event's effect on what the sales read model knows of its order."""
    event = fact.event
    if isinstance(event, OrderPlaced):
        order["day"] = fact.envelope.recorded_at[:10]  # the UTC day the order was placed
        for line in event.items:
            _add_line(order, line.product_id, line.quantity, line.line_total)
    elif isinstance(event, ItemAdded):
        _add_line(order, event.product_id, event.quantity, event.line_total)
    elif isinstance(event, OrderCancelled):
        order["cancelled"] = True


def _add_line(order: dict[str, Any], product_id: str, quantity: int, line_total: Decimal) -> None:
    bump(order, "total", line_total)
    bump(order.setdefault("qty", {}), product_id, quantity)
    bump(order.setdefault("rev", {}), product_id, line_total)


def shares(order: Mapping[str, Any]) -> Shares:
    """An order counts on the day it was placed unless cancelled (then it adds nothing)."""
    if "day" not in order:
        return {}  # its OrderPlaced has not arrived yet (it may be parked)
    if order.get("cancelled"):
        return {order["day"]: {}}
    counters: dict[str, Any] = {"orders": 1, "total": order.get("total", 0)}
    for product, quantity in order.get("qty", {}).items():
        counters[_QTY + product] = quantity
    for product, revenue in order.get("rev", {}).items():
        counters[_REV + product] = revenue
    return {order["day"]: counters}


def present(day: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
    """The day's figures from its orders' summed counters."""
    revenue = counters.get("total", Decimal(0))
    orders = int(counters.get("orders", 0))
    quantities = {name[len(_QTY) :]: amount for name, amount in counters.items() if name.startswith(_QTY)}
    revenues = {name[len(_REV) :]: amount for name, amount in counters.items() if name.startswith(_REV)}
    # A product whose every order was cancelled sums to nothing: it was not sold that day.
    sold = [product for product, quantity in quantities.items() if quantity]
    top = sorted(sold, key=lambda product: (-revenues.get(product, Decimal(0)), product))[:TOP_PRODUCTS]
    return {
        "date": day,
        "total_orders": orders,
        "total_revenue": str(revenue.quantize(CENT)),
        "average_order_value": str((revenue / orders).quantize(CENT) if orders else Decimal("0.00")),
        "top_products": [
            {
                "product_id": product,
                "quantity": int(quantities[product]),
                "revenue": str(revenues.get(product, Decimal(0)).quantize(CENT)),
            }
            for product in top
        ],
    }


class SalesAnalytics(DeltaSummaries):
    """Daily sales analytics: one summary per UTC day of placement."""

    name = NAME
    shards = SHARDS

    def fold(self, data: dict[str, Any], fact: Fact) -> None:
        fold(data, fact)

    def shares(self, data: Mapping[str, Any]) -> Shares:
        return shares(data)

    def present(self, entity: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
        return present(entity, counters)
