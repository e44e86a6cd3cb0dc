"""docs/event-catalog.md is generated from the code and must be current; a stored version never changes."""

from __future__ import annotations

import re
from pathlib import Path

from orders_core.event_catalog import render

CATALOG = Path(__file__).resolve().parents[2] / "docs" / "event-catalog.md"
_SIGNATURE = re.compile(r"<!-- signature (\S+ v\d+): (.*) -->")


def _signatures(text: str) -> dict[str, str]:
    return dict(_SIGNATURE.findall(text))


def test_no_stored_event_version_changed_its_fields() -> None:
    # Events of a version already in the catalog may be stored: changing that version's fields
    # would make them unreadable or misread. Add a new version with an upcaster instead.
    committed = _signatures(CATALOG.read_text(encoding="utf-8"))
    generated = _signatures(render())
    changed = {key: (committed[key], generated[key]) for key in committed.keys() & generated.keys()}
    assert {k: v for k, v in changed.items() if v[0] != v[1]} == {}, (
        "bump the event's schema_version and add an upcaster from the old version"
    )
    # And no version that may be stored disappeared from the code
    assert committed.keys() <= generated.keys()


def test_the_checked_in_catalog_is_current() -> None:
    assert CATALOG.read_text(encoding="utf-8") == render(), (
        "docs/event-catalog.md is stale: run `make catalog`"
    )


def test_the_catalog_lists_every_version_with_its_fields() -> None:
    text = render()
    signatures = _signatures(text)
    assert set(signatures) >= {
        "ItemAdded v1",
        "ItemAdded v2",
        "ItemAdded v3",
        "OrderPlaced v1",
        "StockReceived v1",
    }
    assert "currency:string" in signatures["ItemAdded v3"]
    assert "line_total" not in signatures["ItemAdded v1"]
    assert "LineData(product_id:string" in signatures["OrderPlaced v1"]
