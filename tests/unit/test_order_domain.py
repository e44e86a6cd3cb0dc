"""The order aggregate's rules, as given / when / then."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.domain.orders import (
    ORDER,
    AddItem,
    AddressData,
    CancelOrder,
    InventoryReleased,
    InventoryReserved,
    ItemAdded,
    LineData,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentRequested,
    PlaceOrder,
    ProductQuantity,
    ShipOrder,
    ShippingAddress,
)
from tests.support.given import given

ORDER_ID = "0f8e1a4c-7b1d-4c8e-9f00-000000000001"
ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")


def place(*lines: OrderLine, customer: str = "alice") -> PlaceOrder:
    return PlaceOrder(ORDER_ID, customer, tuple(lines), ADDRESS)


def line(product: str = "sku-1", quantity: int = 1, price: str = "10.00") -> OrderLine:
    return OrderLine(product, quantity, Decimal(price))


PLACED = OrderPlaced(
    order_id=ORDER_ID,
    customer_id="alice",
    items=(
        LineData(product_id="sku-1", quantity=2, unit_price=Decimal("12.50")),
        LineData(product_id="sku-2", quantity=1, unit_price=Decimal("3.00")),
        LineData(product_id="sku-1", quantity=1, unit_price=Decimal("12.50")),
    ),
    shipping_address=AddressData(line1="1 Canal St", city="Amsterdam", postal_code="1011", country="NL"),
    total_amount=Decimal("40.50"),
)
CANCELLED = OrderCancelled(order_id=ORDER_ID, reason="changed my mind")
SHIPPED = OrderShipped(order_id=ORDER_ID, tracking_number="TRK1", items=())


def test_placing_an_order_reserves_inventory_and_requests_payment_in_that_order() -> None:
    given(ORDER).when(place(line("sku-1", 2, "12.50"), line("sku-2", 1, "3"), line("sku-1", 1, "12.5"))).then(
        PLACED,
        InventoryReserved(
            order_id=ORDER_ID,
            items=(
                ProductQuantity(product_id="sku-1", quantity=3),
                ProductQuantity(product_id="sku-2", quantity=1),
            ),
        ),
        PaymentRequested(order_id=ORDER_ID, customer_id="alice", amount=Decimal("40.50")),
    )


def test_money_in_events_is_stored_as_decimal_strings() -> None:
    data = PLACED.to_new_event().data
    assert data["total_amount"] == "40.50"
    assert data["items"][0]["unit_price"] == "12.50"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (place(), "items"),
        (place(line(quantity=0)), "items[0].quantity"),
        (place(line(quantity=-3)), "items[0].quantity"),
        (place(line(quantity=10_001)), "items[0].quantity"),
        (place(line(price="-0.01")), "items[0].unit_price"),
        (place(line(price="1.005")), "items[0].unit_price"),
        (place(line(price="1000000.01")), "items[0].unit_price"),
        (place(line(product="")), "items[0].product_id"),
        (place(line(product="../etc/passwd")), "items[0].product_id"),
        (
            PlaceOrder(ORDER_ID, "alice", (line(),), ShippingAddress("", "c", "p", "NL")),
            "shipping_address.line1",
        ),
    ],
)
def test_an_invalid_order_is_refused_naming_the_field(command: PlaceOrder, field: str) -> None:
    refused = given(ORDER).when(command).then_refused(InvalidCommand)
    assert refused.value.field == field  # type: ignore[attr-defined]


def test_a_free_item_is_allowed() -> None:
    placed, _, payment = given(ORDER).when(place(line(price="0"))).then_decided(3)
    assert placed.total_amount == Decimal("0.00")  # type: ignore[attr-defined]
    assert payment.amount == Decimal("0.00")  # type: ignore[attr-defined]


def test_an_order_cannot_be_placed_twice() -> None:
    given(ORDER, PLACED).when(place(line())).then_refused(RuleViolation, "already exists")


def test_the_owner_adds_an_item_which_is_reserved() -> None:
    given(ORDER, PLACED).when(AddItem(ORDER_ID, "alice", line("sku-9", 4, "2.25"))).then(
        ItemAdded(
            order_id=ORDER_ID,
            product_id="sku-9",
            quantity=4,
            unit_price=Decimal("2.25"),
            line_total=Decimal("9.00"),
            currency="EUR",
        ),
        InventoryReserved(order_id=ORDER_ID, items=(ProductQuantity(product_id="sku-9", quantity=4),)),
    )


def test_someone_elses_order_looks_missing() -> None:
    given(ORDER, PLACED).when(AddItem(ORDER_ID, "mallory", line())).then_refused(NotFound)
    given(ORDER, PLACED).when(CancelOrder(ORDER_ID, "mallory", False, "x")).then_refused(NotFound)
    given(ORDER).when(AddItem(ORDER_ID, "alice", line())).then_refused(NotFound)


@pytest.mark.parametrize("ended", [CANCELLED, SHIPPED], ids=["cancelled", "shipped"])
def test_an_ended_order_cannot_change(ended: OrderCancelled | OrderShipped) -> None:
    given(ORDER, PLACED, ended).when(AddItem(ORDER_ID, "alice", line())).then_refused(RuleViolation)
    given(ORDER, PLACED, ended).when(CancelOrder(ORDER_ID, "alice", False, "x")).then_refused(RuleViolation)
    given(ORDER, PLACED, ended).when(ShipOrder(ORDER_ID, "TRK2")).then_refused(RuleViolation, "only a placed")


def test_cancelling_releases_everything_reserved_including_added_items() -> None:
    added = ItemAdded(
        order_id=ORDER_ID,
        product_id="sku-2",
        quantity=5,
        unit_price=Decimal("1.00"),
        line_total=Decimal("5.00"),
        currency="EUR",
    )
    given(ORDER, PLACED, added).when(CancelOrder(ORDER_ID, "alice", False, "changed my mind")).then(
        CANCELLED,
        InventoryReleased(
            order_id=ORDER_ID,
            items=(
                ProductQuantity(product_id="sku-1", quantity=3),
                ProductQuantity(product_id="sku-2", quantity=6),
            ),
        ),
    )


def test_an_operator_may_cancel_any_order() -> None:
    events = (
        given(ORDER, PLACED)
        .when(CancelOrder(ORDER_ID, "op", True, "fraud"))
        .then(
            OrderCancelled(order_id=ORDER_ID, reason="fraud"),
            InventoryReleased(
                order_id=ORDER_ID,
                items=(
                    ProductQuantity(product_id="sku-1", quantity=3),
                    ProductQuantity(product_id="sku-2", quantity=1),
                ),
            ),
        )
    )
    assert len(events) == 2


def test_only_a_placed_order_ships_carrying_its_quantities() -> None:
    given(ORDER, PLACED).when(ShipOrder(ORDER_ID, "TRK1")).then(
        OrderShipped(
            order_id=ORDER_ID,
            tracking_number="TRK1",
            items=(
                ProductQuantity(product_id="sku-1", quantity=3),
                ProductQuantity(product_id="sku-2", quantity=1),
            ),
        )
    )
    given(ORDER).when(ShipOrder(ORDER_ID, "TRK1")).then_refused(NotFound)
    given(ORDER, PLACED).when(ShipOrder(ORDER_ID, " ")).then_refused(InvalidCommand)


@dataclass(frozen=True)
class ReturnOrder:
    """A command the aggregate does not know, shaped like ShipOrder."""

    order_id: str
    tracking_number: str


def test_an_unknown_command_is_refused_not_shipped() -> None:
    # Given a placed order, when a command outside OrderCommand arrives (mistyped by its caller)
    refused = given(ORDER, PLACED).when(ReturnOrder(ORDER_ID, "TRK1")).then_refused(TypeError)

    # Then it is refused by name, and nothing was decided
    assert "ReturnOrder" in str(refused.value)


def test_evolve_tracks_status_lines_and_total() -> None:
    added = ItemAdded(
        order_id=ORDER_ID,
        product_id="sku-2",
        quantity=2,
        unit_price=Decimal("0.25"),
        line_total=Decimal("0.50"),
        currency="EUR",
    )
    state = ORDER.fold(ORDER.initial_state, [PLACED, added, SHIPPED])
    assert state.status == "shipped"
    assert state.tracking_number == "TRK1"
    assert state.total_amount == Decimal("41.00")
    assert [(p.product_id, p.quantity) for p in state.quantities_by_product()] == [("sku-1", 3), ("sku-2", 3)]


def test_stored_events_load_back_into_equal_domain_events() -> None:
    stored = PLACED.to_new_event()
    assert ORDER.events.load(stored.type, stored.data, stored.schema_version) == PLACED
