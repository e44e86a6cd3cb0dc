"""`orders events [--follow] [--json]`: what the local run published, read off the followers' queue
that the running `orders serve` names in its state file (here: moto in-process, no serve)."""

from __future__ import annotations

import argparse
import io
import json
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from orders_core.application import CommandContext, CommandService
from orders_core.domain.orders import ORDER, OrderLine, PlaceOrder, ShippingAddress
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import EVENTS
from orders_local import events_cli
from orders_local.integration_events import LocalBus, LocalIntegrationEvents, event_line, follow


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orders")
    commands = parser.add_subparsers(dest="command", required=True)
    events_cli.add_commands(commands)
    return parser.parse_args(argv)


@pytest.fixture
def local(moto_session: None, tmp_path: Path) -> Iterator[LocalIntegrationEvents]:
    dynamodb: Any = boto3.client("dynamodb", region_name="us-east-1")
    table = f"events-{uuid.uuid4().hex[:6]}"
    dynamodb.create_table(**EVENTS.create_table_request(table))
    running = LocalIntegrationEvents(
        endpoint_url=None,
        events_table=table,
        table_prefix=f"cli-{uuid.uuid4().hex[:6]}",
        state_file=tmp_path / "integration-events.json",
    )
    running.start(poll_in_background=False)
    # An order placed: OrderPlaced, InventoryReserved, PaymentRequested
    line = OrderLine("sku-1", 1, Decimal("5.00"))
    address = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")
    context = CommandContext("c-1", "corr-1", "alice", "2026-11-29T10:00:00.000000Z")
    CommandService(DynamoDBEventStore(dynamodb, table)).execute(
        ORDER, "o-1", PlaceOrder("o-1", "alice", (line,), address), context
    )
    running.drain()
    yield running
    running.stop()


def test_the_command_line() -> None:
    args = parse("events", "--follow", "--json")
    assert (args.command, args.follow, args.json, args.state_file) == ("events", True, True, None)
    assert parse("events").follow is False


def test_without_a_running_serve_it_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "missing.json"
    assert events_cli.run(parse("events", "--state-file", str(state))) == 1
    assert f"no local event bus ({state} is missing): is `orders serve` running?" in capsys.readouterr().err


def test_it_prints_each_published_event_as_a_line(local: LocalIntegrationEvents, tmp_path: Path) -> None:
    out = io.StringIO()
    assert (
        events_cli.run(parse("events", "--state-file", str(tmp_path / "integration-events.json")), out) == 0
    )
    lines = out.getvalue().splitlines()
    assert [line.split()[1:4] for line in lines] == [
        ["OrderPlaced", "order-o-1", "v1"],
        ["InventoryReserved", "order-o-1", "v2"],
        ["PaymentRequested", "order-o-1", "v3"],
    ]
    assert all(line.startswith("2026-11-29T10:00:00.000000Z ") for line in lines)
    assert all(line.endswith(" correlation=corr-1") for line in lines)
    # What it printed it took: the queue is empty now
    again = io.StringIO()
    assert (
        events_cli.run(parse("events", "--state-file", str(tmp_path / "integration-events.json")), again) == 0
    )
    assert again.getvalue() == ""


def test_json_prints_the_event_as_a_target_receives_it(local: LocalIntegrationEvents) -> None:
    assert local.bus is not None
    out = io.StringIO()
    assert follow(local.bus, out, keep_following=False, as_json=True, wait_seconds=0) == 3
    first = json.loads(out.getvalue().splitlines()[0])
    assert (first["source"], first["detail-type"]) == ("orders", "OrderPlaced")
    assert first["detail"]["stream_id"] == "order-o-1" and first["detail"]["version"] == 1
    assert event_line(first).split()[1:4] == ["OrderPlaced", "order-o-1", "v1"]


def test_follow_keeps_printing_until_stopped(local: LocalIntegrationEvents) -> None:
    bus = local.bus
    assert bus is not None
    out = io.StringIO()
    stop = threading.Event()
    counted: list[int] = []

    def run() -> None:
        counted.append(follow(bus, out, keep_following=True, stop=stop, wait_seconds=0))

    follower = threading.Thread(target=run)
    follower.start()
    try:
        # It keeps going on an empty queue; then stops when asked
        follower.join(timeout=0.5)
        assert follower.is_alive()
    finally:
        stop.set()
        follower.join(timeout=5)
    assert counted == [3]


def test_the_state_file_says_where_the_queue_is_while_it_runs(
    local: LocalIntegrationEvents, tmp_path: Path
) -> None:
    state = tmp_path / "integration-events.json"
    bus = LocalBus.read(state)
    assert bus == local.bus
    assert bus.bus_name == f"{local.names.bus}" and bus.archive_name == local.names.archive
    local.stop()
    assert not state.exists()
