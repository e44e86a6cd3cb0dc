"""Product sales analytics: one summary per product, over the orders placed and not cancelled.

Added after the others without touching the write side: registered, backfilled by a rebuild,
then it follows the stream like every projection. Kept by deltas (projections/deltas): each
order remembers the units and line totals it charged per product and whether it was cancelled;
a product's summary adds up the orders that name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders_core.domain.money import CENT
from orders_core.domain.orders import ItemAdded, OrderCancelled, OrderPlaced
from orders_core.projections.base import Fact
from orders_core.projections.deltas import DeltaSummaries, Shares, bump

NAME = "product_sales"
# A best-selling product's row is written by most batches: eight rows share the load.
SHARDS = 8


def fold(order: dict[str, Any], fact: Fact) -> None:
    """One event's effect on what the product sales read model knows of its order."""
    event = fact.event
    if isinstance(event, OrderPlaced):
        for line in event.items:
            _add_line(order, line.product_id, line.quantity, line.line_total)
    elif isinstance(event, ItemAdded):
        # The total the event charged (ADR 8), not unit price × quantity.
        _add_line(order, event.product_id, event.quantity, event.line_total)
    elif isinstance(event, OrderCancelled):
        order["cancelled"] = True


def _add_line(order: dict[str, Any], product_id: str, quantity: int, line_total: Decimal) -> None:
    bump(order.setdefault("units", {}), product_id, quantity)
    bump(order.setdefault("revenue", {}), product_id, line_total)


def shares(order: Mapping[str, Any]) -> Shares:
    """Each product the order names; it counts there unless cancelled or of no units."""
    result: Shares = {}
    for product, units in order.get("units", {}).items():
        counted = not order.get("cancelled") and units > 0
        result[product] = (
            {"units": units, "revenue": order["revenue"].get(product, 0), "orders": 1} if counted else {}
        )
    return result


def present(product_id: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "units_sold": int(counters.get("units", 0)),
        "revenue": str(counters.get("revenue", Decimal(0)).quantize(CENT)),
        "order_count": int(counters.get("orders", 0)),
    }


class ProductSales(DeltaSummaries):
    name = NAME
    shards = SHARDS

    def fold(self, data: dict[str, Any], fact: Fact) -> None:
        fold(data, fact)

    def shares(self, data: Mapping[str, Any]) -> Shares:
        return shares(data)

    def present(self, entity: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
        return present(entity, counters)
