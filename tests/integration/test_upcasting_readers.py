"""Every reader sees old event versions as current ones: projections fed by the stream, the
rebuild's input (export items), the history endpoint. The histories mix ItemAdded v1, v2 and v3."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from orders_core.application import CommandService
from orders_core.domain.inventory import PRODUCT, ReceiveStock
from orders_core.domain.orders import ORDER, AddItem, OrderLine, ShipOrder
from orders_core.envelope import Commit, CommitMetadata, NewEvent, envelopes_of
from orders_core.projections.base import facts
from orders_core.projections.control import ControlStore
from orders_core.projections.customer_orders import CustomerOrders
from orders_core.projections.inventory import Inventory
from orders_core.projections.product_sales import ProductSales
from orders_core.projections.registry import REGISTRY
from orders_core.projections.sales import SalesAnalytics
from orders_core.queries.orders import OrderQueries
from orders_core.queries.read_models import ActiveReadModels
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.codec import commit_to_item, item_to_commit
from orders_core.store.memory import InMemoryEventStore
from orders_core.store.stream_records import commit_from_stream_record
from orders_core.tables import CUSTOMER_ORDERS, INVENTORY, PRODUCT_SALES, SALES_ANALYTICS
from orders_core.web import Caller
from tests.support import oracle
from tests.support.orders import context, place_order


def old_item(order_id: str, version: int, sku: str, quantity: int, price: str) -> NewEvent:
    data: dict[str, Any] = {
        "order_id": order_id,
        "product_id": sku,
        "quantity": quantity,
        "unit_price": price,
    }
    if version >= 2:
        data["line_total"] = str(Decimal(price) * quantity)
    if version >= 3:
        data["currency"] = "EUR"
    return NewEvent("ItemAdded", data, schema_version=version)


def reserved(order_id: str, sku: str, quantity: int) -> NewEvent:
    return NewEvent(
        "InventoryReserved", {"order_id": order_id, "items": [{"product_id": sku, "quantity": quantity}]}
    )


@pytest.fixture
def log() -> InMemoryEventStore:
    """Two orders with items stored at every ItemAdded version, one shipped; stock received."""
    store = InMemoryEventStore()
    service = CommandService(store)
    for n, order_id in enumerate((str(uuid.uuid4()), str(uuid.uuid4()))):
        service.execute(ORDER, order_id, place_order(order_id), context(), expect_new=True)
        stream = ORDER.stream_id(order_id)
        for version, sku, quantity, price in (
            (1, "sku-a", 2, "1.25"),
            (2, "sku-b", 1, "4.00"),
            (3, "sku-a", 3, "1.25"),
        ):
            at = store.read_commits(stream)[-1].last_version
            meta = CommitMetadata(
                f"cmd-{n}-{version}",
                f"corr-{n}",
                f"cmd-{n}-{version}",
                "alice",
                "2026-11-26T10:00:01.000000Z",
            )
            store.append(
                stream,
                at,
                [old_item(order_id, version, sku, quantity, price), reserved(order_id, sku, quantity)],
                meta,
            )
        if n == 0:
            service.cache.clear()
            service.execute(ORDER, order_id, ShipOrder(order_id, "TRK"), context())
    CommandService(store).execute(PRODUCT, "sku-a", ReceiveStock("sku-a", 50), context())
    return store


def all_commits(store: InMemoryEventStore) -> list[Commit]:
    return [commit for stream in store.stream_ids() for commit in store.read_commits(stream)]


def read_tables() -> defaultdict[str, InMemoryReadStore]:
    """One store per read model's table, as deployed: inventory and product sales both key by product."""
    return defaultdict(InMemoryReadStore)


def assert_views_match_the_log(
    store: InMemoryEventStore, tables: dict[str, InMemoryReadStore], generation: int
) -> None:
    events = envelopes_of(all_commits(store))
    orders = CustomerOrders(tables[CUSTOMER_ORDERS.key], store, generation)
    for order_id, expected in oracle.order_views(events).items():
        view = orders.get(order_id)
        assert view is not None and view.to_json() == expected
    sales = SalesAnalytics(tables[SALES_ANALYTICS.key], generation)
    for day, expected in oracle.daily_sales(events).items():
        assert {k: v for k, v in (sales.get(day) or {}).items() if k != "revision"} == expected
    stock = Inventory(tables[INVENTORY.key], generation)
    for product, expected in oracle.inventory(events).items():
        assert {k: v for k, v in (stock.get(product) or {}).items() if k != "revision"} == expected
    products = ProductSales(tables[PRODUCT_SALES.key], generation)
    for product, expected in oracle.product_sales(events).items():
        assert {k: v for k, v in (products.get(product) or {}).items() if k != "revision"} == expected


