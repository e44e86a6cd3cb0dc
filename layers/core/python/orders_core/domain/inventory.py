"""The product (inventory) aggregate: stock received and reorder level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, assert_never

from orders_core.domain.aggregate import AggregateType
from orders_core.domain.errors import InvalidCommand
from orders_core.domain.events import DomainEvent, EventRegistry
from orders_core.domain.orders import check_product_id

MAX_STOCK_QUANTITY = 1_000_000
MAX_REORDER_LEVEL = 1_000_000


@dataclass(frozen=True)
class ReceiveStock:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class SetReorderLevel:
    product_id: str
    reorder_level: int


ProductCommand = ReceiveStock | SetReorderLevel


class StockReceived(DomainEvent):
    event_type = "StockReceived"
    product_id: str
    quantity: int


class ReorderLevelSet(DomainEvent):
    event_type = "ReorderLevelSet"
    product_id: str
    reorder_level: int


PRODUCT_EVENTS = EventRegistry([StockReceived, ReorderLevelSet])


@dataclass(frozen=True)
class ProductState:
    product_id: str = ""
    received: int = 0
    reorder_level: int = 0


def decide(state: ProductState, command: ProductCommand) -> Sequence[DomainEvent]:
    if isinstance(command, ReceiveStock):
        check_product_id(command.product_id)
        if not 1 <= command.quantity <= MAX_STOCK_QUANTITY:
            raise InvalidCommand(f"quantity must be between 1 and {MAX_STOCK_QUANTITY}", "quantity")
        return [StockReceived(product_id=command.product_id, quantity=command.quantity)]
    if isinstance(command, SetReorderLevel):
        check_product_id(command.product_id)
        if not 0 <= command.reorder_level <= MAX_REORDER_LEVEL:
            raise InvalidCommand(f"reorder_level must be between 0 and {MAX_REORDER_LEVEL}", "reorder_level")
        return [ReorderLevelSet(product_id=command.product_id, reorder_level=command.reorder_level)]
    # Every member of ProductCommand has a branch above, so `command` is Never here: mypy --strict
    # rejects this call the day a member is added without one. At run time an object outside the
    # union is refused rather than taken for another command.
    try:
        assert_never(command)
    except AssertionError as exc:
        raise TypeError(f"not a product command: {type(command).__name__}") from exc


def evolve(state: ProductState, event: DomainEvent) -> ProductState:
    if isinstance(event, StockReceived):
        return replace(state, product_id=event.product_id, received=state.received + event.quantity)
    if isinstance(event, ReorderLevelSet):
        return replace(state, product_id=event.product_id, reorder_level=event.reorder_level)
    return state


# Bump whenever ProductState changes shape: snapshots of another version are then ignored.
PRODUCT_STATE_SCHEMA_VERSION = 1


def product_state_to_snapshot(state: ProductState) -> dict[str, Any]:
    return {"product_id": state.product_id, "received": state.received, "reorder_level": state.reorder_level}


def product_state_from_snapshot(data: Mapping[str, Any]) -> ProductState:
    return ProductState(
        product_id=str(data["product_id"]),
        received=int(data["received"]),
        reorder_level=int(data["reorder_level"]),
    )


PRODUCT = AggregateType[ProductState, ProductCommand](
    name="product",
    stream_prefix="product-",
    initial_state=ProductState(),
    decide=decide,
    evolve=evolve,
    events=PRODUCT_EVENTS,
    state_schema_version=PRODUCT_STATE_SCHEMA_VERSION,
    state_to_snapshot=product_state_to_snapshot,
    state_from_snapshot=product_state_from_snapshot,
)
