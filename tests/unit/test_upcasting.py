"""Event schema versions: stored ItemAdded v1 and v2 are read as v3, and the catalog has a path for
every version (the CI check: a type/version without an upcaster path fails here)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from orders_core.domain.events import DomainEvent, EventRegistry, PastSchema, UnknownEvent, Upcaster
from orders_core.domain.inventory import PRODUCT_EVENTS
from orders_core.domain.orders import ORDER_EVENTS, ItemAdded

V1 = {"order_id": "o-1", "product_id": "sku-1", "quantity": 3, "unit_price": "2.50"}
V2 = {**V1, "line_total": "7.50"}
V3 = {**V2, "currency": "EUR"}
CURRENT = ItemAdded(
    order_id="o-1",
    product_id="sku-1",
    quantity=3,
    unit_price=Decimal("2.50"),
    line_total=Decimal("7.50"),
    currency="EUR",
)


@pytest.mark.parametrize(("data", "version"), [(V1, 1), (V2, 2), (V3, 3)], ids=["v1", "v2", "v3"])
def test_every_stored_version_of_item_added_loads_as_the_current_event(
    data: dict[str, Any], version: int
) -> None:
    assert ORDER_EVENTS.load("ItemAdded", data, version) == CURRENT


def test_a_v1_event_goes_through_both_hops_of_the_chain() -> None:
    # v1 -> v2 derives the line total, v2 -> v3 adds the currency
    assert dict(ORDER_EVENTS.upcast("ItemAdded", V1, 1)) == V3
    assert dict(ORDER_EVENTS.upcast("ItemAdded", V2, 2)) == V3
    # A v2 event keeps the line total it was stored with, even one a v1 rule would not derive
    discounted = {**V2, "line_total": "6.00"}
    assert ORDER_EVENTS.load("ItemAdded", discounted, 2).line_total == Decimal("6.00")  # type: ignore[attr-defined]


def test_what_cannot_be_read_safely_is_refused_not_misread() -> None:
    with pytest.raises(UnknownEvent, match="newer than this code"):
        ORDER_EVENTS.load("ItemAdded", {**V3, "gift_wrap": True}, 4)
    with pytest.raises(UnknownEvent, match="no schema version 0"):
        ORDER_EVENTS.load("ItemAdded", V1, 0)
    with pytest.raises(UnknownEvent, match="unknown event type"):
        ORDER_EVENTS.load("ItemRemoved", V1, 1)
    # A v1 event that does not have v1's shape (here: it already has v3's fields) is not guessed at
    with pytest.raises(ValidationError):
        ORDER_EVENTS.load("ItemAdded", V3, 1)
    # Nor is current-version data missing a field
    with pytest.raises(ValidationError):
        ORDER_EVENTS.load("ItemAdded", V2, 3)


@pytest.mark.parametrize("registry", [ORDER_EVENTS, PRODUCT_EVENTS], ids=["order", "product"])
def test_every_event_type_and_version_in_the_catalog_reaches_the_current_version(
    registry: EventRegistry,
) -> None:
    assert registry.problems() == []
    for entry in registry.catalog():
        if not entry.current:
            assert entry.example is not None
            event = registry.load(entry.event_type, entry.example, entry.version)
            assert type(event).schema_version == registry.current_version(entry.event_type)


# -- the check itself must be able to fail -------------------------------------------------------


class Renamed(DomainEvent):
    event_type = "Renamed"
    schema_version = 3
    name: str


class RenamedV1(PastSchema):
    title: str


class RenamedV2(PastSchema):
    label: str


def _v1_to_v2(old: RenamedV1) -> dict[str, Any]:
    return {"label": old.title}


def _v2_to_v3(old: RenamedV2) -> dict[str, Any]:
    return {"name": old.label}


def test_a_missing_hop_is_reported() -> None:
    registry = EventRegistry(
        [Renamed], [Upcaster("Renamed", 1, RenamedV1, _v1_to_v2, example={"title": "a"})]
    )

    problems = registry.problems()

    assert "Renamed v2 has no upcaster to v3" in problems
    with pytest.raises(UnknownEvent, match="no upcaster from Renamed v2 to v3"):
        registry.load("Renamed", {"title": "a"}, 1)


def test_upcasters_that_lead_nowhere_or_break_are_reported() -> None:
    def broken(old: RenamedV2) -> dict[str, Any]:
        return {"nom": old.label}  # a typo: v3 has no such field

    registry = EventRegistry(
        [Renamed],
        [
            Upcaster("Renamed", 1, RenamedV1, _v1_to_v2, example={"title": "a"}),
            Upcaster("Renamed", 2, RenamedV2, broken, example={"label": "a"}),
            Upcaster("Renamed", 2, RenamedV2, broken, example={"label": "a"}),
            Upcaster("Renamed", 3, RenamedV2, _v2_to_v3, example={"label": "a"}),
            Upcaster("Gone", 1, RenamedV1, _v1_to_v2, example={"title": "a"}),
        ],
    )

    problems = "\n".join(registry.problems())

    assert "Renamed has two upcasters from v2" in problems
    assert "upcaster from Renamed v3 is outside 1..v2" in problems
    assert "upcaster for unknown event type Gone" in problems
    assert "Renamed v1 example does not reach v3" in problems
    assert "Renamed v2 example does not reach v3" in problems


def test_a_complete_chain_of_two_hops_has_no_problems() -> None:
    registry = EventRegistry(
        [Renamed],
        [
            Upcaster("Renamed", 1, RenamedV1, _v1_to_v2, example={"title": "a"}),
            Upcaster("Renamed", 2, RenamedV2, _v2_to_v3, example={"label": "a"}),
        ],
    )
    assert registry.problems() == []
    assert registry.load("Renamed", {"title": "first"}, 1) == Renamed(name="first")
