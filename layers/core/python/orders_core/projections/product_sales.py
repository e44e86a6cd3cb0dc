"""Product sales analytics: one row per product, over the orders placed and not cancelled.

Added after the others without touching the write side: registered, backfilled by a rebuild,
then it follows the stream like every projection.

Each order owns one contribution row in the partition of every product it names (`order#<id>`,
as inventory's reservations): the units and line totals it charged for that product, and a
`cancelled` flag. Flags, not a status, so that commits applied in any order agree; a cancelled
order keeps its counters and the summary leaves them out. OrderCancelled names no products: the
products of a cancelled order are the ones its InventoryReleased (same commit, every product of
the order, `orders._cancel`) releases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from orders_core.domain.money import CENT
from orders_core.domain.orders import InventoryReleased, ItemAdded, OrderPlaced
from orders_core.envelope import Commit
from orders_core.projections.base import ORDER_PREFIX, Fact, facts
from orders_core.projections.contributions import (
    SUMMARY,
    Contribution,
    SummarizedPartitions,
)
from orders_core.readmodels.port import Row

NAME = "product_sales"
_UNITS, _REVENUE = "units", "revenue"


def contributions(fact: Fact) -> dict[str, Contribution]:
    """The pure projection of one event: what it adds to its order's row of each product it names."""
    event = fact.event
    result: dict[str, Contribution] = defaultdict(Contribution)
    if isinstance(event, OrderPlaced):
        for line in event.items:
            result[line.product_id].bump(_UNITS, line.quantity)
            result[line.product_id].bump(_REVENUE, line.line_total)
    elif isinstance(event, ItemAdded):
        # The total the event charged (ADR 8), not unit price × quantity.
        result[event.product_id].bump(_UNITS, event.quantity)
        result[event.product_id].bump(_REVENUE, event.line_total)
    elif isinstance(event, InventoryReleased):
        for item in event.items:
            result[item.product_id].fields["cancelled"] = True
    return dict(result)


def summarize(product_id: str, rows: Sequence[Row]) -> dict[str, Any]:
    """The product's figures from its orders' contribution rows."""
    counted = [
        row
        for row in rows
        if row["sk"] != SUMMARY and not row.get("cancelled") and Decimal(row.get(_UNITS, 0)) > 0
    ]
    units = sum((Decimal(row[_UNITS]) for row in counted), Decimal(0))
    revenue = sum((Decimal(row.get(_REVENUE, 0)) for row in counted), Decimal("0"))
    return {
        "product_id": product_id,
        "units_sold": int(units),
        "revenue": str(revenue.quantize(CENT)),
        "order_count": len(counted),
    }


class ProductSales(SummarizedPartitions):
    name = NAME

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        failures: dict[int, Exception] = {}
        # (product, order row) -> commit version -> contribution, and who contributed
        parts: dict[tuple[str, str], dict[int, Contribution]] = defaultdict(dict)
        members: dict[tuple[str, str], list[tuple[int, Commit]]] = defaultdict(list)
        for position, commit in enumerate(commits):
            if not commit.stream_id.startswith(ORDER_PREFIX):
                continue
            row_kind = f"order#{commit.stream_id.removeprefix(ORDER_PREFIX)}"
            for fact in facts(commit):
                for product, part in contributions(fact).items():
                    parts[(product, row_kind)].setdefault(commit.first_version, Contribution()).add(part)
                    members[(product, row_kind)].append((position, commit))

        self.refresh_all(self.apply_parts(parts, members, failures), failures)
        return failures

    def summarize(self, entity: str, rows: Sequence[Row]) -> dict[str, Any]:
        return summarize(entity, rows)
