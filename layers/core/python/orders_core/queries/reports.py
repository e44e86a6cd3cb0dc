"""The cross-stream read models, each row as the API shows it (with the revision it reflects)."""

from __future__ import annotations

from typing import Any

from orders_core.domain.errors import NotFound
from orders_core.queries.read_models import ActiveReadModels


class Reports:
    def __init__(self, read_models: ActiveReadModels) -> None:
        self._read_models = read_models

    def sales_of_day(self, day: str) -> dict[str, Any]:
        return _found(self._read_models.sales.get(day), f"no sales recorded for {day}")

    def product_stock(self, product_id: str) -> dict[str, Any]:
        return _found(self._read_models.inventory.get(product_id), f"product {product_id} not found")

    def customer_summary(self, customer_id: str) -> dict[str, Any]:
        return _found(self._read_models.summaries.get(customer_id), "no orders yet")

    def product_sales(self, product_id: str) -> dict[str, Any]:
        return _found(
            self._read_models.product_sales.get(product_id), f"no sales recorded for product {product_id}"
        )


def _found(row: dict[str, Any] | None, missing: str) -> dict[str, Any]:
    if row is None:
        raise NotFound(missing)
    return row
