"""The live notifier: from read-model row changes to pushes, with in-memory connections, alerts
and pusher. Given / When / Then: rows as the tables' streams report them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from orders_core.live.memory import InMemoryAlertMarkers, InMemoryConnectionStore, InMemoryPusher
from orders_core.live.notifier import (
    ALERTS_RAISED,
    CHANGES_NOT_PUSHED,
    CONNECT_GRACE_SECONDS,
    CONNECTIONS_GONE,
    MESSAGES_DELIVERED,
    SERVICE,
    UPDATES_ANNOUNCED,
    LiveNotifier,
    PushTally,
    RowChange,
    report,
)
from orders_core.live.port import CONNECTION_LIFETIME_SECONDS, Connection
from tests.support.logs import emf_blobs

NOW = 1_800_000_000
OPERATORS = "operators"


class World:
    def __init__(self) -> None:
        self.connections = InMemoryConnectionStore()
        self.alerts = InMemoryAlertMarkers()
        self.pusher = InMemoryPusher()
        self.generations = {"customer_orders": 1, "inventory": 1}
        self.stock: dict[str, dict[str, Any]] = {}
        self.summary_reads = 0
        self.notifier = LiveNotifier(
            connections=self.connections,
            alerts=self.alerts,
            pusher=self.pusher,
            active_generation=self.generations.__getitem__,
            product_summary=self._summary,
            operators_group=OPERATORS,
            clock=lambda: NOW,
        )

    def _summary(self, product_id: str) -> Mapping[str, Any] | None:
        self.summary_reads += 1
        return self.stock.get(product_id)

    def connect(self, connection_id: str, subject: str, *groups: str, opened_at: int = NOW - 600) -> None:
        expires_at = opened_at + CONNECTION_LIFETIME_SECONDS
        self.connections.add(Connection(connection_id, subject, frozenset(groups), expires_at))
        self.pusher.open.add(connection_id)

    def received(self, connection_id: str) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.pusher.delivered.get(connection_id, [])]


def view_row(
    order_id: str, customer: str, version: int, status: str = "placed", corr: str = "c"
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer,
        "status": status,
        "items": [],
        "total_amount": "0.00",
        "tracking_number": None,
        "placed_at": "2026-11-29T10:00:00.000000Z",
        "version": version,
        "correlation_id": corr,
    }
    return {"pk": f"1#{order_id}", "sk": "view", "doc": json.dumps(doc), "version": Decimal(version)}


def order_change(
    old: dict[str, Any] | None, new: dict[str, Any] | None, trigger: str = "e1", generation: int = 1
) -> RowChange:
    row = new or old
    assert row is not None
    pk = row["pk"].replace("1#", f"{generation}#", 1)
    return RowChange("customer_orders", trigger, (pk, "view"), old, new)


def shard_change(
    product: str, old_revision: int | None, new_revision: int, trigger: str, shard: int = 0
) -> RowChange:
    key = (f"1#{product}#{shard}", "summary")
    old = None if old_revision is None else {"revision": Decimal(old_revision)}
    return RowChange("inventory", trigger, key, old, {"revision": Decimal(new_revision)})


def summary(product: str, available: int, level: int, revision: int) -> dict[str, Any]:
    return {
        "product_id": product,
        "available_quantity": available,
        "reorder_level": level,
        "needs_reorder": available <= level,
        "revision": revision,
    }


@pytest.fixture
def world() -> World:
    return World()


def test_the_owner_is_told_each_new_version_with_its_correlation_id(world: World) -> None:
    world.connect("a1", "alice")
    world.connect("a2", "alice")
    world.connect("b1", "bob")

    failures = world.notifier.notify(
        [
            order_change(None, view_row("o-1", "alice", 3, corr="place")),
            order_change(view_row("o-1", "alice", 3), view_row("o-1", "alice", 4, "shipped", "ship"), "e2"),
        ]
    )

    assert failures == {}
    expected = [
        {
            "type": "order.updated",
            "order_id": "o-1",
            "version": 3,
            "status": "placed",
            "correlation_id": "place",
        },
        {
            "type": "order.updated",
            "order_id": "o-1",
            "version": 4,
            "status": "shipped",
            "correlation_id": "ship",
        },
    ]
    assert world.received("a1") == world.received("a2") == expected
    assert world.received("b1") == []


def test_a_rewrite_of_the_same_version_tells_nobody(world: World) -> None:
    world.connect("a1", "alice")
    world.notifier.notify([order_change(view_row("o-1", "alice", 3), view_row("o-1", "alice", 3))])
    assert world.received("a1") == []


def test_other_generations_and_deletions_tell_nobody(world: World) -> None:
    world.connect("a1", "alice")
    world.generations["customer_orders"] = 2
    world.notifier.notify(
        [
            order_change(None, view_row("o-1", "alice", 3), generation=1),  # the retired one
            order_change(view_row("o-2", "alice", 1), None, generation=2),  # a deletion
        ]
    )
    assert world.received("a1") == []
    world.notifier.notify([order_change(None, view_row("o-1", "alice", 3), generation=2)])
    assert [m["version"] for m in world.received("a1")] == [3]


def test_a_gone_connection_is_forgotten(world: World) -> None:
    world.connect("a1", "alice")
    world.connect("a2", "alice")
    world.pusher.open.discard("a1")  # closed without a $disconnect

    world.notifier.notify([order_change(None, view_row("o-1", "alice", 1))])

    assert [r.connection_id for r in world.connections.of_subject("alice", now=NOW)] == ["a2"]
    assert len(world.received("a2")) == 1


def test_a_connection_still_opening_is_kept_although_it_answers_gone(world: World) -> None:
    # Its $connect stored it; API Gateway has not completed the handshake yet.
    world.connect("a1", "alice", opened_at=NOW - CONNECT_GRACE_SECONDS + 1)
    world.pusher.open.discard("a1")

    world.notifier.notify([order_change(None, view_row("o-1", "alice", 1))])

    assert [r.connection_id for r in world.connections.of_subject("alice", now=NOW)] == ["a1"]


def test_a_failed_push_fails_its_change_and_every_later_one(world: World) -> None:
    world.connect("a1", "alice")
    world.pusher.failures = 1
    changes = [
        order_change(None, view_row("o-1", "alice", 1), "e1"),
        order_change(None, view_row("o-2", "alice", 1), "e2"),
    ]

    failures = world.notifier.notify(changes)

    assert sorted(failures) == [0, 1]
    assert world.received("a1") == []
    # Delivered again, they go through (at least once: clients de-duplicate by order and version).
    assert world.notifier.notify(changes) == {}
    assert [m["order_id"] for m in world.received("a1")] == ["o-1", "o-2"]


def test_operators_are_told_once_when_a_product_runs_low(world: World) -> None:
    world.connect("o1", "olga", OPERATORS)
    world.connect("a1", "alice")
    world.stock["sku-1"] = summary("sku-1", available=3, level=3, revision=7)

    # Two shards of the product changed in the batch: one summary read, one alert.
    world.notifier.notify(
        [shard_change("sku-1", 5, 6, "e1", shard=0), shard_change("sku-1", 1, 2, "e2", shard=3)]
    )

    assert world.received("o1") == [
        {"type": "inventory.low", "product_id": "sku-1", "available_quantity": 3, "reorder_level": 3}
    ]
    assert world.received("a1") == []
    assert world.summary_reads == 1

    # Still low at the next change: not news.
    world.stock["sku-1"] = summary("sku-1", available=2, level=3, revision=8)
    world.notifier.notify([shard_change("sku-1", 6, 7, "e3")])
    assert len(world.received("o1")) == 1


def test_a_product_that_recovered_and_runs_low_again_is_news_again(world: World) -> None:
    world.connect("o1", "olga", OPERATORS)
    for revision, available, trigger in ((1, 2, "e1"), (2, 50, "e2"), (3, 1, "e3")):
        world.stock["sku-1"] = summary("sku-1", available=available, level=5, revision=revision)
        world.notifier.notify([shard_change("sku-1", revision - 1, revision, trigger)])
    assert [m["available_quantity"] for m in world.received("o1")] == [2, 1]


def test_the_change_that_raised_an_alert_raises_it_again_when_delivered_again(world: World) -> None:
    # Its push failed after the marker was set: the redelivery must not find "already raised".
    world.connect("o1", "olga", OPERATORS)
    world.stock["sku-1"] = summary("sku-1", available=0, level=5, revision=4)
    world.pusher.failures = 1
    change = shard_change("sku-1", 3, 4, "e1")
    assert set(world.notifier.notify([change])) == {0}
    assert world.received("o1") == []

    assert world.notifier.notify([change]) == {}
    assert [m["product_id"] for m in world.received("o1")] == ["sku-1"]


def test_source_rows_and_unchanged_revisions_read_nothing(world: World) -> None:
    world.connect("o1", "olga", OPERATORS)
    world.stock["sku-1"] = summary("sku-1", available=0, level=5, revision=4)
    source = RowChange("inventory", "e1", ("1#source#order-1", "state"), None, {"version": Decimal(1)})
    world.notifier.notify([source, shard_change("sku-1", 4, 4, "e2")])
    assert world.summary_reads == 0
    assert world.received("o1") == []


def test_a_batch_tallies_what_it_told_and_to_how_many(world: World) -> None:
    world.connect("a1", "alice")
    world.connect("a2", "alice")
    world.connect("a-old", "alice")
    world.pusher.open.discard("a-old")  # alice closed this one: API Gateway answers "gone"
    world.connect("o1", "olga", OPERATORS)
    world.stock["sku-1"] = summary("sku-1", available=1, level=5, revision=2)
    tally = PushTally()

    failures = world.notifier.notify(
        [
            order_change(None, view_row("o-1", "alice", 1)),
            order_change(view_row("o-1", "alice", 1), view_row("o-1", "alice", 1)),  # delivered again
            order_change(view_row("o-1", "alice", 1), view_row("o-1", "alice", 3)),
            shard_change("sku-1", 1, 2, "e9"),
        ],
        tally,
    )

    assert failures == {}
    # Two order versions and one alert told; alice's two open connections twice, olga's once; the
    # closed one answered "gone" once and was forgotten for the rest of the batch.
    assert tally == PushTally(updates_announced=2, alerts_raised=1, messages_delivered=5, connections_gone=1)


def test_the_tally_becomes_one_metrics_line_and_nothing_when_nothing_happened(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    report(PushTally(updates_announced=2, messages_delivered=5, connections_gone=1), changes_not_pushed=3)
    (blob,) = emf_blobs(capsys.readouterr().out)
    assert blob["service"] == SERVICE
    assert {name: blob[name] for name in (UPDATES_ANNOUNCED, MESSAGES_DELIVERED, CONNECTIONS_GONE)} == {
        UPDATES_ANNOUNCED: [2.0],
        MESSAGES_DELIVERED: [5.0],
        CONNECTIONS_GONE: [1.0],
    }
    assert blob[CHANGES_NOT_PUSHED] == [3.0] and ALERTS_RAISED not in blob  # only what it counted

    report(PushTally(), changes_not_pushed=0)
    assert emf_blobs(capsys.readouterr().out) == []
