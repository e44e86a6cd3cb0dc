"""docs/events/ holds one JSON Schema per event type and version, generated from the event catalog,
and what the publisher puts on the bus is what they describe."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError  # type: ignore[import-untyped]

from orders_core.application import CommandContext, CommandService
from orders_core.domain.inventory import PRODUCT, ReceiveStock, SetReorderLevel
from orders_core.domain.orders import (
    ORDER,
    AddItem,
    CancelOrder,
    OrderLine,
    PlaceOrder,
    ShipOrder,
    ShippingAddress,
)
from orders_core.event_catalog import AGGREGATES
from orders_core.integration.events import PUBLISHED_AGGREGATES, entries_of
from orders_core.integration.schemas import file_name, render, stale_files
from orders_core.store.memory import InMemoryEventStore

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"


def _schema(event_type: str, version: int) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (SCHEMAS / file_name(event_type, version)).read_text(encoding="utf-8")
    )
    return schema


def _validator(event_type: str, version: int) -> Draft202012Validator:
    schema = _schema(event_type, version)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_the_checked_in_schemas_are_current() -> None:
    assert stale_files(SCHEMAS, render()) == [], "docs/events/ is stale: run `make schemas`"


def test_every_version_in_the_catalog_has_a_schema() -> None:
    expected = {file_name(e.event_type, e.version) for a in AGGREGATES for e in a.events.catalog()}
    assert set(render()) == expected
    assert {"ItemAdded.v1.schema.json", "ItemAdded.v2.schema.json", "ItemAdded.v3.schema.json"} <= expected


def test_every_aggregate_of_the_catalog_is_published() -> None:
    assert {a.name for a in PUBLISHED_AGGREGATES} == {a.name for a in AGGREGATES}


def _every_event_type_published() -> list[dict[str, Any]]:
    """A history that records every event type, as the bus receives it."""
    store = InMemoryEventStore()
    service = CommandService(store)
    address = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
    line = OrderLine("sku-1", 2, Decimal("12.50"))
    steps: list[tuple[Any, str, Any]] = [
        (ORDER, "o-1", PlaceOrder("o-1", "alice", (line,), address)),
        (ORDER, "o-1", AddItem("o-1", "alice", line)),
        (ORDER, "o-1", CancelOrder("o-1", "alice", False, "changed my mind")),
        (ORDER, "o-2", PlaceOrder("o-2", "bob", (line, OrderLine("sku-2", 1, Decimal("0.99"))), address)),
        (ORDER, "o-2", ShipOrder("o-2", "TRACK-1")),
        (PRODUCT, "sku-1", ReceiveStock("sku-1", 10)),
        (PRODUCT, "sku-1", SetReorderLevel("sku-1", 2)),
    ]
    for number, (aggregate, aggregate_id, command) in enumerate(steps):
        context = CommandContext(
            f"c{number}", f"corr{number}", "alice", f"2026-11-29T10:00:0{number}.000000Z"
        )
        service.execute(aggregate, aggregate_id, command, context)
    return [
        {"source": entry.source, "detail-type": entry.detail_type, "detail": json.loads(entry.detail)}
        for stream in store.stream_ids()
        for commit in store.read_commits(stream)
        for entry in entries_of(commit)
    ]


def test_what_is_published_matches_the_schema_of_its_type_and_version() -> None:
    published = _every_event_type_published()
    types = {event["detail-type"] for event in published}
    assert types == {t for a in PUBLISHED_AGGREGATES for t in a.events.event_types}
    for event in published:
        detail = event["detail"]
        _validator(event["detail-type"], detail["schema_version"]).validate(event)


def test_a_schema_refuses_what_its_version_does_not_hold() -> None:
    event = next(e for e in _every_event_type_published() if e["detail-type"] == "ItemAdded")
    validator = _validator("ItemAdded", 3)
    validator.validate(event)
    wrong: list[dict[str, Any]] = [
        {**event, "detail-type": "OrderPlaced"},
        {**event, "source": "somebody-else"},
        {**event, "detail": {**event["detail"], "schema_version": 2}},
        {**event, "detail": {**event["detail"], "data": {**event["detail"]["data"], "extra": 1}}},
        {**event, "detail": {**event["detail"], "data": {**event["detail"]["data"], "unit_price": 12.5}}},
        {**event, "detail": {k: v for k, v in event["detail"].items() if k != "event_id"}},
    ]
    for candidate in wrong:
        with pytest.raises(ValidationError):
            validator.validate(candidate)
    # The envelope is open: a field added to every event later does not break a validating consumer
    validator.validate({**event, "detail": {**event["detail"], "causation_id": "c"}})


def test_an_archived_old_version_matches_its_own_schema() -> None:
    # An archive keeps events as they were published: an ItemAdded v1 published before v2 existed
    v1 = {"order_id": "o-1", "product_id": "sku-1", "quantity": 2, "unit_price": "12.50"}
    detail = {
        "event_id": "e-1",
        "stream_id": "order-o-1",
        "version": 4,
        "schema_version": 1,
        "recorded_at": "2025-01-02T03:04:05.000000Z",
        "correlation_id": "corr",
        "data": v1,
    }
    archived = {"source": "orders", "detail-type": "ItemAdded", "detail": detail}
    _validator("ItemAdded", 1).validate(archived)
    with pytest.raises(ValidationError):
        _validator("ItemAdded", 3).validate(archived)
