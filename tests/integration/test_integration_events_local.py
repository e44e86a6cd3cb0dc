"""Integration events on moto, as the local run publishes them: commands -> events table -> stream ->
the publisher's own poller -> moto's EventBridge -> the followers' queue.

What a consumer reads there is every event of the history, each once (nothing fails here), with the
event_id, type, version and data that `GET /orders/{id}/events` answers for orders and the event log
holds for products; with a bus that refuses entries, every event still arrives, at least once."""

from __future__ import annotations

import contextlib
import io
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_core import composition
from orders_core.application import CommandContext, CommandService, in_current_schema
from orders_core.domain.errors import DomainError
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
from orders_core.envelope import EventEnvelope, envelopes_of, format_timestamp
from orders_core.integration.eventbridge import EventBridgeBus
from orders_core.integration.events import BusEntry
from orders_core.integration.port import EntryFailure, EventBus
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import ALL_TABLES, EVENTS
from orders_local.integration_events import LocalIntegrationEvents, follow
from query_api import handler as queries
from tests.support.apigw import FakeLambdaContext, http_event

ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
CUSTOMER = "alice"
START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@dataclass
class World:
    dynamodb: Any
    tables: dict[str, str]
    local: LocalIntegrationEvents

    @property
    def events(self) -> DynamoDBEventStore:
        return DynamoDBEventStore(self.dynamodb, self.tables[EVENTS.key])


def _create_tables(dynamodb: Any, specs: Sequence[Any]) -> dict[str, str]:
    names = {}
    for spec in specs:
        names[spec.key] = f"{spec.key}-{uuid.uuid4().hex[:6]}"
        dynamodb.create_table(**spec.create_table_request(names[spec.key]))
    return names


@pytest.fixture(scope="module")
def world(moto_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    dynamodb: Any = boto3.client("dynamodb", region_name="us-east-1")
    tables = _create_tables(dynamodb, ALL_TABLES)
    with pytest.MonkeyPatch.context() as patch:
        for spec in ALL_TABLES:
            patch.setenv(spec.env_var, tables[spec.key])
        composition.use(None)  # the command service and the query function read these tables
        local = LocalIntegrationEvents(
            endpoint_url=None,
            events_table=tables[EVENTS.key],
            table_prefix=f"ie-{uuid.uuid4().hex[:6]}",
            state_file=tmp_path_factory.mktemp("state") / "integration-events.json",
        )
        local.start(poll_in_background=False)
        try:
            yield World(dynamodb, tables, local)
        finally:
            local.stop()
            composition.use(None)


def published(local: LocalIntegrationEvents) -> list[dict[str, Any]]:
    """Drain the publisher's poller, then take everything off the followers' queue."""
    local.drain(timeout=30)
    assert local.bus is not None
    out = io.StringIO()
    follow(local.bus, out, keep_following=False, as_json=True, wait_seconds=0)  # moto's queue is exact
    return [json.loads(line) for line in out.getvalue().splitlines()]


# -- a random history -------------------------------------------------------------------------------

prices = st.sampled_from(["0.00", "1.99", "12.50", "99.99"]).map(Decimal)
lines = st.builds(OrderLine, st.sampled_from(["sku-1", "sku-2", "sku-3"]), st.integers(1, 5), prices)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("place"), st.integers(0, 2), st.lists(lines, min_size=1, max_size=3)),
        st.tuples(st.just("add"), st.integers(0, 2), lines),
        st.tuples(st.just("cancel"), st.integers(0, 2)),
        st.tuples(st.just("ship"), st.integers(0, 2)),
        st.tuples(st.just("stock"), st.integers(0, 1), st.integers(1, 50)),
        st.tuples(st.just("level"), st.integers(0, 1), st.integers(0, 20)),
    ),
    max_size=10,
)


@dataclass(frozen=True)
class History:
    orders: list[str]
    products: list[str]


def _command(
    step: tuple[Any, ...], number: int, orders: list[str], products: list[str]
) -> tuple[Any, str, Any]:
    action, index, *args = step
    if action in ("stock", "level"):
        product = products[index]
        change = ReceiveStock(product, args[0]) if action == "stock" else SetReorderLevel(product, args[0])
        return PRODUCT, product, change
    order = orders[index]
    if action == "place":
        return ORDER, order, PlaceOrder(order, CUSTOMER, tuple(args[0]), ADDRESS)
    if action == "add":
        return ORDER, order, AddItem(order, CUSTOMER, args[0])
    if action == "cancel":
        return ORDER, order, CancelOrder(order, CUSTOMER, False, "no")
    return ORDER, order, ShipOrder(order, f"T-{number}")


def run_history(service: CommandService, plan: list[tuple[Any, ...]]) -> History:
    """Execute the plan on three fresh orders and two fresh products; refused commands write nothing."""
    tag = uuid.uuid4().hex[:8]
    orders = [str(uuid.uuid4()) for _ in range(3)]
    products = [f"p-{tag}-{n}" for n in range(2)]
    clock = START
    first: tuple[Any, ...] = ("place", 0, [OrderLine("sku-1", 1, Decimal("5.00"))])
    for number, step in enumerate([first, *plan]):
        clock += timedelta(seconds=7)
        context = CommandContext(f"{tag}-{number}", f"corr-{tag}-{number}", CUSTOMER, format_timestamp(clock))
        with contextlib.suppress(DomainError):
            service.execute(*_command(step, number, orders, products), context)
    return History(orders, products)


