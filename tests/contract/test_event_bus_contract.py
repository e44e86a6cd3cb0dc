"""One contract, every event bus: the in-memory fake and EventBridge (on moto) must agree.

What the publisher relies on: a request's entries are published in order, a request over
PutEvents' limits (10 entries, 256 KB) is refused before anything is sent, an entry that fails
fails alone and is reported by its position, and a request that fails whole raises."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from orders_core.integration.eventbridge import EventBridgeBus
from orders_core.integration.events import MAX_REQUEST_BYTES, BusEntry
from orders_core.integration.memory import InMemoryEventBus
from orders_core.integration.port import EventBus, EventBusUnavailable, RequestTooLarge

AT = datetime(2026, 11, 29, 10, 0, 1, tzinfo=UTC)


@dataclass
class Subject:
    bus: EventBus
    received: Callable[[], list[dict[str, Any]]]  # what reached the bus: source, detail-type, detail
    break_it: Callable[[], None]  # make the next request fail as a whole


def _memory() -> Subject:
    bus = InMemoryEventBus()
    taken = 0

    def received() -> list[dict[str, Any]]:
        """What was published since the last call (a queue's reader takes messages off it too)."""
        nonlocal taken
        new, taken = bus.published[taken:], len(bus.published)
        return [
            {"source": e.source, "detail-type": e.detail_type, "detail": json.loads(e.detail)} for e in new
        ]

    def break_it() -> None:
        bus.outages = 1

    return Subject(bus, received, break_it)


def _eventbridge() -> Subject:
    events: Any = boto3.client("events", region_name="us-east-1")
    sqs: Any = boto3.client("sqs", region_name="us-east-1")
    name = f"bus-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    queue = sqs.create_queue(QueueName=f"q-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=name, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
    events.put_targets(Rule="all", EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
    bus = EventBridgeBus(events, name)

    def received() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                body = json.loads(message["Body"])
                found.append({k: body[k] for k in ("source", "detail-type", "detail")})
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    def break_it() -> None:
        bus.bus_name = "no-such-bus"  # the request fails whole: the bus does not exist

    return Subject(bus, received, break_it)


@pytest.fixture(params=["memory", "eventbridge"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "memory":
        yield _memory()
    else:
        request.getfixturevalue("moto_session")
        yield _eventbridge()


def entry(n: int, *, detail_type: str = "OrderPlaced", padding: int = 0) -> BusEntry:
    detail = {"event_id": f"e-{n}", "stream_id": "order-1", "version": n, "data": {"note": "x" * padding}}
    return BusEntry("orders", detail_type, json.dumps(detail), AT)


def test_a_request_is_published_in_order(subject: Subject) -> None:
    entries = [entry(n, detail_type=t) for n, t in enumerate(["OrderPlaced", "InventoryReserved", "Ünïcode"])]
    assert subject.bus.publish(entries) == []
    assert subject.received() == [
        {"source": e.source, "detail-type": e.detail_type, "detail": json.loads(e.detail)} for e in entries
    ]


def test_ten_entries_are_one_request_and_eleven_are_refused_unsent(subject: Subject) -> None:
    assert subject.bus.publish([entry(n) for n in range(10)]) == []
    assert len(subject.received()) == 10
    with pytest.raises(RequestTooLarge, match="at most 10"):
        subject.bus.publish([entry(n) for n in range(11)])
    assert subject.received() == []


def test_a_request_over_256_kb_is_refused_unsent(subject: Subject) -> None:
    # Two entries of half the limit each are just over it (their Source, DetailType and Time count)
    half = [entry(n, padding=MAX_REQUEST_BYTES // 2) for n in range(2)]
    assert sum(e.size for e in half) > MAX_REQUEST_BYTES
    with pytest.raises(RequestTooLarge, match="at most 262144"):
        subject.bus.publish(half)
    assert subject.received() == []
    # One of them alone goes out
    assert subject.bus.publish(half[:1]) == []
    assert len(subject.received()) == 1


def test_an_empty_request_is_refused(subject: Subject) -> None:
    with pytest.raises(RequestTooLarge):
        subject.bus.publish([])


def test_an_entry_that_fails_fails_alone_and_is_reported_by_position(subject: Subject) -> None:
    malformed = BusEntry("orders", "OrderPlaced", "not json", AT)
    failures = subject.bus.publish([entry(1), malformed, entry(3)])
    assert [(f.position, f.error_code) for f in failures] == [(1, "MalformedDetail")]
    assert [r["detail"]["event_id"] for r in subject.received()] == ["e-1", "e-3"]


def test_a_request_that_fails_whole_raises_and_publishes_nothing(subject: Subject) -> None:
    subject.break_it()
    with pytest.raises(EventBusUnavailable):
        subject.bus.publish([entry(1)])
    assert subject.received() == []
