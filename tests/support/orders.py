"""Ready-made commands and contexts for application-level tests."""

from __future__ import annotations

import uuid
from decimal import Decimal

from orders_core.application import CommandContext
from orders_core.domain.orders import OrderLine, PlaceOrder, ShippingAddress

ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")


def new_order_id() -> str:
    return str(uuid.uuid4())


def place_order(order_id: str, customer: str = "alice", lines: int = 1) -> PlaceOrder:
    items = tuple(OrderLine(f"sku-{n}", n + 1, Decimal("9.99")) for n in range(lines))
    return PlaceOrder(order_id, customer, items, ADDRESS)


def context(
    command_id: str | None = None,
    *,
    actor: str = "alice",
    fingerprint: str = "",
    expected_version: int | None = None,
    recorded_at: str = "2026-11-26T10:00:00.000000Z",
) -> CommandContext:
    command_id = command_id or str(uuid.uuid4())
    return CommandContext(
        command_id=command_id,
        correlation_id=f"corr-{command_id}",
        actor=actor,
        recorded_at=recorded_at,
        fingerprint=fingerprint,
        expected_version=expected_version,
    )
