"""Many clients, several API processes, one table: nothing lost, nothing doubled, no version gaps.

Each `orders serve` process stands for one Lambda instance (its own warm aggregate cache, one
request at a time); client threads are spread over them, on a few hot orders and products (real
optimistic-concurrency races between processes) and on orders of their own. Every command
carries a unique Idempotency-Key, which the log stores as its command id: that is how each answer
is matched with what was (or was not) written. The events table is then read directly.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

from tests.reliability import figures
from tests.reliability.api_client import call
from tests.reliability.cluster import Cluster
from tests.reliability.log import check_streams, full_log, scan_commits
from tests.reliability.readmodels import Expected, differences
from tests.reliability.scale import SCALE
from tests.reliability.workload import PRICES, Sent, order_body, percentile, send

SECTION = "1. Concurrency"
PRODUCTS = ("sku-a", "sku-b", "sku-c", "sku-d", "sku-e")
CONVERGE_TIMEOUT_SECONDS = 180.0


def _run_load(cluster: Cluster, seed: int) -> tuple[list[Sent], list[str], float]:
    op = cluster.token("operator-load", operator=True)
    owner = cluster.token("hot-owner")
    hot_orders: list[str] = []
    for n in range(SCALE.hot_orders):
        reply = call(cluster.urls[0], "POST", "/orders", body=order_body(PRODUCTS[n % 5]), token=owner)
        assert reply.status == 201, reply.raw
        hot_orders.append(reply.json["order_id"])
    hot_products = [f"hot-{n}" for n in range(SCALE.hot_products)]

    ledger: list[Sent] = []
    lock = threading.Lock()
    barrier = threading.Barrier(SCALE.client_threads)

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        url = cluster.urls[number % len(cluster.urls)]
        me = cluster.token(f"load-{number}")
        mine: list[str] = []
        seen = dict.fromkeys(hot_orders, 3)  # the version each hot order had when this client last saw it
        barrier.wait()
        for n in range(SCALE.commands_per_thread):
            key = f"load-{number}-{n}-{uuid.uuid4().hex[:8]}"
            item: dict[str, Any] = {
                "product_id": rng.choice(PRODUCTS),
                "quantity": rng.randint(1, 5),
                "unit_price": rng.choice(PRICES),
            }
            roll = rng.random()
            headers: dict[str, str] = {}
            if roll < 0.55:
                order = rng.choice(hot_orders)
                if roll < 0.15:  # optimistic concurrency on the client's side: If-Match what it saw last
                    headers["If-Match"] = f'"{seen[order]}"'
                kind = "hot add (If-Match)" if headers else "hot add"
                target: tuple[str, str, str, str, Any] = (
                    "POST",
                    f"/orders/{order}/items",
                    f"order-{order}",
                    owner,
                    item,
                )
            elif roll < 0.70:
                product = rng.choice(hot_products)
                kind = "hot stock"
                target = (
                    "POST",
                    f"/inventory/{product}/stock",
                    f"product-{product}",
                    op,
                    {"quantity": rng.randint(1, 50)},
                )
            elif roll < 0.82 or not mine:
                kind = "place own"
                body = order_body(item["product_id"], item["quantity"], item["unit_price"])
                target = ("POST", "/orders", "", me, body)
            else:
                order = rng.choice(mine)
                kind = "add own"
                target = ("POST", f"/orders/{order}/items", f"order-{order}", me, item)
            method, path, stream_id, token, body = target
            sent, reply = send(
                url,
                method,
                path,
                key=key,
                kind=kind,
                stream_id=stream_id,
                token=token,
                body=body,
                headers=headers,
            )
            if kind == "place own" and sent.accepted:
                mine.append(sent.stream_id.removeprefix("order-"))
            if reply is not None and kind.startswith("hot add") and reply.header("ETag"):
                order = path.split("/")[2]
                seen[order] = max(seen[order], int(str(reply.header("ETag")).strip('"')))
            with lock:
                ledger.append(sent)

    threads = [
        threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(SCALE.client_threads)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ledger, hot_orders, time.monotonic() - started


def _read_models_converge(cluster: Cluster, expected: Expected) -> tuple[float, list[str]]:
    """Poll the query API until every row equals the fold; the seconds it took, or what still differs."""
    op = cluster.token("operator-check", operator=True)
    tokens: dict[str, str] = {}
    urls = cluster.urls

    def get(path: str, token: str) -> dict[str, Any] | None:
        reply = call(urls[hash(path) % len(urls)], "GET", path, token=token)
        assert reply.status in (200, 404), (path, reply.status, reply.raw)
        return reply.json if reply.status == 200 else None

    def summary(customer: str) -> dict[str, Any] | None:
        token = tokens.setdefault(customer, cluster.token(customer))
        found = get("/customers/me/summary", token)
        return None if found is None else {"customer_id": customer, **found}

    started = time.monotonic()
    while True:
        found = differences(
            expected,
            order=lambda order_id: get(f"/orders/{order_id}", op),
            sales=lambda day: get(f"/analytics/sales/{day}", op),
            inventory=lambda product: get(f"/inventory/{product}", op),
            summary=summary,
            product_sales=lambda product: get(f"/analytics/products/{product}", op),
        )
        elapsed = time.monotonic() - started
        if not found or elapsed > CONVERGE_TIMEOUT_SECONDS:
            return elapsed, found
        time.sleep(0.5)


def test_concurrent_clients_lose_nothing_and_double_nothing(concurrency_cluster: Cluster) -> None:
    cluster = concurrency_cluster
    ledger, hot_orders, seconds = _run_load(cluster, seed=7)
    assert len(ledger) == SCALE.client_threads * SCALE.commands_per_thread, "a client thread died"

    # The log, read straight from the table (every page of the Scan)
    client = cluster.dynamodb()
    commits = scan_commits(client)
    by_command: dict[str, list[Any]] = defaultdict(list)
    for commit in commits:
        by_command[commit.command_id].append(commit)
    streams = check_streams(commits)

    accepted = [s for s in ledger if s.accepted]
    lost = [s for s in accepted if s.key not in by_command]
    doubled = [s for s in ledger if len(by_command.get(s.key, [])) > 1]
    misplaced = [
        s
        for s in accepted
        if s.key in by_command
        and (by_command[s.key][0].stream_id != s.stream_id or by_command[s.key][0].last_version != s.version)
    ]
    rejected = [s for s in ledger if s.rejected]
    rejected_but_written = [s for s in rejected if s.key in by_command]
    failed = [s for s in ledger if s.status == 0 or s.status >= 500]
    conflicts = [s for s in rejected if s.conflict]
    refused = [s for s in rejected if not s.conflict]
    latencies = [s.seconds for s in ledger if s.status]

    record = figures.record
    record(SECTION, "API processes on one moto (one 'Lambda instance' each)", len(cluster.urls))
    record(SECTION, "client threads", SCALE.client_threads)
    record(
        SECTION,
        "hot orders / hot products shared by all threads",
        f"{len(hot_orders)} / {SCALE.hot_products}",
    )
    record(SECTION, "commands tried", len(ledger))
    record(SECTION, "accepted (2xx)", len(accepted))
    record(SECTION, "conflicts: 409 after 5 server-side attempts", sum(s.status == 409 for s in conflicts))
    record(SECTION, "conflicts: 412 stale If-Match", sum(s.status == 412 for s in conflicts))
    record(SECTION, "refused by a business rule (409/422)", len(refused))
    record(SECTION, "5xx or no answer", len(failed))
    record(SECTION, "lost (accepted, not in the log)", len(lost))
    record(SECTION, "doubled (a command's events twice)", len(doubled))
    record(SECTION, "misplaced (other stream or version than answered)", len(misplaced))
    record(SECTION, "rejected but written", len(rejected_but_written))
    record(SECTION, "version gaps / repeated versions", f"{len(streams.gaps)} / {len(streams.repeated)}")
    record(
        SECTION,
        "streams / commits / events in the log",
        f"{streams.streams} / {streams.commits} / {streams.events}",
    )
    record(SECTION, "throughput", len(ledger) / seconds, "commands/s")
    record(
        SECTION,
        "latency p50 / p95",
        f"{percentile(latencies, 0.5) * 1000:.0f} / {percentile(latencies, 0.95) * 1000:.0f} ms",
    )

    by_kind = Counter((s.kind, s.status) for s in ledger)
    detail = ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(by_kind.items()))
    assert not failed, f"server errors or no answer: {failed[:5]}"
    assert not lost, f"accepted but not in the log: {lost[:5]}"
    assert not doubled, f"written more than once: {doubled[:5]}"
    assert not misplaced, f"written elsewhere than answered: {misplaced[:5]}"
    assert not rejected_but_written, f"refused yet written: {rejected_but_written[:5]}"
    assert streams.clean, (streams.gaps[:5], streams.repeated[:5])
    assert not any(s.replayed for s in ledger), "every key was fresh: nothing may be answered as a replay"
    assert all(s.status in (200, 201, 409, 412) for s in ledger), detail
    # The races were real: the hot streams saw conflicts, and most commands still went through.
    assert conflicts, f"no optimistic-concurrency conflict happened at all: {detail}"
    assert len(accepted) >= len(ledger) // 2, detail

    # The read models, fed by every process's stream pollers at once, end equal to a fold of the log
    expected = Expected.of(full_log(client))
    converged_after, still_different = _read_models_converge(cluster, expected)
    record(SECTION, "read-model rows compared with the fold", expected.rows)
    record(SECTION, "read models equal the fold after", converged_after, "s")
    assert not still_different, still_different


def test_operators_can_use_the_admin_api_of_a_server_on_an_external_endpoint(
    concurrency_cluster: Cluster,
) -> None:
    operator = concurrency_cluster.token("operator-admin", operator=True)
    url = concurrency_cluster.urls[0]
    projections = call(url, "GET", "/admin/projections", token=operator)
    rebuilds = call(url, "GET", "/admin/rebuilds", token=operator)
    unknown = call(url, "POST", "/admin/rebuilds", body={"projection": "no-such-projection"}, token=operator)
    # The rebuild workflow runs only on the moto `orders serve` embeds: here it says so, and starts nothing
    started = call(url, "POST", "/admin/rebuilds", body={"projection": "inventory"}, token=operator)
    assert (projections.status, rebuilds.status, unknown.status) == (200, 200, 422)
    assert {p["projection"] for p in projections.json["projections"]} >= {"customer_orders", "inventory"}
    assert started.status == 503 and started.content_type == "application/problem+json"
    assert call(url, "GET", "/admin/rebuilds", token=operator).json == rebuilds.json