def test_the_log_really_holds_every_version(log: InMemoryEventStore) -> None:
    versions = {(e.type, e.schema_version) for e in envelopes_of(all_commits(log))}
    assert {("ItemAdded", 1), ("ItemAdded", 2), ("ItemAdded", 3)} <= versions
    # And each reads back as the current event
    items = [f.event for c in all_commits(log) for f in facts(c) if f.envelope.type == "ItemAdded"]
    assert {(type(e).schema_version, e.currency) for e in items} == {(3, "EUR")}  # type: ignore[attr-defined]


def test_projections_fed_by_the_stream_read_every_version(log: InMemoryEventStore) -> None:
    tables = read_tables()
    records = [
        {"eventName": "INSERT", "dynamodb": {"NewImage": json.loads(json.dumps(commit_to_item(c)))}}
        for c in all_commits(log)
    ]
    commits = [c for c in (commit_from_stream_record(r) for r in records) if c is not None]
    for projection in (
        CustomerOrders(tables[CUSTOMER_ORDERS.key], log),
        SalesAnalytics(tables[SALES_ANALYTICS.key]),
        Inventory(tables[INVENTORY.key]),
        ProductSales(tables[PRODUCT_SALES.key]),
    ):
        assert projection.process(commits) == {}
    assert_views_match_the_log(log, tables, generation=1)


def test_the_rebuild_input_export_items_is_upcast_like_the_stream(log: InMemoryEventStore) -> None:
    # An export file holds one {"Item": <DynamoDB JSON>} line per commit; the rebuild decodes each
    # with item_to_commit and applies them, by stream in version order, into a new generation.
    lines = [json.dumps({"Item": commit_to_item(c)}) for c in reversed(all_commits(log))]
    decoded = sorted(
        (item_to_commit(json.loads(line)["Item"]) for line in lines),
        key=lambda c: (c.stream_id, c.first_version),
    )
    tables = read_tables()
    for registration in REGISTRY.values():
        assert registration.build(tables[registration.table.key], log, 2).process(decoded) == {}, (
            registration.name
        )
    assert_views_match_the_log(log, tables, generation=2)


OPERATOR = Caller(user_id="ops", is_operator=True)


def _no_read_model(name: str, generation: int) -> Any:
    raise AssertionError("the history is read from the event log, never from a read model")


def test_the_history_shows_every_event_in_its_current_schema(log: InMemoryEventStore) -> None:
    service = CommandService(log)
    streams = [s for s in log.stream_ids() if s.startswith(ORDER.stream_prefix)]
    order_id = next(
        ORDER.aggregate_id(s)
        for s in streams
        if service.load(ORDER, ORDER.aggregate_id(s)).state.status == "placed"
    )

    history = OrderQueries(ActiveReadModels(ControlStore(InMemoryReadStore()), _no_read_model), log).history(
        order_id, OPERATOR
    )

    added = [e for e in history.events if e.type == "ItemAdded"]
    assert [e.schema_version for e in added] == [3, 3, 3]
    assert [(e.data["line_total"], e.data["currency"]) for e in added] == [
        ("2.50", "EUR"),
        ("4.00", "EUR"),
        ("3.75", "EUR"),
    ]


def test_commands_decide_on_aggregates_loaded_through_the_upcasters(log: InMemoryEventStore) -> None:
    service = CommandService(log)
    streams = [s for s in log.stream_ids() if s.startswith(ORDER.stream_prefix)]
    order_id = next(
        ORDER.aggregate_id(s)
        for s in streams
        if service.load(ORDER, ORDER.aggregate_id(s)).state.status == "placed"
    )

    result = CommandService(log).execute(
        ORDER, order_id, AddItem(order_id, "alice", OrderLine("sku-z", 1, Decimal("1.00"))), context()
    )

    loaded = CommandService(log).load(ORDER, order_id)
    assert [line.product_id for line in loaded.state.lines] == ["sku-0", "sku-a", "sku-b", "sku-a", "sku-z"]
    assert (
        loaded.state.total_amount == Decimal("9.99") + Decimal("2.50") + Decimal("4.00") + Decimal("3.75") + 1
    )
    assert result.version == loaded.version == 11
