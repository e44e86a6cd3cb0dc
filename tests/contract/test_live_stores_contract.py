"""One contract for the live updates' stores: the in-memory fakes and DynamoDB (on moto) agree on
connections (by subject, by group, expiry, removal) and on alert markers (raised once per time an
alert starts to hold, ordered by revision, and again only for the trigger that raised it)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orders_core.live.dynamodb import DynamoDBAlertMarkers, DynamoDBConnectionStore
from orders_core.live.memory import InMemoryAlertMarkers, InMemoryConnectionStore
from orders_core.live.port import CONNECTION_LIFETIME_SECONDS, AlertMarkers, Connection, ConnectionStore
from orders_core.tables import LIVE_CONNECTIONS

NOW = 1_800_000_000


@pytest.fixture(params=["memory", "dynamodb"])
def table(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    dynamodb: Any = request.getfixturevalue("dynamodb")
    name = f"live-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**LIVE_CONNECTIONS.create_table_request(name))
    return name


@pytest.fixture
def connections(table: str | None, request: pytest.FixtureRequest) -> ConnectionStore:
    if table is None:
        return InMemoryConnectionStore()
    return DynamoDBConnectionStore(request.getfixturevalue("dynamodb"), table)


@pytest.fixture
def alerts(table: str | None, request: pytest.FixtureRequest) -> AlertMarkers:
    if table is None:
        return InMemoryAlertMarkers()
    return DynamoDBAlertMarkers(request.getfixturevalue("dynamodb"), table)


def connection(connection_id: str, subject: str, *groups: str, expires_at: int = NOW + 60) -> Connection:
    return Connection(connection_id, subject, frozenset(groups), expires_at)


def ids(found: Any) -> list[str]:
    return sorted(reachable.connection_id for reachable in found)


def test_connections_are_found_by_subject_and_by_group(connections: ConnectionStore) -> None:
    connections.add(connection("a1", "alice"))
    connections.add(connection("a2", "alice"))
    connections.add(connection("b1", "bob"))
    connections.add(connection("o1", "olga", "operators"))

    assert ids(connections.of_subject("alice", now=NOW)) == ["a1", "a2"]
    assert ids(connections.of_subject("bob", now=NOW)) == ["b1"]
    assert ids(connections.of_subject("nobody", now=NOW)) == []
    assert ids(connections.of_group("operators", now=NOW)) == ["o1"]
    assert ids(connections.of_subject("olga", now=NOW)) == ["o1"]


def test_a_lookup_says_when_each_connection_expires(connections: ConnectionStore) -> None:
    connections.add(connection("a1", "alice", expires_at=NOW + 7))
    (found,) = connections.of_subject("alice", now=NOW)
    assert (found.connection_id, found.expires_at) == ("a1", NOW + 7)
    assert found.opened_at == NOW + 7 - CONNECTION_LIFETIME_SECONDS


def test_expired_connections_are_not_found_although_still_stored(connections: ConnectionStore) -> None:
    # TTL deletes lazily (within days): readers must skip what has expired themselves.
    connections.add(connection("old", "alice", "operators", expires_at=NOW))
    connections.add(connection("new", "alice", "operators", expires_at=NOW + 1))

    assert ids(connections.of_subject("alice", now=NOW)) == ["new"]
    assert ids(connections.of_group("operators", now=NOW)) == ["new"]


def test_a_removed_connection_is_gone_everywhere_and_removing_twice_is_harmless(
    connections: ConnectionStore,
) -> None:
    connections.add(connection("o1", "olga", "operators", "auditors"))
    connections.add(connection("o2", "olga", "operators"))

    connections.remove("o1")
    connections.remove("o1")
    connections.remove("never-connected")

    assert ids(connections.of_subject("olga", now=NOW)) == ["o2"]
    assert ids(connections.of_group("operators", now=NOW)) == ["o2"]
    assert ids(connections.of_group("auditors", now=NOW)) == []


def test_many_connections_of_one_subject_are_all_found(connections: ConnectionStore) -> None:
    for n in range(30):
        connections.add(connection(f"c{n:02d}", "alice"))
    assert ids(connections.of_subject("alice", now=NOW)) == [f"c{n:02d}" for n in range(30)]


def test_an_alert_is_raised_by_the_change_that_made_it_hold_and_by_nothing_else(alerts: AlertMarkers) -> None:
    assert not alerts.record("low#sku-1", holds=False, revision=1, trigger="r1")
    assert alerts.record("low#sku-1", holds=True, revision=2, trigger="r2")
    # Another change seeing the same state, or a later one while it still holds: not news.
    assert not alerts.record("low#sku-1", holds=True, revision=2, trigger="r3")
    assert not alerts.record("low#sku-1", holds=True, revision=3, trigger="r4")
    # The change that raised it, delivered again (its push may have failed): raised again.
    assert alerts.record("low#sku-1", holds=True, revision=3, trigger="r2")


def test_an_alert_that_stopped_holding_is_raised_again_the_next_time(alerts: AlertMarkers) -> None:
    assert alerts.record("low#sku-1", holds=True, revision=1, trigger="r1")
    assert not alerts.record("low#sku-1", holds=False, revision=2, trigger="r2")
    assert not alerts.record("low#sku-1", holds=True, revision=1, trigger="r1")  # late: older revision
    assert alerts.record("low#sku-1", holds=True, revision=3, trigger="r3")


def test_an_older_revision_never_overrides_a_newer_one(alerts: AlertMarkers) -> None:
    # A change that read the product before a restock, recorded after the restock was.
    assert not alerts.record("low#sku-1", holds=False, revision=11, trigger="restock")
    assert not alerts.record("low#sku-1", holds=True, revision=10, trigger="reservation")
    # So the next time it goes low is news.
    assert alerts.record("low#sku-1", holds=True, revision=12, trigger="another")


def test_alerts_are_independent(alerts: AlertMarkers) -> None:
    assert alerts.record("low#sku-1", holds=True, revision=1, trigger="r1")
    assert alerts.record("low#sku-2", holds=True, revision=1, trigger="r1")
