"""Every projection by the name operators use, with the table it owns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orders_core.projections import customer_orders, customer_summary, inventory, product_sales, sales
from orders_core.projections.base import Projection
from orders_core.readmodels.port import ReadStore
from orders_core.store.port import EventStore
from orders_core.tables import (
    CUSTOMER_ORDERS,
    CUSTOMER_SUMMARY,
    INVENTORY,
    PRODUCT_SALES,
    SALES_ANALYTICS,
    TableSpec,
)


@dataclass(frozen=True)
class Registration:
    name: str
    table: TableSpec
    build: Callable[[ReadStore, EventStore, int], Projection]


REGISTRY: dict[str, Registration] = {
    registration.name: registration
    for registration in (
        Registration(customer_orders.NAME, CUSTOMER_ORDERS, customer_orders.CustomerOrders),
        Registration(
            sales.NAME,
            SALES_ANALYTICS,
            lambda store, _events, generation: sales.SalesAnalytics(store, generation),
        ),
        Registration(
            inventory.NAME,
            INVENTORY,
            lambda store, _events, generation: inventory.Inventory(store, generation),
        ),
        # Added later with no change to the write side: backfilled by a rebuild, then live.
        Registration(
            customer_summary.NAME,
            CUSTOMER_SUMMARY,
            lambda store, _events, generation: customer_summary.CustomerSummary(store, generation),
        ),
        # Added by registration alone too; backfilled with `orders rebuild product_sales`.
        Registration(
            product_sales.NAME,
            PRODUCT_SALES,
            lambda store, _events, generation: product_sales.ProductSales(store, generation),
        ),
    )
}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def registration(name: str) -> Registration:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; known: {', '.join(NAMES)}") from None
