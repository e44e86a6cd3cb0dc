"""Request bodies of the command API. Shapes and types only: business rules live in the domain."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

_DECIMAL = re.compile(r"-?\d{1,15}(\.\d{1,15})?")


def _decimal_from_string(value: Any) -> Decimal:
    # JSON numbers are binary floats in most clients: money must arrive as a string.
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if not _DECIMAL.fullmatch(value):
        raise ValueError('must be a decimal amount such as "12.50"')
    return Decimal(value)


MoneyString = Annotated[Decimal, BeforeValidator(_decimal_from_string)]
Text = Annotated[StrictStr, Field(max_length=500)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemBody(Body):
    product_id: Annotated[StrictStr, Field(max_length=200)]
    quantity: StrictInt
    unit_price: MoneyString


class AddressBody(Body):
    line1: Text
    city: Text
    postal_code: Text
    country: Text


class PlaceOrderBody(Body):
    order_id: (
        Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")] | None
    ) = None
    items: Annotated[list[ItemBody], Field(max_length=1000)]
    shipping_address: AddressBody


class CancelOrderBody(Body):
    reason: Text


class ShipOrderBody(Body):
    tracking_number: Text


class StockBody(Body):
    quantity: StrictInt


class ReorderLevelBody(Body):
    reorder_level: StrictInt
