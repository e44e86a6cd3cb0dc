"""Inventory: one summary per product, from stock received and every order's reservations.

Kept by deltas (projections/deltas). Two kinds of source name a product: its own stream (stock
received, the reorder level) and each order that reserved it (reserved, released, shipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders_core.domain.inventory import ReorderLevelSet, StockReceived
from orders_core.domain.orders import InventoryReleased, InventoryReserved, OrderShipped
from orders_core.envelope import Commit
from orders_core.projections.base import ORDER_PREFIX, PRODUCT_PREFIX, Fact
from orders_core.projections.deltas import DeltaSummaries, Shares, bump

NAME = "inventory"
# A product's row is written by every batch that reserves it: four rows share the load.
SHARDS = 4


def fold(source: dict[str, Any], fact: Fact) -> None:
    """One event's effect on what inventory knows of an order or a product stream."""
    event = fact.event
    if isinstance(event, InventoryReserved):
        for item in event.items:
            bump(source.setdefault("reserved", {}), item.product_id, item.quantity)
    elif isinstance(event, InventoryReleased):
        for item in event.items:
            bump(source.setdefault("reserved", {}), item.product_id, -item.quantity)
    elif isinstance(event, OrderShipped):
        for item in event.items:
            bump(source.setdefault("reserved", {}), item.product_id, -item.quantity)
            bump(source.setdefault("shipped", {}), item.product_id, item.quantity)
    elif isinstance(event, StockReceived):
        source["product_id"] = event.product_id
        bump(source, "received", event.quantity)
    elif isinstance(event, ReorderLevelSet):
        source["product_id"] = event.product_id
        # A level is a value, not a sum: the newest version wins, whatever order commits arrive in.
        if fact.envelope.version > source.get("reorder_version", 0):
            source["reorder_level"] = event.reorder_level
            source["reorder_version"] = fact.envelope.version


def shares(source: Mapping[str, Any]) -> Shares:
    if "product_id" in source:  # a product's own stream
        return {
            source["product_id"]: {
                "received": source.get("received", 0),
                "reorder_level": source.get("reorder_level", 0),
            }
        }
    result: Shares = {}
    for product in source.get("reserved", {}).keys() | source.get("shipped", {}).keys():
        result[product] = {
            "reserved": source.get("reserved", {}).get(product, 0),
            "shipped": source.get("shipped", {}).get(product, 0),
        }
    return result


def present(product_id: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
    received, shipped = int(counters.get("received", 0)), int(counters.get("shipped", 0))
    reserved, reorder_level = int(counters.get("reserved", 0)), int(counters.get("reorder_level", 0))
    on_hand = received - shipped
    available = on_hand - reserved
    return {
        "product_id": product_id,
        "on_hand": on_hand,
        "reserved_quantity": reserved,
        "available_quantity": available,
        "reorder_level": reorder_level,
        "needs_reorder": available <= reorder_level,
    }


class Inventory(DeltaSummaries):
    name = NAME
    shards = SHARDS

    def source_of(self, commit: Commit) -> str | None:
        stream = commit.stream_id
        return stream if stream.startswith(ORDER_PREFIX) or stream.startswith(PRODUCT_PREFIX) else None

    def fold(self, data: dict[str, Any], fact: Fact) -> None:
        fold(data, fact)

    def shares(self, data: Mapping[str, Any]) -> Shares:
        return shares(data)

    def present(self, entity: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
        return present(entity, counters)
