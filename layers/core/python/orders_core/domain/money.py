"""Money: Decimal with at most two places, never float."""

from __future__ import annotations

from decimal import Decimal

from orders_core.domain.errors import InvalidCommand

CENT = Decimal("0.01")
MAX_PRICE = Decimal("1000000.00")


def check_price(value: Decimal, field: str = "unit_price") -> Decimal:
    if not value.is_finite():
        raise InvalidCommand("a price must be a finite amount", field)
    if value < 0:
        raise InvalidCommand("a price cannot be negative", field)
    if value > MAX_PRICE:
        raise InvalidCommand(f"a price cannot exceed {MAX_PRICE}", field)
    if value != value.quantize(CENT):
        raise InvalidCommand("a price has at most 2 decimal places", field)
    return value.quantize(CENT)
