"""The product aggregate: stock and reorder level."""

from __future__ import annotations

from dataclasses import dataclass

from orders_core.domain.errors import InvalidCommand
from orders_core.domain.inventory import (
    PRODUCT,
    ReceiveStock,
    ReorderLevelSet,
    SetReorderLevel,
    StockReceived,
)
from tests.support.given import given


def test_receiving_stock_records_the_quantity() -> None:
    given(PRODUCT).when(ReceiveStock("sku-1", 40)).then(StockReceived(product_id="sku-1", quantity=40))


def test_stock_quantities_must_be_positive_and_bounded() -> None:
    given(PRODUCT).when(ReceiveStock("sku-1", 0)).then_refused(InvalidCommand)
    given(PRODUCT).when(ReceiveStock("sku-1", 10**39)).then_refused(InvalidCommand)


def test_reorder_level_may_be_zero_not_negative() -> None:
    given(PRODUCT).when(SetReorderLevel("sku-1", 0)).then(
        ReorderLevelSet(product_id="sku-1", reorder_level=0)
    )
    given(PRODUCT).when(SetReorderLevel("sku-1", -1)).then_refused(InvalidCommand)


def test_product_ids_are_checked() -> None:
    given(PRODUCT).when(ReceiveStock("sku 1/../x", 1)).then_refused(InvalidCommand)


@dataclass(frozen=True)
class WriteOffStock:
    """A command the aggregate does not know, shaped like SetReorderLevel."""

    product_id: str
    reorder_level: int


def test_an_unknown_command_is_refused_not_taken_for_a_reorder_level() -> None:
    # Given a product, when a command outside ProductCommand arrives (mistyped by its caller)
    refused = given(PRODUCT).when(WriteOffStock("sku-1", 5)).then_refused(TypeError)

    # Then it is refused by name, and nothing was decided
    assert "WriteOffStock" in str(refused.value)


def test_state_accumulates_stock_and_keeps_the_last_level() -> None:
    state = PRODUCT.fold(
        PRODUCT.initial_state,
        [
            StockReceived(product_id="sku-1", quantity=5),
            ReorderLevelSet(product_id="sku-1", reorder_level=3),
            StockReceived(product_id="sku-1", quantity=7),
            ReorderLevelSet(product_id="sku-1", reorder_level=9),
        ],
    )
    assert (state.received, state.reorder_level) == (12, 9)
