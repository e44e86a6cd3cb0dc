"""Retries: one command sent many times under one Idempotency-Key, one after another and all at once,
over several API processes (each with its own warm cache), appends once and answers the same."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability import figures
from tests.reliability.api_client import Reply, call
from tests.reliability.cluster import Cluster
from tests.reliability.log import EVENTS_TABLE, scan_items
from tests.reliability.scale import SCALE
from tests.reliability.workload import order_body

SECTION = "2. Retries and idempotency"

Send = Callable[[str], Reply]  # base url -> reply


def _commits_of(cluster: Cluster, stream_id: str) -> list[dict[str, Any]]:
    reply = cluster.dynamodb().query(
        TableName=EVENTS_TABLE,
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ConsistentRead=True,
    )
    return list(reply["Items"])


def _answer(reply: Reply) -> tuple[int, bytes, str | None]:
    """What the client gets: status, body bytes, ETag (all copies must get the very same)."""
    return reply.status, reply.raw, reply.header("ETag")


def _sequentially(cluster: Cluster, send: Send) -> list[Reply]:
    return [send(cluster.urls[n % len(cluster.urls)]) for n in range(SCALE.repeats)]


def _all_at_once(cluster: Cluster, send: Send) -> list[Reply]:
    replies: list[Reply | None] = [None] * SCALE.repeats
    barrier = threading.Barrier(SCALE.repeats)

    def one(n: int) -> None:
        barrier.wait()
        replies[n] = send(cluster.urls[n % len(cluster.urls)])

    threads = [threading.Thread(target=one, args=(n,)) for n in range(SCALE.repeats)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(reply is not None for reply in replies)
    return [reply for reply in replies if reply is not None]


def _check_one_append(
    cluster: Cluster, label: str, replies: list[Reply], stream_id: str, key: str, success: int
) -> None:
    answers = {_answer(reply) for reply in replies}
    commits = [item for item in _commits_of(cluster, stream_id) if item["command_id"]["S"] == key]
    replays = sum(reply.header("Idempotent-Replayed") == "true" for reply in replies)
    figures.record(
        SECTION,
        f"{label}: sends / distinct answers / commits written",
        f"{len(replies)} / {len(answers)} / {len(commits)}",
    )
    assert [reply.status for reply in replies] == [success] * len(replies), [r.raw for r in replies]
    assert len(answers) == 1, answers
    assert len(commits) == 1, commits
    # Exactly one of the copies did the work; every other one was answered from it.
    assert replays == len(replies) - 1
    _, raw, etag = answers.pop()
    body = json.loads(raw)
    assert etag == f'"{body["version"]}"'
    first = int(commits[0]["version"]["N"])
    assert body["version"] == first + int(commits[0]["event_count"]["N"]) - 1


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_a_retried_placement_appends_once_and_answers_the_same(
    concurrency_cluster: Cluster, mode: str
) -> None:
    cluster = concurrency_cluster
    alice = cluster.token(f"idem-{mode}")
    key = f"place-{uuid.uuid4()}"
    body = order_body("sku-idem", 2, "12.50")

    def send(url: str) -> Reply:
        return call(url, "POST", "/orders", body=body, token=alice, headers={"Idempotency-Key": key})

    replies = _sequentially(cluster, send) if mode == "sequential" else _all_at_once(cluster, send)
    order_id = replies[0].json["order_id"]
    _check_one_append(cluster, f"POST /orders, {mode}", replies, f"order-{order_id}", key, 201)
    # The order has exactly the three events of one placement
    assert sum(int(c["event_count"]["N"]) for c in _commits_of(cluster, f"order-{order_id}")) == 3


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_a_retried_item_appends_once_and_answers_the_same(concurrency_cluster: Cluster, mode: str) -> None:
    cluster = concurrency_cluster
    bob = cluster.token(f"idem-items-{mode}")
    placed = call(cluster.urls[0], "POST", "/orders", body=order_body("sku-idem"), token=bob)
    assert placed.status == 201
    order_id = placed.json["order_id"]
    # Every process has the order in its warm cache at version 3 before the retries start
    for url in cluster.urls:
        warm = call(
            url,
            "POST",
            f"/orders/{order_id}/items",
            body={"product_id": "sku-w", "quantity": 1, "unit_price": "1.00"},
            token=bob,
        )
        assert warm.status == 200
    key = f"add-{uuid.uuid4()}"
    item = {"product_id": "sku-idem-2", "quantity": 3, "unit_price": "4.50"}

    def send(url: str) -> Reply:
        return call(
            url, "POST", f"/orders/{order_id}/items", body=item, token=bob, headers={"Idempotency-Key": key}
        )

    replies = _sequentially(cluster, send) if mode == "sequential" else _all_at_once(cluster, send)
    _check_one_append(cluster, f"POST /orders/{{id}}/items, {mode}", replies, f"order-{order_id}", key, 200)


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_a_retried_stock_receipt_appends_once(concurrency_cluster: Cluster, mode: str) -> None:
    cluster = concurrency_cluster
    op = cluster.token("idem-operator", operator=True)
    product = f"idem-{mode}-{uuid.uuid4().hex[:6]}"
    key = f"stock-{uuid.uuid4()}"

    def send(url: str) -> Reply:
        return call(
            url,
            "POST",
            f"/inventory/{product}/stock",
            body={"quantity": 7},
            token=op,
            headers={"Idempotency-Key": key},
        )

    replies = _sequentially(cluster, send) if mode == "sequential" else _all_at_once(cluster, send)
    _check_one_append(
        cluster, f"POST /inventory/{{id}}/stock, {mode}", replies, f"product-{product}", key, 200
    )


def test_a_client_chosen_order_id_makes_placement_safe_without_a_key(concurrency_cluster: Cluster) -> None:
    cluster = concurrency_cluster
    carol = cluster.token("idem-carol")
    order_id = str(uuid.uuid4())
    body = {**order_body("sku-idem"), "order_id": order_id}

    replies = _all_at_once(cluster, lambda url: call(url, "POST", "/orders", body=body, token=carol))

    _check_one_append(
        cluster,
        "POST /orders with order_id, concurrent",
        replies,
        f"order-{order_id}",
        f"place-order:{order_id}",
        201,
    )


def test_a_reused_key_with_another_request_is_refused_and_writes_nothing(
    concurrency_cluster: Cluster,
) -> None:
    cluster = concurrency_cluster
    dave = cluster.token("idem-dave")
    key = f"reuse-{uuid.uuid4()}"
    first = call(
        cluster.urls[0],
        "POST",
        "/orders",
        body=order_body("sku-1"),
        token=dave,
        headers={"Idempotency-Key": key},
    )
    assert first.status == 201
    stream_id = f"order-{first.json['order_id']}"
    before = _commits_of(cluster, stream_id)

    # The same key, another body, on every process (warm or cold)
    other = [
        call(url, "POST", "/orders", body=order_body("sku-2"), token=dave, headers={"Idempotency-Key": key})
        for url in cluster.urls
    ]

    assert [r.status for r in other] == [422] * len(other)
    assert all(
        r.content_type == "application/problem+json" and "Idempotency-Key" in r.json["detail"] for r in other
    )
    assert _commits_of(cluster, stream_id) == before
    everything = scan_items(cluster.dynamodb(), ProjectionExpression="command_id")
    assert sum(item.get("command_id", {}).get("S") == key for item in everything) == 1
    figures.record(SECTION, "same key, different request: answers", f"{len(other)} x 422, nothing written")
