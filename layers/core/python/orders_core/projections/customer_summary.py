"""Customer summary, for mobile clients: open orders, last order and lifetime spend in one small row.

Added after the others without touching the write side: registered, backfilled by a rebuild,
then it follows the stream like every projection. Kept by deltas (projections/deltas): counts
and spend are sums over the customer's orders; each open order owns an entry on the row while it
is open; the last order is the newest-wins slot, keyed by when it was placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders_core.domain.money import CENT
from orders_core.domain.orders import ItemAdded, OrderCancelled, OrderPlaced, OrderShipped
from orders_core.projections.base import Fact
from orders_core.projections.deltas import LATEST, DeltaSummaries, Latest, Owned, Shares, bump

NAME = "customer_summary"
OPEN_ORDERS_SHOWN = 10
_OPEN = "open:"


def fold(order: dict[str, Any], fact: Fact) -> None:
    """One event's effect on what the customer summary knows of its order. Status is kept as
    flags, not a value, so that commits applied in any order agree."""
    event = fact.event
    if isinstance(event, OrderPlaced):
        order.update(customer_id=event.customer_id, order_id=event.order_id)
        order["placed_at"] = fact.envelope.recorded_at
        bump(order, "total", sum((line.line_total for line in event.items), Decimal("0")))
    elif isinstance(event, ItemAdded):
        bump(order, "total", event.line_total)
    elif isinstance(event, OrderShipped):
        order["shipped"] = True
    elif isinstance(event, OrderCancelled):
        order["cancelled"] = True


def _status(order: Mapping[str, Any]) -> str:
    return "cancelled" if order.get("cancelled") else "shipped" if order.get("shipped") else "placed"


def _sort_key(order: Mapping[str, Any]) -> str:
    return f"{order['placed_at']}#{order['order_id']}"


def shares(order: Mapping[str, Any]) -> Shares:
    if "customer_id" not in order:
        return {}  # its OrderPlaced has not arrived yet (it may be parked)
    status = _status(order)
    return {
        order["customer_id"]: {
            "orders": 1,
            "open": 1 if status == "placed" else 0,
            "spend": 0 if status == "cancelled" else order.get("total", 0),
        }
    }


def owned(order: Mapping[str, Any]) -> Owned:
    if "customer_id" not in order or _status(order) != "placed":
        return {}
    return {order["customer_id"]: {_OPEN + _sort_key(order): order["order_id"]}}


def latest(order: Mapping[str, Any]) -> Latest:
    if "customer_id" not in order:
        return {}
    last = {
        "order_id": order["order_id"],
        "placed_at": order["placed_at"],
        "status": _status(order),
        "total_amount": str(Decimal(order.get("total", 0)).quantize(CENT)),
    }
    return {order["customer_id"]: (_sort_key(order), last)}


class CustomerSummary(DeltaSummaries):
    name = NAME

    def fold(self, data: dict[str, Any], fact: Fact) -> None:
        fold(data, fact)

    def shares(self, data: Mapping[str, Any]) -> Shares:
        return shares(data)

    def owned(self, data: Mapping[str, Any]) -> Owned:
        return owned(data)

    def latest(self, data: Mapping[str, Any]) -> Latest:
        return latest(data)

    def present(self, entity: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
        return {
            "customer_id": entity,
            "order_count": int(counters.get("orders", 0)),
            "open_order_count": int(counters.get("open", 0)),
            "lifetime_spend": str(counters.get("spend", Decimal(0)).quantize(CENT)),
        }

    def present_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        latest = fields.get(LATEST)
        newest_first = sorted((name for name in fields if name.startswith(_OPEN)), reverse=True)
        return {
            "open_orders": [str(fields[name]) for name in newest_first[:OPEN_ORDERS_SHOWN]],
            "last_order": None if latest is None else {name: str(value) for name, value in latest.items()},
        }
