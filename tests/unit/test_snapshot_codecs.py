"""Aggregate state <-> snapshot JSON, and the pin that makes a state change bump its schema version."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

from orders_core.domain import inventory, orders
from orders_core.domain.inventory import PRODUCT, ProductState
from orders_core.domain.orders import ORDER, OrderLine, OrderState, ShippingAddress


def test_an_order_state_round_trips_through_its_snapshot_encoding() -> None:
    state = OrderState(
        status="shipped",
        order_id="o-1",
        customer_id="alice",
        lines=(OrderLine("sku-1", 2, Decimal("12.50")), OrderLine("sku-2", 1, Decimal("0.00"))),
        shipping_address=ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL"),
        tracking_number="TRK-1",
    )
    assert ORDER.state_to_snapshot is not None and ORDER.state_from_snapshot is not None
    # Through JSON text, as the snapshot store keeps it
    encoded = json.loads(json.dumps(ORDER.state_to_snapshot(state)))
    assert ORDER.state_from_snapshot(encoded) == state
    assert (
        ORDER.state_from_snapshot(json.loads(json.dumps(ORDER.state_to_snapshot(OrderState()))))
        == OrderState()
    )


def test_a_product_state_round_trips_through_its_snapshot_encoding() -> None:
    state = ProductState(product_id="sku-1", received=40, reorder_level=5)
    assert PRODUCT.state_to_snapshot is not None and PRODUCT.state_from_snapshot is not None
    assert PRODUCT.state_from_snapshot(json.loads(json.dumps(PRODUCT.state_to_snapshot(state)))) == state


def _shape(cls: Any) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in dataclasses.fields(cls)]


def test_state_shapes_are_pinned_to_their_snapshot_schema_version() -> None:
    # A change to a state class must bump its *_STATE_SCHEMA_VERSION, so that snapshots written by
    # the old code are ignored instead of misread; then update the pin below.
    pinned = {
        2: {
            "OrderState": [
                ("status", "OrderStatus"),
                ("order_id", "str"),
                ("customer_id", "str"),
                ("lines", "tuple[OrderLine, ...]"),
                ("shipping_address", "ShippingAddress | None"),
                ("tracking_number", "str | None"),
            ],
            "OrderLine": [
                ("product_id", "str"),
                ("quantity", "int"),
                ("unit_price", "Decimal"),
                ("charged", "Decimal | None"),
            ],
            "ShippingAddress": [
                ("line1", "str"),
                ("city", "str"),
                ("postal_code", "str"),
                ("country", "str"),
            ],
        },
    }
    assert orders.ORDER_STATE_SCHEMA_VERSION in pinned, "new order state version: pin its shape here"
    assert {
        "OrderState": _shape(OrderState),
        "OrderLine": _shape(OrderLine),
        "ShippingAddress": _shape(ShippingAddress),
    } == pinned[orders.ORDER_STATE_SCHEMA_VERSION]
    assert inventory.PRODUCT_STATE_SCHEMA_VERSION == 1
    assert _shape(ProductState) == [("product_id", "str"), ("received", "int"), ("reorder_level", "int")]
