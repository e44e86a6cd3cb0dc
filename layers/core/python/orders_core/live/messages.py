"""What live clients receive: JSON text messages, at least once (clients de-duplicate).

- `order.updated` to an order's owner when the order view reflects a new version, with the
  correlation id of the command that produced it (de-duplicate by order id and version);
- `inventory.low` to operators when a product's available quantity falls to its reorder level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orders_core.projections.customer_orders import OrderView

ORDER_UPDATED = "order.updated"
INVENTORY_LOW = "inventory.low"
# API Gateway's WebSocket frame size (32 KB; a message may span frames up to 128 KB): every message
# here fits one frame by far, and one that did not would be a bug.
MAX_MESSAGE_BYTES = 32 * 1024


def order_updated(view: OrderView) -> dict[str, Any]:
    return {
        "type": ORDER_UPDATED,
        "order_id": view.order_id,
        "version": view.version,
        "status": view.status,
        "correlation_id": view.correlation_id,
    }


def inventory_low(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": INVENTORY_LOW,
        "product_id": summary["product_id"],
        "available_quantity": summary["available_quantity"],
        "reorder_level": summary["reorder_level"],
    }


def encode(message: Mapping[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a live message of {len(data)} bytes: one frame holds {MAX_MESSAGE_BYTES}")
    return data
