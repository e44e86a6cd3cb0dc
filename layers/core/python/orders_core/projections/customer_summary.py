"""Customer summary, for mobile clients: open orders, last order and lifetime spend in one small row.

Added after the others without touching the write side: registered, backfilled by a rebuild,
then it follows the stream like every projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from orders_core.domain.money import CENT
from orders_core.domain.orders import ItemAdded, OrderCancelled, OrderPlaced, OrderShipped
from orders_core.envelope import Commit
from orders_core.projections.base import Fact, facts
from orders_core.projections.contributions import (
    SUMMARY,
    Contribution,
    OrderContributions,
)
from orders_core.readmodels.port import Row

NAME = "customer_summary"
OPEN_ORDERS_SHOWN = 10


def contribution(fact: Fact) -> Contribution | None:
    """The pure projection of one event onto its order's share of the customer's summary.

    Status is kept as flags, not a value, so that commits applied in any order agree."""
    event = fact.event
    result = Contribution()
    if isinstance(event, OrderPlaced):
        result.fields.update(placed=True, order_id=event.order_id, placed_at=fact.envelope.recorded_at)
        result.bump("total", sum((line.line_total for line in event.items), Decimal("0")))
    elif isinstance(event, ItemAdded):
        result.bump("total", event.line_total)
    elif isinstance(event, OrderShipped):
        result.fields["shipped"] = True
    elif isinstance(event, OrderCancelled):
        result.fields["cancelled"] = True
    else:
        return None
    return result


def _status(row: Row) -> str:
    return "cancelled" if row.get("cancelled") else "shipped" if row.get("shipped") else "placed"


def summarize(customer_id: str, rows: Sequence[Row]) -> dict[str, Any]:
    orders = [row for row in rows if row["sk"] != SUMMARY and row.get("placed")]
    newest_first = sorted(orders, key=lambda row: (str(row["placed_at"]), str(row["order_id"])), reverse=True)
    open_orders = [row for row in newest_first if _status(row) == "placed"]
    spend = sum((Decimal(row.get("total", 0)) for row in orders if _status(row) != "cancelled"), Decimal("0"))
    last = newest_first[0] if newest_first else None
    return {
        "customer_id": customer_id,
        "order_count": len(orders),
        "open_order_count": len(open_orders),
        "open_orders": [str(row["order_id"]) for row in open_orders[:OPEN_ORDERS_SHOWN]],
        "last_order": None
        if last is None
        else {
            "order_id": str(last["order_id"]),
            "placed_at": str(last["placed_at"]),
            "status": _status(last),
            "total_amount": str(Decimal(last.get("total", 0)).quantize(CENT)),
        },
        "lifetime_spend": str(spend.quantize(CENT)),
    }


class CustomerSummary(OrderContributions):
    name = NAME

    def contribution(self, fact: Fact) -> Contribution | None:
        return contribution(fact)

    def entity_of(self, first_commit: Commit) -> str:
        placed = facts(first_commit)[0].event
        if not isinstance(placed, OrderPlaced):
            raise LookupError(f"{first_commit.stream_id} does not start with OrderPlaced")
        return placed.customer_id

    def summarize(self, entity: str, rows: Sequence[Row]) -> dict[str, Any]:
        return summarize(entity, rows)
