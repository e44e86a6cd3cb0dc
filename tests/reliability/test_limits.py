"""Limits: what is too big is refused with 413 and writes nothing; what is long still loads.

Runs on two API processes sharing one moto, without stream pollers (api_only_server.py): the
long streams are written straight into the events table, and the projections would otherwise be
folding them while the loads are timed.

The API cannot build a commit over DynamoDB's item limit: an order has at most 200 lines and every
text field is bounded, so the largest commit it accepts is measured here (far below 400 KB). The
commit limit is reached the honest way a real table could: an order whose history holds thousands
of lines (appended directly, as data written before the 200-line rule, or by a migration, would
be), whose cancellation has to release every one of them in one InventoryReleased event.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from orders_core.domain.events import DomainEvent
from orders_core.domain.inventory import StockReceived
from orders_core.domain.orders import (
    MAX_LINES_PER_ORDER,
    MAX_PRODUCT_ID_LENGTH,
    AddressData,
    InventoryReleased,
    InventoryReserved,
    ItemAdded,
    LineData,
    OrderCancelled,
    OrderPlaced,
    PaymentRequested,
    ProductQuantity,
)
from orders_core.envelope import Commit, CommitMetadata, format_timestamp
from orders_core.errors import CommitTooLarge
from orders_core.store.codec import MAX_COMMIT_BYTES, commit_to_item, item_size
from orders_core.tables import SNAPSHOTS
from tests.reliability import figures
from tests.reliability.api_client import call
from tests.reliability.cluster import Cluster
from tests.reliability.log import EVENTS_TABLE, count_commits
from tests.reliability.scale import LONG_STREAM_EVENTS, SCALE

SECTION = "6. Limits"
GATEWAY_LIMIT = 1024 * 1024
ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}


def _product(n: int, prefix: str = "p") -> str:
    return f"{prefix}-{n:08d}-".ljust(MAX_PRODUCT_ID_LENGTH, "x")


def _meta(n: int, start: datetime) -> CommitMetadata:
    return CommitMetadata(
        command_id=f"seeded-{n}",
        correlation_id=f"seeded-{n}",
        causation_id=f"seeded-{n}",
        actor="seeder",
        recorded_at=format_timestamp(start + timedelta(milliseconds=n)),
    )


def _commits(
    stream_id: str, events_per_commit: Sequence[Sequence[DomainEvent]], start: datetime
) -> list[Commit]:
    commits = []
    version = 1
    for n, events in enumerate(events_per_commit):
        commits.append(Commit(stream_id, version, tuple(e.to_new_event() for e in events), _meta(n, start)))
        version += len(events)
    return commits


def _write(client: Any, commits: Sequence[Commit]) -> None:
    """Straight into the events table, 25 items per BatchWriteItem."""
    items = [commit_to_item(commit) for commit in commits]
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {
            EVENTS_TABLE: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        }
        while pending:
            pending = dict(client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})


def _stream_length(client: Any, stream_id: str) -> int:
    reply = client.query(
        TableName=EVENTS_TABLE,
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )
    item = reply["Items"][0]
    return int(item["version"]["N"]) + int(item["event_count"]["N"]) - 1


def test_a_body_over_the_gateway_limit_gets_413_and_writes_nothing(limits_cluster: Cluster) -> None:
    client = limits_cluster.dynamodb()
    alice = limits_cluster.token("limits-alice")
    before = count_commits(client)
    # A body of exactly the limit passes the gateway (and is refused by validation); one byte more does not
    prefix, suffix = b'{"items": [], "shipping_address": {}, "padding": "', b'"}'
    at_limit = prefix + b"a" * (GATEWAY_LIMIT - len(prefix) - len(suffix)) + suffix
    over_limit = prefix + b"a" * (GATEWAY_LIMIT + 1 - len(prefix) - len(suffix)) + suffix
    assert (len(at_limit), len(over_limit)) == (GATEWAY_LIMIT, GATEWAY_LIMIT + 1)

    at = call(limits_cluster.urls[0], "POST", "/orders", raw=at_limit, token=alice)
    over = call(limits_cluster.urls[0], "POST", "/orders", raw=over_limit, token=alice)

    assert at.status == 422
    assert over.status == 413 and over.json == {"message": "Request Entity Too Large"}
    assert count_commits(client) == before
    figures.record(
        SECTION, "request body of 1 MiB / 1 MiB + 1 byte", f"{at.status} (validation) / {over.status}"
    )


def test_the_largest_command_the_api_accepts_fits_one_item_with_room_to_spare(
    limits_cluster: Cluster,
) -> None:
    client = limits_cluster.dynamodb()
    alice = limits_cluster.token("limits-" + "a" * 60)
    wide = "\U0001d518" * 200  # 200 characters (the domain's limit) of 4 bytes each in UTF-8
    body = {
        "items": [
            {"product_id": _product(n, "big"), "quantity": 10_000, "unit_price": "999999.99"}
            for n in range(MAX_LINES_PER_ORDER)
        ],
        "shipping_address": {"line1": wide, "city": wide, "postal_code": wide, "country": wide},
    }
    headers = {"Idempotency-Key": "k" * 255, "X-Correlation-Id": "c" * 128}
    placed = call(limits_cluster.urls[0], "POST", "/orders", body=body, token=alice, headers=headers)
    assert placed.status == 201, placed.raw[:300]
    stream_id = f"order-{placed.json['order_id']}"
    item = client.get_item(
        TableName=EVENTS_TABLE, Key={"stream_id": {"S": stream_id}, "version": {"N": "1"}}
    )["Item"]
    size = item_size(item)

    cancelled = call(
        limits_cluster.urls[0],
        "POST",
        f"/orders/{placed.json['order_id']}/cancel",
        body={"reason": "r" * 500},
        token=alice,
    )
    assert cancelled.status == 200
    cancel_item = client.get_item(
        TableName=EVENTS_TABLE, Key={"stream_id": {"S": stream_id}, "version": {"N": "4"}}
    )["Item"]

    figures.record(
        SECTION,
        "largest commit the API accepts (200 lines, longest fields)",
        f"{size:,} bytes ({size / MAX_COMMIT_BYTES:.0%} of the 400,000-byte commit limit)",
    )
    figures.record(SECTION, "its cancellation (releases 200 lines)", f"{item_size(cancel_item):,} bytes")
    assert size < MAX_COMMIT_BYTES / 2


def _lines_needed() -> int:
    """Distinct lines whose release does not fit one commit."""

    def size(lines: int) -> int:
        events = (
            OrderCancelled(order_id=str(uuid.uuid4()), reason="r" * 500),
            InventoryReleased(
                order_id=str(uuid.uuid4()),
                items=tuple(ProductQuantity(product_id=_product(n), quantity=10_000) for n in range(lines)),
            ),
        )
        commit = Commit("order-x", 10, tuple(e.to_new_event() for e in events), _meta(0, datetime.now(UTC)))
        try:
            return item_size(commit_to_item(commit))
        except CommitTooLarge as too_large:
            return too_large.size

    base, per_line = size(1), size(2) - size(1)
    return math.ceil((MAX_COMMIT_BYTES - base) / per_line) + 100


def test_a_command_whose_commit_exceeds_the_item_limit_gets_413_and_writes_nothing(
    limits_cluster: Cluster,
) -> None:
    client = limits_cluster.dynamodb()
    customer = "limits-bulk"
    order_id = str(uuid.uuid4())
    stream_id = f"order-{order_id}"
    lines = _lines_needed()
    first = LineData(product_id=_product(0), quantity=10_000, unit_price=Decimal("1.00"))
    history: list[list[DomainEvent]] = [
        [
            OrderPlaced(
                order_id=order_id,
                customer_id=customer,
                items=(first,),
                shipping_address=AddressData(**ADDRESS),
                total_amount=Decimal("10000.00"),
            ),
            InventoryReserved(
                order_id=order_id, items=(ProductQuantity(product_id=_product(0), quantity=10_000),)
            ),
            PaymentRequested(order_id=order_id, customer_id=customer, amount=Decimal("10000.00")),
        ]
    ]
    for n in range(1, lines):
        product = _product(n)
        history.append(
            [
                ItemAdded(
                    order_id=order_id,
                    product_id=product,
                    quantity=10_000,
                    unit_price=Decimal("1.00"),
                    line_total=Decimal("10000.00"),
                    currency="EUR",
                ),
                InventoryReserved(
                    order_id=order_id, items=(ProductQuantity(product_id=product, quantity=10_000),)
                ),
            ]
        )
    started = time.monotonic()
    _write(client, _commits(stream_id, history, datetime(2025, 1, 1, tzinfo=UTC)))
    written_in = time.monotonic() - started
    events = _stream_length(client, stream_id)
    before = count_commits(client)

    # The owner cancels it, an operator ships it: either would release or ship every line in one commit
    owner = limits_cluster.token(customer)
    operator = limits_cluster.token("limits-operator", operator=True)
    cancel = call(
        limits_cluster.urls[0], "POST", f"/orders/{order_id}/cancel", body={"reason": "r" * 500}, token=owner
    )
    ship = call(
        limits_cluster.urls[1],
        "POST",
        f"/orders/{order_id}/ship",
        body={"tracking_number": "T-1"},
        token=operator,
    )

    for reply in (cancel, ship):
        assert reply.status == 413, reply.raw[:300]
        assert reply.content_type == "application/problem+json" and "limit" in reply.json["detail"]
    assert count_commits(client) == before and _stream_length(client, stream_id) == events

    # The order is still whole and still loads: its full history, and a command that fits
    history_reply = call(limits_cluster.urls[0], "GET", f"/orders/{order_id}/events", token=owner)
    assert history_reply.status == 200 and history_reply.json["version"] == events
    assert history_reply.json["events"][-1]["type"] == "InventoryReserved"
    figures.record(
        SECTION,
        "order with lines appended directly (its stream)",
        f"{lines:,} lines ({events:,} events, written in {written_in:.1f} s)",
    )
    figures.record(
        SECTION,
        "cancel / ship of it (commit over 400,000 bytes)",
        f"{cancel.status} / {ship.status}, nothing written",
    )
    figures.record(
        SECTION,
        "its refused commands took (cold load of the stream included)",
        f"{cancel.seconds:.1f} s / {ship.seconds:.1f} s",
    )
    figures.record(
        SECTION,
        f"GET its history ({events:,} events, {len(history_reply.raw) / 1e6:.1f} MB)",
        history_reply.seconds,
        "s",
    )


def test_a_stream_of_ten_thousand_events_still_loads_and_accepts_commands(limits_cluster: Cluster) -> None:
    client = limits_cluster.dynamodb()
    operator = limits_cluster.token("limits-operator", operator=True)
    product = f"long-{uuid.uuid4().hex[:8]}"
    stream_id = f"product-{product}"
    # 9,999 events, so that the first command through the API is event 10,000
    seeded = LONG_STREAM_EVENTS - 1
    commits = min(SCALE.long_stream_commits, seeded)
    per_commit = [seeded // commits + (1 if n < seeded % commits else 0) for n in range(commits)]
    history = [[StockReceived(product_id=product, quantity=1)] * size for size in per_commit]
    started = time.monotonic()
    _write(client, _commits(stream_id, history, datetime(2025, 1, 1, tzinfo=UTC)))
    written_in = time.monotonic() - started
    assert _stream_length(client, stream_id) == seeded

    def stock(server: int, key: str) -> Any:
        reply = call(
            limits_cluster.urls[server],
            "POST",
            f"/inventory/{product}/stock",
            body={"quantity": 1},
            token=operator,
            headers={"Idempotency-Key": key},
        )
        assert reply.status == 200, reply.raw[:300]
        return reply

    cold = stock(0, "long-1")  # folds 9,999 events, then crosses 10,000: a snapshot is written
    warm = stock(0, "long-2")  # the same process: its warm cache, one write
    snapshot = client.query(
        TableName=SNAPSHOTS.local_name("orders"),
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ConsistentRead=True,
    )["Items"]
    from_snapshot = stock(1, "long-3")  # another process, cold: the snapshot and the commits after it
    retry = stock(1, "long-1")  # a retry of the first command, answered from the snapshot's command ids

    assert [cold.json["version"], warm.json["version"], from_snapshot.json["version"]] == [
        10_000,
        10_001,
        10_002,
    ]
    assert [int(item["version"]["N"]) for item in snapshot] == [10_000]
    assert retry.json == cold.json and retry.header("Idempotent-Replayed") == "true"
    assert _stream_length(client, stream_id) == 10_002

    figures.record(
        SECTION,
        "long stream written directly",
        f"{seeded:,} events in {commits:,} commits ({written_in:.1f} s)",
    )
    figures.record(
        SECTION,
        "command on it, cold process, no snapshot yet (folds 9,999 events)",
        cold.seconds * 1000,
        "ms",
    )
    figures.record(SECTION, "command on it, same process, warm cache", warm.seconds * 1000, "ms")
    figures.record(
        SECTION,
        "command on it, other process, from the snapshot at 10,000",
        from_snapshot.seconds * 1000,
        "ms",
    )
    figures.record(
        SECTION, "retry of the first command after the snapshot", "replayed, same answer, nothing written"
    )
