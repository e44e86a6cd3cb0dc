"""Product sales: each event's effect on its order, what an order adds, exactness under redelivery."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orders_core.application import CommandService
from orders_core.domain.events import DomainEvent
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
from orders_core.envelope import Commit, EventEnvelope
from orders_core.projections.base import Fact
from orders_core.projections.deltas import Shares
from orders_core.projections.product_sales import ProductSales, fold, present, shares
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from tests.support.orders import context

ORDER_ID = "0f8e1a4c-7b1d-4c8e-9f00-000000000001"
ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")


def fact(event: DomainEvent) -> Fact:
    envelope = EventEnvelope(
        event_id="e-1",
        stream_id=f"order-{ORDER_ID}",
        version=1,
        type=event.event_type,
        schema_version=1,
        data={},
        recorded_at="2026-11-26T10:00:00.000000Z",
        correlation_id="corr",
        causation_id="cmd",
        command_id="cmd",
        actor="alice",
    )
    return Fact(envelope, event)


def shown(*events: DomainEvent) -> Shares:
    """What an order that saw these events adds to each product it names."""
    order: dict[str, Any] = {}
    for event in events:
        fold(order, fact(event))
    return shares(order)


PLACED = OrderPlaced(
    order_id=ORDER_ID,
    customer_id="alice",
    items=(
        LineData(product_id="sku-1", quantity=2, unit_price=Decimal("12.50")),
        LineData(product_id="sku-2", quantity=1, unit_price=Decimal("0.00")),
        LineData(product_id="sku-1", quantity=1, unit_price=Decimal("12.50")),
    ),
    shipping_address=AddressData(line1="1 Canal St", city="Amsterdam", postal_code="1011", country="NL"),
    total_amount=Decimal("37.50"),
)


def test_a_placement_adds_units_and_line_totals_to_each_product_it_names() -> None:
    assert shown(PLACED) == {
        "sku-1": {"units": 3, "revenue": Decimal("37.50"), "orders": 1},
        # A free line still sold its units: kept, with a zero amount
        "sku-2": {"units": 1, "revenue": Decimal("0.00"), "orders": 1},
    }


def test_an_added_item_adds_the_total_its_event_charged() -> None:
    # Given an item whose charged total is not unit price × quantity (a discount, say)
    added = ItemAdded(
        order_id=ORDER_ID,
        product_id="sku-3",
        quantity=2,
        unit_price=Decimal("5.00"),
        line_total=Decimal("9.00"),
        currency="EUR",
    )
    # Then the event's line_total is what the product earned (ADR 8)
    assert shown(added) == {"sku-3": {"units": 2, "revenue": Decimal("9.00"), "orders": 1}}


def test_a_cancelled_order_still_names_its_products_and_adds_nothing_to_them() -> None:
    # Named, so that the products' revisions never go back; nothing counted
    assert shown(PLACED, OrderCancelled(order_id=ORDER_ID, reason="r")) == {"sku-1": {}, "sku-2": {}}


def test_other_order_events_change_nothing() -> None:
    quantities = (ProductQuantity(product_id="sku-1", quantity=3),)
    for event in (
        OrderShipped(order_id=ORDER_ID, tracking_number="T1", items=quantities),
        InventoryReserved(order_id=ORDER_ID, items=quantities),
        InventoryReleased(order_id=ORDER_ID, items=quantities),
        PaymentRequested(order_id=ORDER_ID, customer_id="alice", amount=Decimal("1.00")),
    ):
        assert shown(PLACED, event) == shown(PLACED), event


def test_the_summary_reads_summed_counters() -> None:
    counters = {"units": Decimal(4), "revenue": Decimal("37.6"), "orders": Decimal(2)}
    assert present("sku-1", counters) == {
        "product_id": "sku-1",
        "units_sold": 4,
        "revenue": "37.60",
        "order_count": 2,
    }
    nothing = {"product_id": "sku-1", "units_sold": 0, "revenue": "0.00", "order_count": 0}
    assert present("sku-1", {}) == nothing


def _history() -> tuple[InMemoryEventStore, list[Commit]]:
    """Two orders: one placed, extended and shipped; one placed and cancelled."""
    events = InMemoryEventStore()
    service = CommandService(events)
    kept, dropped = ORDER_ID, "0f8e1a4c-7b1d-4c8e-9f00-000000000002"
    lines = (OrderLine("sku-1", 2, Decimal("12.50")), OrderLine("sku-2", 1, Decimal("3.00")))
    service.execute(ORDER, kept, PlaceOrder(kept, "alice", lines, ADDRESS), context())
    service.execute(ORDER, kept, AddItem(kept, "alice", OrderLine("sku-1", 1, Decimal("11.00"))), context())
    service.execute(ORDER, kept, ShipOrder(kept, "T1"), context())
    service.execute(ORDER, dropped, PlaceOrder(dropped, "bob", lines[:1], ADDRESS), context(actor="bob"))
    service.execute(ORDER, dropped, CancelOrder(dropped, "bob", False, "no"), context(actor="bob"))
    return events, [c for s in events.stream_ids() for c in events.read_commits(s)]


def _figures(model: ProductSales, product: str) -> dict[str, object] | None:
    row = model.get(product)
    return None if row is None else {k: v for k, v in row.items() if k != "revision"}


def test_redelivered_and_reordered_commits_change_nothing() -> None:
    # Given the history delivered once, then again in reverse order (a replay across shards)
    _, commits = _history()
    model = ProductSales(InMemoryReadStore())
    assert model.process(commits) == {}
    first = {p: model.get(p) for p in ("sku-1", "sku-2")}
    assert model.process(list(reversed(commits))) == {}
    assert model.process(commits[1:3]) == {}

    # Then every figure is as a single clean delivery left it, revision included
    assert {p: model.get(p) for p in ("sku-1", "sku-2")} == first
    assert _figures(model, "sku-1") == {
        "product_id": "sku-1",
        "units_sold": 3,
        "revenue": "36.00",
        "order_count": 1,
    }
    assert _figures(model, "sku-2") == {
        "product_id": "sku-2",
        "units_sold": 1,
        "revenue": "3.00",
        "order_count": 1,
    }
    assert model.get("sku-404") is None


def test_a_cancellation_applied_before_its_placement_still_removes_the_order() -> None:
    # Given the cancelled order's commits delivered last one first
    _, commits = _history()
    dropped = [c for c in commits if c.stream_id.endswith("-000000000002")]
    model = ProductSales(InMemoryReadStore())
    for commit in reversed(dropped):
        assert model.process([commit]) == {}

    # Then the product was ordered, and nothing of it counts
    assert _figures(model, "sku-1") == {
        "product_id": "sku-1",
        "units_sold": 0,
        "revenue": "0.00",
        "order_count": 0,
    }
