"""Request bodies of the command API. Shapes and types only: business rules live in the domain.

The domain enforces each rule (with its own message); the `stated(...)` annotations repeat the
rule in the JSON Schema that the OpenAPI document is built from, so that a client generated from
the document never sends a body the domain refuses. They add nothing to validation.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, WithJsonSchema
from pydantic.fields import FieldInfo

from orders_core.domain.inventory import MAX_REORDER_LEVEL, MAX_STOCK_QUANTITY
from orders_core.domain.money import MAX_PRICE
from orders_core.domain.orders import (
    MAX_LINES_PER_ORDER,
    MAX_PRODUCT_ID_LENGTH,
    MAX_QUANTITY_PER_LINE,
    PRODUCT_ID,
)

_DECIMAL = re.compile(r"-?\d{1,15}(\.\d{1,15})?")

# What check_price accepts, in its canonical spelling: 0 to 1000000.00, at most two decimals, no
# leading zeros (the domain also takes "007.50" and "1.500"; the document asks for the plain form).
MONEY_PATTERN = r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,2})?$|^1000000(\.00?)?$"
# A product id as check_product_id accepts it.
PRODUCT_ID_PATTERN = f"^{PRODUCT_ID.pattern}$"
# "Not blank": at least one character that str.strip() keeps. Python's \s already has \x1c-\x1f
# and \x85; ECMA-262's (what most JSON Schema validators run) has not, hence the explicit range.
NOT_BLANK_PATTERN = r"[^\s\x1c-\x1f\x85]"
# The domain's limits on free text (orders._check_text).
MAX_ADDRESS_FIELD_LENGTH = 200
MAX_REASON_LENGTH = 500
MAX_TRACKING_NUMBER_LENGTH = 100


# JSON Schema cannot tell 2.0 from 2 (both are the integer 2 there), but a strict integer field
# refuses 2.0: the document says so in words.
AS_WRITTEN = "A whole number written without a fraction (2, not 2.0)"


def stated(**json_schema: Any) -> Any:
    """A rule the domain enforces, stated in the field's JSON Schema only (no pydantic check)."""
    field: FieldInfo = Field(json_schema_extra=json_schema)
    return field


def _decimal_from_string(value: Any) -> Decimal:
    # JSON numbers are binary floats in most clients: money must arrive as a string.
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if not _DECIMAL.fullmatch(value):
        raise ValueError('must be a decimal amount such as "12.50"')
    return Decimal(value)


MoneyString = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "description": f"A decimal string from 0 to {MAX_PRICE}, at most two decimals (never a number)",
            "examples": ["12.50"],
        }
    ),
]
Text = Annotated[StrictStr, Field(max_length=500)]


def _text(max_length: int) -> Any:
    return stated(minLength=1, maxLength=max_length, pattern=NOT_BLANK_PATTERN)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemBody(Body):
    product_id: Annotated[
        StrictStr,
        Field(max_length=200),
        stated(minLength=1, maxLength=MAX_PRODUCT_ID_LENGTH, pattern=PRODUCT_ID_PATTERN),
    ]
    quantity: Annotated[StrictInt, stated(minimum=1, maximum=MAX_QUANTITY_PER_LINE, description=AS_WRITTEN)]
    unit_price: MoneyString


class AddressBody(Body):
    line1: Annotated[Text, _text(MAX_ADDRESS_FIELD_LENGTH)]
    city: Annotated[Text, _text(MAX_ADDRESS_FIELD_LENGTH)]
    postal_code: Annotated[Text, _text(MAX_ADDRESS_FIELD_LENGTH)]
    country: Annotated[Text, _text(MAX_ADDRESS_FIELD_LENGTH)]


class PlaceOrderBody(Body):
    order_id: (
        Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")] | None
    ) = None
    items: Annotated[list[ItemBody], Field(max_length=1000), stated(minItems=1, maxItems=MAX_LINES_PER_ORDER)]
    shipping_address: AddressBody


class CancelOrderBody(Body):
    reason: Annotated[Text, _text(MAX_REASON_LENGTH)]


class ShipOrderBody(Body):
    tracking_number: Annotated[Text, _text(MAX_TRACKING_NUMBER_LENGTH)]


class StockBody(Body):
    quantity: Annotated[StrictInt, stated(minimum=1, maximum=MAX_STOCK_QUANTITY, description=AS_WRITTEN)]


class ReorderLevelBody(Body):
    reorder_level: Annotated[StrictInt, stated(minimum=0, maximum=MAX_REORDER_LEVEL, description=AS_WRITTEN)]
