"""The order aggregate: PlaceOrder, AddItem, CancelOrder, ShipOrder."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, assert_never, get_args

from orders_core.domain.aggregate import AggregateType
from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.domain.events import DomainEvent, EventPart, EventRegistry, PastSchema, Upcaster
from orders_core.domain.money import CENT, check_price

MAX_LINES_PER_ORDER = 200
MAX_QUANTITY_PER_LINE = 10_000
MAX_PRODUCT_ID_LENGTH = 64
PRODUCT_ID = re.compile(rf"[A-Za-z0-9._\-]{{1,{MAX_PRODUCT_ID_LENGTH}}}")
# Every price the shop has taken is in this currency; events state it since ItemAdded v3.
ORDER_CURRENCY = "EUR"

OrderStatus = Literal["new", "placed", "shipped", "cancelled"]


# --- value objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int
    unit_price: Decimal
    # What the line was charged, as its event recorded it (ItemAdded since v2); None where the
    # event states no total (OrderPlaced's lines), which are charged unit_price × quantity.
    charged: Decimal | None = None

    def __post_init__(self) -> None:
        # One representation per meaning: a charge equal to the product is no charge of its own.
        if self.charged is not None and self.charged == self.unit_price * self.quantity:
            object.__setattr__(self, "charged", None)

    @property
    def line_total(self) -> Decimal:
        return self.charged if self.charged is not None else self.unit_price * self.quantity


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

    @property
    def line_total(self) -> Decimal:
        # OrderPlaced states no line totals: its lines are charged unit_price × quantity.
        return self.unit_price * self.quantity


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
    """v1: order_id, product_id, quantity, unit_price. v2 added line_total. v3 added currency."""

    event_type = "ItemAdded"
    schema_version = 3
    order_id: str
    product_id: str
    quantity: int
    unit_price: Decimal
    # What the line costs, as charged: readers take it from the event instead of re-deriving it.
    line_total: Decimal
    # ISO 4217 code of unit_price and line_total.
    currency: str


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


# --- older versions of events, and the upcasters that bring them to the current one -----------


class ItemAddedV1(PastSchema):
    """ItemAdded as stored at schema version 1."""

    order_id: str
    product_id: str
    quantity: int
    unit_price: Decimal


class ItemAddedV2(ItemAddedV1):
    """ItemAdded as stored at schema version 2: v1 plus the line total."""

    line_total: Decimal


def _item_added_v1_to_v2(old: ItemAddedV1) -> Mapping[str, Any]:
    # v1 lines were always charged unit_price × quantity: there was no other pricing rule.
    line_total = (old.unit_price * old.quantity).quantize(CENT)
    return {**old.model_dump(mode="json"), "line_total": str(line_total)}


def _item_added_v2_to_v3(old: ItemAddedV2) -> Mapping[str, Any]:
    # Before v3 the currency was implicit: the shop has only ever priced in ORDER_CURRENCY.
    return {**old.model_dump(mode="json"), "currency": ORDER_CURRENCY}


ORDER_UPCASTERS: tuple[Upcaster[Any], ...] = (
    Upcaster(
        "ItemAdded",
        1,
        ItemAddedV1,
        _item_added_v1_to_v2,
        example={"order_id": "o-1", "product_id": "sku-1", "quantity": 2, "unit_price": "12.50"},
    ),
    Upcaster(
        "ItemAdded",
        2,
        ItemAddedV2,
        _item_added_v2_to_v3,
        example={
            "order_id": "o-1",
            "product_id": "sku-1",
            "quantity": 2,
            "unit_price": "12.50",
            "line_total": "25.00",
        },
    ),
)


ORDER_EVENTS = EventRegistry(
    [
        OrderPlaced,
        InventoryReserved,
        PaymentRequested,
        ItemAdded,
        OrderCancelled,
        InventoryReleased,
        OrderShipped,
    ],
    ORDER_UPCASTERS,
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
            line_total=line.line_total,
            currency=ORDER_CURRENCY,
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
    if isinstance(command, ShipOrder):
        return _ship(state, command)
    # Every member of OrderCommand has a branch above, so `command` is Never here: mypy --strict
    # rejects this call the day a member is added without one. At run time an object outside the
    # union is refused rather than taken for another command.
    try:
        assert_never(command)
    except AssertionError as exc:
        raise TypeError(f"not an order command: {type(command).__name__}") from exc


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
            state,
            lines=(
                *state.lines,
                OrderLine(event.product_id, event.quantity, event.unit_price, event.line_total),
            ),
        )
    if isinstance(event, OrderCancelled):
        return replace(state, status="cancelled")
    if isinstance(event, OrderShipped):
        return replace(state, status="shipped", tracking_number=event.tracking_number)
    # InventoryReserved, InventoryReleased, PaymentRequested tell others; the order is unchanged.
    return state


# --- snapshots -----------------------------------------------------------------------------

# Bump whenever OrderState (or a value it holds) changes shape: snapshots written by code with
# another version are then ignored and the order is folded from its events instead.
# v2: an order line keeps the total its event charged (ItemAdded's line_total).
ORDER_STATE_SCHEMA_VERSION = 2


def order_state_to_snapshot(state: OrderState) -> dict[str, Any]:
    address = state.shipping_address
    return {
        "status": state.status,
        "order_id": state.order_id,
        "customer_id": state.customer_id,
        # Lines as arrays rather than objects: even a very long order's snapshot fits one item. A
        # charged total is kept only where it differs from unit_price × quantity.
        "lines": [_line_to_snapshot(line) for line in state.lines],
        "shipping_address": (
            [address.line1, address.city, address.postal_code, address.country] if address else None
        ),
        "tracking_number": state.tracking_number,
    }


def _line_to_snapshot(line: OrderLine) -> list[Any]:
    encoded: list[Any] = [line.product_id, line.quantity, str(line.unit_price)]
    return encoded if line.charged is None else [*encoded, str(line.charged)]


def _line_from_snapshot(encoded: Sequence[Any]) -> OrderLine:
    product, quantity, price, *charged = encoded
    if len(charged) > 1:
        raise ValueError(f"an order line snapshot has 3 or 4 parts, not {len(encoded)}")
    return OrderLine(str(product), int(quantity), Decimal(price), Decimal(charged[0]) if charged else None)


def order_state_from_snapshot(data: Mapping[str, Any]) -> OrderState:
    status = data["status"]
    if status not in get_args(OrderStatus):
        raise ValueError(f"unknown order status {status!r}")
    address = data["shipping_address"]
    tracking = data["tracking_number"]
    return OrderState(
        status=status,
        order_id=str(data["order_id"]),
        customer_id=str(data["customer_id"]),
        lines=tuple(_line_from_snapshot(line) for line in data["lines"]),
        shipping_address=ShippingAddress(*(str(part) for part in address)) if address is not None else None,
        tracking_number=str(tracking) if tracking is not None else None,
    )


ORDER = AggregateType[OrderState, OrderCommand](
    name="order",
    stream_prefix="order-",
    initial_state=OrderState(),
    decide=decide,
    evolve=evolve,
    events=ORDER_EVENTS,
    state_schema_version=ORDER_STATE_SCHEMA_VERSION,
    state_to_snapshot=order_state_to_snapshot,
    state_from_snapshot=order_state_from_snapshot,
)
