"""The order aggregate: PlaceOrder, AddItem, CancelOrder, ShipOrder."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from orders_core.aggregate import AggregateType
from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.domain.events import DomainEvent, EventPart, EventRegistry
from orders_core.domain.money import check_price

MAX_LINES_PER_ORDER = 200
MAX_QUANTITY_PER_LINE = 10_000
MAX_PRODUCT_ID_LENGTH = 64
PRODUCT_ID = re.compile(rf"[A-Za-z0-9._\-]{{1,{MAX_PRODUCT_ID_LENGTH}}}")

OrderStatus = Literal["new", "placed", "shipped", "cancelled"]


# --- value objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class ShippingAddress:
    line1: str
    city: str
    postal_code: str
    country: str


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer_id: str
    items: tuple[OrderLine, ...]
    shipping_address: ShippingAddress


@dataclass(frozen=True)
class AddItem:
    order_id: str
    requested_by: str
    line: OrderLine


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    requested_by: str
    by_operator: bool
    reason: str


@dataclass(frozen=True)
class ShipOrder:
    order_id: str
    tracking_number: str


OrderCommand = PlaceOrder | AddItem | CancelOrder | ShipOrder


# --- events --------------------------------------------------------------------------------


class LineData(EventPart):
    product_id: str
    quantity: int
    unit_price: Decimal


class ProductQuantity(EventPart):
    product_id: str
    quantity: int


class AddressData(EventPart):
    line1: str
    city: str
    postal_code: str
    country: str


class OrderPlaced(DomainEvent):
    event_type = "OrderPlaced"
    order_id: str
    customer_id: str
    items: tuple[LineData, ...]
    shipping_address: AddressData
    total_amount: Decimal


class InventoryReserved(DomainEvent):
    event_type = "InventoryReserved"
    order_id: str
    items: tuple[ProductQuantity, ...]


class PaymentRequested(DomainEvent):
    event_type = "PaymentRequested"
    order_id: str
    customer_id: str
    amount: Decimal


class ItemAdded(DomainEvent):
    event_type = "ItemAdded"
    order_id: str
    product_id: str
    quantity: int
    unit_price: Decimal


class OrderCancelled(DomainEvent):
    event_type = "OrderCancelled"
    order_id: str
    reason: str


class InventoryReleased(DomainEvent):
    event_type = "InventoryReleased"
    order_id: str
    items: tuple[ProductQuantity, ...]


class OrderShipped(DomainEvent):
    event_type = "OrderShipped"
    order_id: str
    tracking_number: str
    # The shipped quantities travel with the event so that readers (inventory) need no state.
    items: tuple[ProductQuantity, ...]


ORDER_EVENTS = EventRegistry(
    [
        OrderPlaced,
        InventoryReserved,
        PaymentRequested,
        ItemAdded,
        OrderCancelled,
        InventoryReleased,
        OrderShipped,
    ]
)


# --- state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderState:
    status: OrderStatus = "new"
    order_id: str = ""
    customer_id: str = ""
    lines: tuple[OrderLine, ...] = ()
    shipping_address: ShippingAddress | None = None
    tracking_number: str | None = None

    @property
    def total_amount(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))

    def quantities_by_product(self) -> tuple[ProductQuantity, ...]:
        return _quantities(self.lines)


def _quantities(lines: Iterable[OrderLine]) -> tuple[ProductQuantity, ...]:
    totals: Counter[str] = Counter()
    for line in lines:
        totals[line.product_id] += line.quantity
    return tuple(ProductQuantity(product_id=p, quantity=q) for p, q in sorted(totals.items()))


# --- decide --------------------------------------------------------------------------------


def _check_text(value: str, field: str, *, max_length: int = 200) -> None:
    if not value.strip():
        raise InvalidCommand(f"{field} cannot be empty", field)
    if len(value) > max_length:
        raise InvalidCommand(f"{field} is longer than {max_length} characters", field)


def check_product_id(product_id: str, field: str = "product_id") -> None:
    if not PRODUCT_ID.fullmatch(product_id):
        raise InvalidCommand(
            f"a product id is 1 to {MAX_PRODUCT_ID_LENGTH} letters, digits, '.', '_' or '-'", field
        )


def _check_line(line: OrderLine, field: str) -> OrderLine:
    check_product_id(line.product_id, f"{field}.product_id")
    if line.quantity < 1:
        raise InvalidCommand("quantity must be at least 1", f"{field}.quantity")
    if line.quantity > MAX_QUANTITY_PER_LINE:
        raise InvalidCommand(f"quantity cannot exceed {MAX_QUANTITY_PER_LINE}", f"{field}.quantity")
    return replace(line, unit_price=check_price(line.unit_price, f"{field}.unit_price"))


def _line_data(line: OrderLine) -> LineData:
    return LineData(product_id=line.product_id, quantity=line.quantity, unit_price=line.unit_price)


def _place(state: OrderState, command: PlaceOrder) -> Sequence[DomainEvent]:
    if state.status != "new":
        raise RuleViolation(f"order {command.order_id} already exists")
    if not command.items:
        raise InvalidCommand("an order needs at least one item", "items")
    if len(command.items) > MAX_LINES_PER_ORDER:
        raise InvalidCommand(f"an order has at most {MAX_LINES_PER_ORDER} items", "items")
    lines = tuple(_check_line(line, f"items[{i}]") for i, line in enumerate(command.items))
    address = command.shipping_address
    for name in ("line1", "city", "postal_code", "country"):
        _check_text(getattr(address, name), f"shipping_address.{name}")
    total = sum((line.line_total for line in lines), Decimal("0.00"))
    return [
        OrderPlaced(
            order_id=command.order_id,
            customer_id=command.customer_id,
            items=tuple(_line_data(line) for line in lines),
            shipping_address=AddressData(
                line1=address.line1,
                city=address.city,
                postal_code=address.postal_code,
                country=address.country,
            ),
            total_amount=total,
        ),
        InventoryReserved(order_id=command.order_id, items=_quantities(lines)),
        PaymentRequested(order_id=command.order_id, customer_id=command.customer_id, amount=total),
    ]


def _require_visible(state: OrderState, order_id: str, requested_by: str, *, operator: bool = False) -> None:
    # Someone else's order answers exactly like a missing one: existence is not revealed.
    if state.status == "new" or (not operator and state.customer_id != requested_by):
        raise NotFound(f"order {order_id} not found")


def _require_placed(state: OrderState, action: str) -> None:
    if state.status != "placed":
        raise RuleViolation(f"order {state.order_id} is {state.status}: {action}")


def _add_item(state: OrderState, command: AddItem) -> Sequence[DomainEvent]:
    _require_visible(state, command.order_id, command.requested_by)
    _require_placed(state, "items can no longer be added")
    if len(state.lines) >= MAX_LINES_PER_ORDER:
        raise RuleViolation(f"an order has at most {MAX_LINES_PER_ORDER} items")
    line = _check_line(command.line, "item")
    return [
        ItemAdded(
            order_id=command.order_id,
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price=line.unit_price,
        ),
        InventoryReserved(
            order_id=command.order_id,
            items=(ProductQuantity(product_id=line.product_id, quantity=line.quantity),),
        ),
    ]


def _cancel(state: OrderState, command: CancelOrder) -> Sequence[DomainEvent]:
    _require_visible(state, command.order_id, command.requested_by, operator=command.by_operator)
    _require_placed(state, "only a placed order can be cancelled")
    _check_text(command.reason, "reason", max_length=500)
    return [
        OrderCancelled(order_id=command.order_id, reason=command.reason),
        InventoryReleased(order_id=command.order_id, items=state.quantities_by_product()),
    ]


def _ship(state: OrderState, command: ShipOrder) -> Sequence[DomainEvent]:
    _require_visible(state, command.order_id, "", operator=True)
    _require_placed(state, "only a placed order can ship")
    _check_text(command.tracking_number, "tracking_number", max_length=100)
    return [
        OrderShipped(
            order_id=command.order_id,
            tracking_number=command.tracking_number,
            items=state.quantities_by_product(),
        )
    ]


def decide(state: OrderState, command: OrderCommand) -> Sequence[DomainEvent]:
    if isinstance(command, PlaceOrder):
        return _place(state, command)
    if isinstance(command, AddItem):
        return _add_item(state, command)
    if isinstance(command, CancelOrder):
        return _cancel(state, command)
    return _ship(state, command)


# --- evolve --------------------------------------------------------------------------------


def evolve(state: OrderState, event: DomainEvent) -> OrderState:
    if isinstance(event, OrderPlaced):
        address = event.shipping_address
        return OrderState(
            status="placed",
            order_id=event.order_id,
            customer_id=event.customer_id,
            lines=tuple(OrderLine(i.product_id, i.quantity, i.unit_price) for i in event.items),
            shipping_address=ShippingAddress(
                address.line1, address.city, address.postal_code, address.country
            ),
        )
    if isinstance(event, ItemAdded):
        return replace(
            state, lines=(*state.lines, OrderLine(event.product_id, event.quantity, event.unit_price))
        )
    if isinstance(event, OrderCancelled):
        return replace(state, status="cancelled")
    if isinstance(event, OrderShipped):
        return replace(state, status="shipped", tracking_number=event.tracking_number)
    # InventoryReserved, InventoryReleased, PaymentRequested tell others; the order is unchanged.
    return state


ORDER = AggregateType[OrderState, OrderCommand](
    name="order",
    stream_prefix="order-",
    initial_state=OrderState(),
    decide=decide,
    evolve=evolve,
    events=ORDER_EVENTS,
)
