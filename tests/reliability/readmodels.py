"""Every read model compared with the independent fold of the log (tests/support/oracle.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orders_core.envelope import EventEnvelope
from tests.support import oracle

Lookup = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class Expected:
    orders: dict[str, dict[str, Any]]
    sales: dict[str, dict[str, Any]]
    inventory: dict[str, dict[str, Any]]
    summaries: dict[str, dict[str, Any]]
    product_sales: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, log: list[EventEnvelope]) -> Expected:
        return cls(
            orders=oracle.order_views(log),
            sales=oracle.daily_sales(log),
            inventory=oracle.inventory(log),
            summaries=oracle.customer_summaries(log),
            product_sales=oracle.product_sales(log),
        )

    @property
    def rows(self) -> int:
        return (
            len(self.orders)
            + len(self.sales)
            + len(self.inventory)
            + len(self.summaries)
            + len(self.product_sales)
        )


def _without_revision(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {k: v for k, v in row.items() if k != "revision"}


def differences(
    expected: Expected,
    *,
    order: Lookup,
    sales: Lookup,
    inventory: Lookup,
    summary: Lookup,
    product_sales: Lookup,
    limit: int = 10,
) -> list[str]:
    """Rows of the read models that differ from the fold (at most `limit` of them, described)."""
    found: list[str] = []
    checks: list[tuple[str, dict[str, dict[str, Any]], Lookup]] = [
        ("order", expected.orders, order),
        ("sales", expected.sales, sales),
        ("inventory", expected.inventory, inventory),
        ("summary", expected.summaries, summary),
        ("product sales", expected.product_sales, product_sales),
    ]
    for kind, rows, lookup in checks:
        for key, want in rows.items():
            got = _without_revision(lookup(key))
            if got != want:
                found.append(f"{kind} {key}: expected {want}, got {got}")
                if len(found) >= limit:
                    return found
    return found
