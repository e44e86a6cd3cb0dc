"""Daily sales analytics: one row per UTC day of placement, from per-order contributions."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from orders_core.domain.money import CENT
from orders_core.domain.orders import ItemAdded, OrderCancelled, OrderPlaced
from orders_core.envelope import Commit
from orders_core.projections.base import Fact
from orders_core.projections.contributions import (
    SUMMARY,
    Contribution,
    OrderContributions,
    counter_groups,
)
from orders_core.readmodels.port import Row

NAME = "sales_analytics"
TOP_PRODUCTS = 10
_QTY, _REV = "qty:", "rev:"


def contribution(fact: Fact) -> Contribution | None:
    """The pure projection of one event onto its order's share of the day."""
    event = fact.event
    result = Contribution()
    if isinstance(event, OrderPlaced):
        result.fields["placed"] = True
        result.fields["order_id"] = event.order_id
        for line in event.items:
            result.bump("total", line.line_total)
            result.bump(_QTY + line.product_id, line.quantity)
            result.bump(_REV + line.product_id, line.line_total)
        return result
    if isinstance(event, ItemAdded):
        result.bump("total", event.line_total)
        result.bump(_QTY + event.product_id, event.quantity)
        result.bump(_REV + event.product_id, event.line_total)
        return result
    if isinstance(event, OrderCancelled):
        result.fields["cancelled"] = True
        return result
    return None


def summarize(day: str, rows: Sequence[Row]) -> dict[str, Any]:
    """The day's figures from its orders' contribution rows."""
    counted = [row for row in rows if row["sk"] != SUMMARY and row.get("placed") and not row.get("cancelled")]
    revenue = sum((Decimal(row.get("total", 0)) for row in counted), Decimal("0"))
    quantities: dict[str, Decimal] = {}
    revenues: dict[str, Decimal] = {}
    for row in counted:
        for product, amount in counter_groups(row, _QTY).items():
            quantities[product] = quantities.get(product, Decimal(0)) + amount
        for product, amount in counter_groups(row, _REV).items():
            revenues[product] = revenues.get(product, Decimal(0)) + amount
    top = sorted(revenues, key=lambda product: (-revenues[product], product))[:TOP_PRODUCTS]
    orders = len(counted)
    return {
        "date": day,
        "total_orders": orders,
        "total_revenue": str(revenue.quantize(CENT)),
        "average_order_value": str((revenue / orders).quantize(CENT) if orders else Decimal("0.00")),
        "top_products": [
            {
                "product_id": p,
                "quantity": int(quantities.get(p, 0)),
                "revenue": str(revenues[p].quantize(CENT)),
            }
            for p in top
        ],
    }


class SalesAnalytics(OrderContributions):
    name = NAME

    def contribution(self, fact: Fact) -> Contribution | None:
        return contribution(fact)

    def entity_of(self, first_commit: Commit) -> str:
        return first_commit.metadata.recorded_at[:10]  # the UTC day the order was placed

    def summarize(self, entity: str, rows: Sequence[Row]) -> dict[str, Any]:
        return summarize(entity, rows)