def order_events(order_id: str) -> list[dict[str, Any]]:
    """What `GET /orders/{id}/events` answers (empty for an order that was never placed)."""
    response = queries.lambda_handler(
        http_event("GET", f"/orders/{order_id}/events", user=CUSTOMER), FakeLambdaContext()
    )
    if response["statusCode"] == 404:
        return []
    assert response["statusCode"] == 200, response
    events: list[dict[str, Any]] = json.loads(response["body"])["events"]
    return events


def product_events(world: World, product_id: str) -> list[EventEnvelope]:
    """A product's events as the log holds them, each in the current schema of its type."""
    commits = world.events.read_commits(PRODUCT.stream_id(product_id))
    return [in_current_schema(PRODUCT.events, e) for e in envelopes_of(commits)]


def assert_published_as(event: dict[str, Any], expected: dict[str, Any]) -> None:
    """A published event (as a rule's target receives it) against an event as the query side shows it."""
    assert event["source"] == "orders"
    assert event["detail-type"] == expected["type"]
    detail = event["detail"]
    assert detail == {
        "event_id": expected["event_id"],
        "stream_id": expected["stream_id"],
        "version": expected["version"],
        "schema_version": expected["schema_version"],
        "recorded_at": expected["recorded_at"],
        "correlation_id": expected["correlation_id"],
        "data": expected["data"],
    }


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=steps)
def test_a_consumer_finds_every_event_of_a_random_history_as_the_query_side_shows_it(
    world: World, plan: list[tuple[Any, ...]]
) -> None:
    archive_before = _archived(world)
    # Given a random history of commands on orders and products
    history = run_history(composition.root().command_service, plan)
    # When the publisher has read the stream, and a consumer reads what its rule delivered
    events = published(world.local)
    by_id = {event["detail"]["event_id"]: event for event in events}
    # Then every order event is there, as GET /orders/{id}/events shows it
    expected = [e for order_id in history.orders for e in order_events(order_id)]
    expected += [e.to_json() for product_id in history.products for e in product_events(world, product_id)]
    assert expected, "the history placed an order at least"
    for event in expected:
        assert event["event_id"] in by_id, f"{event['type']} {event['stream_id']} v{event['version']} missing"
        assert_published_as(by_id[event["event_id"]], event)
    # And nothing else, each once (nothing failed), and the archive kept each of them
    assert sorted(by_id) == sorted(e["event_id"] for e in expected)
    assert len(events) == len(expected)
    assert _archived(world) == archive_before + len(expected)


def _archived(world: World) -> int:
    events: Any = boto3.client("events", region_name="us-east-1")
    count: int = events.describe_archive(ArchiveName=world.local.names.archive)["EventCount"]
    return count


# -- a bus that refuses entries ---------------------------------------------------------------------


class RefusingBus:
    """EventBridge that refuses some entries without publishing them, as PutEvents may (an entry with
    an ErrorCode, FailedEntryCount > 0)."""

    def __init__(self, inner: EventBus, rng: random.Random) -> None:
        self._inner = inner
        self._rng = rng
        self.refused = 0

    def publish(self, entries: Sequence[BusEntry]) -> list[EntryFailure]:
        refused = {n for n in range(len(entries)) if self._rng.random() < 0.3}
        self.refused += len(refused)
        taken = [n for n in range(len(entries)) if n not in refused]
        failures = [EntryFailure(n, "ThrottlingException") for n in sorted(refused)]
        if taken:
            inner = self._inner.publish([entries[n] for n in taken])
            failures += [EntryFailure(taken[f.position], f.error_code, f.message) for f in inner]
        return sorted(failures, key=lambda f: f.position)


def test_with_a_bus_that_refuses_entries_every_event_still_arrives(
    moto_session: None, tmp_path: Path
) -> None:
    # Given an events table of its own and a publisher whose bus refuses 30% of the entries
    dynamodb: Any = boto3.client("dynamodb", region_name="us-east-1")
    table = _create_tables(dynamodb, [EVENTS])[EVENTS.key]
    prefix = f"refusing-{uuid.uuid4().hex[:6]}"
    events_client: Any = boto3.client("events", region_name="us-east-1")
    bus = RefusingBus(EventBridgeBus(events_client, f"{prefix}-local"), random.Random(5))
    local = LocalIntegrationEvents(
        endpoint_url=None,
        events_table=table,
        table_prefix=prefix,
        state_file=tmp_path / "state.json",
        event_bus=bus,
    )
    local.start(poll_in_background=False)
    try:
        store = DynamoDBEventStore(dynamodb, table)
        rng = random.Random(11)
        plan: list[tuple[Any, ...]] = []
        for n in range(25):
            line = OrderLine(rng.choice(["sku-1", "sku-2"]), rng.randint(1, 3), Decimal("2.50"))
            plan.append(
                rng.choice(
                    [("place", n % 3, [line]), ("add", n % 3, line), ("stock", n % 2, rng.randint(1, 9))]
                )
            )
        history = run_history(CommandService(store), plan)
        # When the publisher has read the stream (retrying what the bus refused)
        events = published(local)
    finally:
        local.stop()
    # Then every event of the log arrived, at least once, with the same detail every time
    log = [
        in_current_schema(aggregate.events, e).to_json()
        for aggregate, ids in ((ORDER, history.orders), (PRODUCT, history.products))
        for aggregate_id in ids
        for e in envelopes_of(store.read_commits(aggregate.stream_id(aggregate_id)))
    ]
    assert bus.refused > 5
    expected = {e["event_id"]: e for e in log}
    assert {event["detail"]["event_id"] for event in events} == set(expected)
    for event in events:
        assert_published_as(event, expected[event["detail"]["event_id"]])
    # And the state file is gone with the run
    assert not (tmp_path / "state.json").exists()
