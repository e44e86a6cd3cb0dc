"""`orders serve` with instances: several clients at once, as Lambda serves them.

One system with two instances per function and the read models running, shared by the tests
that only use it; the last test starts a system of its own, to stop it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orders_core.queries.orders import MAX_WAIT_SECONDS
from orders_local.system import LocalSystem
from orders_local.tokens import issue_token

SECRET = "concurrency-test-secret-that-is-32-bytes-or-more"
ORDER = {
    "items": [{"product_id": "sku-espresso", "quantity": 2, "unit_price": "12.50"}],
    "shipping_address": {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"},
}
PROMPT_SECONDS = 1.0  # far from the wait, and from the 3 s a serialized gateway would add


def _request(url: str, subject: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, method="POST" if data else "GET", data=data)
    request.add_header("Authorization", f"Bearer {issue_token(subject, operator=False, secret=SECRET)}")
    request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=15) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


class _InFlight:
    """A request sent from another thread: ``result`` once answered, and when."""

    def __init__(self, url: str, subject: str) -> None:
        self.result: tuple[int, Any, dict[str, str]] | None = None
        self.started = time.monotonic()
        self.answered_at: float | None = None
        self._thread = threading.Thread(target=self._send, args=(url, subject), daemon=True)
        self._thread.start()

    def _send(self, url: str, subject: str) -> None:
        self.result = _request(url, subject)
        self.answered_at = time.monotonic()

    def wait(self, timeout: float) -> tuple[int, Any, dict[str, str]]:
        self._thread.join(timeout)
        assert self.result is not None, f"no answer within {timeout} s"
        return self.result


def _descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # a zombie has exited; only its parent's wait is missing
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    with LocalSystem(port=0, secret=SECRET, workers=2, table_prefix="concurrency-test") as running:
        yield running


def test_a_min_version_wait_delays_no_other_clients_request(system: LocalSystem) -> None:
    # Given alice's order, shown in its view at version 3
    status, placed, _ = _request(f"{system.url}/orders", "alice", ORDER)
    assert status == 201 and placed["version"] == 3
    order = f"{system.url}/orders/{placed['order_id']}"
    assert _request(f"{order}?min_version=3", "alice")[0] == 200

    # When alice waits for a version that no command will bring
    waiting = _InFlight(f"{order}?min_version=4", "alice")
    time.sleep(0.3)  # it is in its query instance's wait loop by now

    # Then other clients' commands and queries, to the same functions, are answered meanwhile
    answered: list[tuple[str, int, float]] = []

    def timed(name: str, url: str, subject: str, body: Any = None) -> Any:
        started = time.monotonic()
        status, reply, _ = _request(url, subject, body)
        answered.append((name, status, time.monotonic() - started))
        return reply

    bobs = timed("bob places an order", f"{system.url}/orders", "bob", ORDER)
    item = {"product_id": "sku-grinder", "quantity": 1, "unit_price": "89.00"}
    timed("bob adds an item", f"{system.url}/orders/{bobs['order_id']}/items", "bob", item)
    timed("bob reads his history", f"{system.url}/orders/{bobs['order_id']}/events", "bob")
    timed("carol places an order", f"{system.url}/orders", "carol", ORDER)
    timed("carol lists her orders", f"{system.url}/customers/me/orders", "carol")
    timed("alice reads her order", order, "alice")
    others_done = time.monotonic()

    assert [(name, status) for name, status, _ in answered] == [
        ("bob places an order", 201),
        ("bob adds an item", 200),
        ("bob reads his history", 200),
        ("carol places an order", 201),
        ("carol lists her orders", 200),
        ("alice reads her order", 200),
    ]
    slow = [(name, round(seconds, 2)) for name, _, seconds in answered if seconds >= PROMPT_SECONDS]
    assert not slow, f"answered only after {slow}"
    assert waiting.result is None, "the waiting request was answered before the others were done"

    # And the waiting request ends as documented: after its wait, 503 with Retry-After
    status, problem, headers = waiting.wait(timeout=MAX_WAIT_SECONDS + 10)
    assert (status, problem["title"], headers["Retry-After"]) == (503, "View not caught up", "1")
    assert waiting.answered_at is not None and waiting.answered_at > others_done
    assert waiting.answered_at - waiting.started >= MAX_WAIT_SECONDS - 0.2


def test_an_instance_killed_mid_request_answers_500_and_is_replaced(system: LocalSystem) -> None:
    # Given a query instance busy with a request that waits, and the other one idle
    status, placed, _ = _request(f"{system.url}/orders", "dave", ORDER)
    assert status == 201
    order = f"{system.url}/orders/{placed['order_id']}"
    killed = system.instance_pids("query_api")
    assert len(killed) == 2
    waiting = _InFlight(f"{order}?min_version=99", "dave")
    time.sleep(0.3)

    # When both query instances' processes are killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)

    # Then the request in flight gets API Gateway's answer to a crashed function, at once
    status, body, _ = waiting.wait(timeout=5)
    assert (status, body) == (500, {"message": "Internal Server Error"})
    assert waiting.answered_at is not None and waiting.answered_at - waiting.started < MAX_WAIT_SECONDS
    # And the next query is served, by a new instance; the other one is replaced too
    assert _request(order, "dave")[0] == 200
    deadline = time.monotonic() + 10
    while len(replaced := system.instance_pids("query_api")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(replaced) == 2 and not set(replaced) & set(killed)


def test_stop_leaves_no_process_behind() -> None:
    # Given a running system with one instance per function and the read models
    before = _descendants(os.getpid())  # other tests' systems, if any
    system = LocalSystem(port=0, secret=SECRET, workers=1, table_prefix="stop-test").start()
    try:
        status, _, _ = _request(f"{system.url}/orders", "erin", ORDER)
        assert status == 201
        ours = _descendants(os.getpid()) - before
        instances = system.instance_pids()
        # The gateway, an instance per function (under the gateway) and the projector's poller
        assert len(instances) == 3 and set(instances) <= ours
        assert len(ours) == 5
    finally:
        # When it stops
        system.stop()

    # Then none of its processes is left
    assert not _descendants(os.getpid()) & ours
    assert not system.started
