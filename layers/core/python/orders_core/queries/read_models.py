"""Each read model at the generation readers use now.

After a rebuild switches readers, a warm function keeps answering from the previous generation
for at most ACTIVE_GENERATION_TTL_SECONDS; the rebuild waits longer than that before it retires
the old generation, so no reader ever reads a generation being deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orders_core.projections import customer_orders, customer_summary, inventory, product_sales, sales
from orders_core.projections.control import ControlStore
from orders_core.projections.customer_orders import CustomerOrders
from orders_core.projections.customer_summary import CustomerSummary
from orders_core.projections.inventory import Inventory
from orders_core.projections.product_sales import ProductSales
from orders_core.projections.sales import SalesAnalytics

ACTIVE_GENERATION_TTL_SECONDS = 1.0

ReaderFactory = Callable[[str, int], Any]


class ActiveReadModels:
    def __init__(
        self, control: ControlStore, build: ReaderFactory, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._control = control
        self._build = build
        self._clock = clock
        self._active: dict[str, tuple[float, int]] = {}
        self._built: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def active_generation(self, name: str) -> int:
        """The generation of read model `name` readers use (as of at most the TTL ago)."""
        now = self._clock()
        with self._lock:
            cached = self._active.get(name)
        if cached is None or now - cached[0] > ACTIVE_GENERATION_TTL_SECONDS:
            cached = (now, self._control.control(name).active_generation)
            with self._lock:
                self._active[name] = cached
        return cached[1]

    def _current(self, name: str) -> Any:
        key = (name, self.active_generation(name))
        with self._lock:
            if key not in self._built:
                self._built[key] = self._build(name, key[1])
            return self._built[key]

    @property
    def orders(self) -> CustomerOrders:
        reader: CustomerOrders = self._current(customer_orders.NAME)
        return reader

    @property
    def sales(self) -> SalesAnalytics:
        reader: SalesAnalytics = self._current(sales.NAME)
        return reader

    @property
    def inventory(self) -> Inventory:
        reader: Inventory = self._current(inventory.NAME)
        return reader

    @property
    def summaries(self) -> CustomerSummary:
        reader: CustomerSummary = self._current(customer_summary.NAME)
        return reader

    @property
    def product_sales(self) -> ProductSales:
        reader: ProductSales = self._current(product_sales.NAME)
        return reader
