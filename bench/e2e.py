"""Local end-to-end throughput, idle CPU and projection lag, through `orders serve` on this machine.

Starts `orders serve` as a separate process on a free port, with its default instances per
function (`--workers`; the run records how many under "workers"). Its moto runs in its main
process; the gateway with its instances, the projector's poller, and the other stream readers
(the live notifier, the integration publisher) run in processes of their own
(docs/adr/0016-local-instances.md). Then:

* **idle CPU**: once the server has settled after startup, the CPU seconds its processes use
  (`/proc/<pid>/stat` of the server and every process under it, user + system) over
  `IDLE_SECONDS` with nothing happening, as a share of one core. Target: under 5%. The
  projector's one stream poller backs off while the stream is idle
  (orders_local/projection_workers.py; the run records its waits under "poller").
* **commands/s** with N concurrent clients (1, 4, 8), each with an HTTP client of its own,
  alternating a new order (`POST /orders`) and an item added to its last order (warm in the
  instance that placed it): both one conditional PutItem, plus a Query when the item reaches an
  instance that has not met the order yet (each instance has its own cache, as on Lambda). The
  stream readers (the projector with every read model, the notifier, the publisher) run meanwhile,
  as they do for anyone running `orders serve`.
* **raw conditional puts/s** on the same moto endpoint, in the same run, with the same number
  of threads (a boto3 client each): `PutItem` of a commit-sized item with
  `attribute_not_exists`. Ours divided by raw is the overhead of the whole path (HTTP, the
  gateway and its JWT check, Powertools, pydantic, the command service) over the write itself.
* **CPU per command and per raw put**: from a phase's start until the server is idle again (the
  readers' catch-up included), moto's process alone and every process with the clients; what
  those costs allow sustained (moto's process one core, everything the machine's cores).
* **projection lag**: one order at a time, from the command's answer (accepted, with its
  version) to the first `GET /orders/{id}` (polled every 5 ms) that shows that version in the
  order's view; p50 and p99. Target: p99 at most 500 ms.

Then the same figures (idle CPU, throughput, CPU) once more on a server without stream readers
(the same `LocalSystem`, `projections=False`, started by `python -m bench.e2e serve`): on two
cores the projections of every command compete with the command path, for the cores and for
moto's process, which serves every DynamoDB request; on AWS they run in other functions. That
ratio is the overhead of the command path alone.

Before each measurement the server is left to finish its projection backlog (its CPU use
falls below a threshold), so one phase's stream does not slow the next. Times are moto's on
this machine: compare the ratio, not the absolute figures, with DynamoDB.

    .venv/bin/python -m bench.e2e [--small] [--json PATH]
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REGION, ROOT, percentile, section_main

CLIENTS, SMALL_CLIENTS = (1, 4, 8), (1, 4)
FULL_COMMANDS, SMALL_COMMANDS = 240, 32  # per level, over all clients
FULL_LAG_ORDERS, SMALL_LAG_ORDERS = 120, 10
FULL_IDLE_SECONDS, SMALL_IDLE_SECONDS = 10.0, 3.0
SECRET = "bench-e2e-secret-0123456789abcdef0123456789"
POLL_SECONDS = 0.005
IDLE_CPU_FRACTION = 0.35  # below this share of a core the server has caught up (between phases)
IDLE_CPU_TARGET_PERCENT = 5.0  # of one core, with nothing happening
LAG_TARGET_P99_MS = 500.0  # from a command's answer to its order view showing it
ORDER = {
    "items": [{"product_id": "sku-espresso", "quantity": 2, "unit_price": "12.50"}],
    "shipping_address": {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"},
}
ITEM = {"product_id": "sku-grinder", "quantity": 1, "unit_price": "89.00"}


@dataclass
class Server:
    process: subprocess.Popen[str]
    api: str
    endpoint: str
    output: list[str]

    @property
    def port(self) -> int:
        return int(self.api.rsplit(":", 1)[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _orders_command() -> list[str]:
    script = Path(sys.executable).with_name("orders")
    return [str(script)] if script.exists() else [sys.executable, "-m", "orders_local.cli"]


def start_server(home: Path, *, projections: bool = True) -> Server:
    """`orders serve`; without projections, the same LocalSystem minus its stream poller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(ORDERS_LOCAL_JWT_SECRET=SECRET, HOME=str(home), PYTHONUNBUFFERED="1")
    port = str(_free_port())
    command = (
        [*_orders_command(), "serve", "--port", port, "--live-port", "0"]
        if projections
        else [sys.executable, "-m", "bench.e2e", "serve", "--port", port]
    )
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output: list[str] = []
    api = endpoint = ""
    deadline = time.monotonic() + 60
    for line in process.stdout:
        output.append(line)
        if match := re.match(r"Orders API\s+(\S+)", line):
            api = match.group(1)
        if match := re.match(r"AWS endpoint\s+(\S+)", line):
            endpoint = match.group(1)
        if "Press Ctrl-C" in line or time.monotonic() > deadline:
            break
    if not api or not endpoint:
        process.kill()
        raise RuntimeError("orders serve did not start:\n" + "".join(output[-40:]))

    def drain() -> None:  # the handlers log every request: keep the pipe flowing
        assert process.stdout is not None
        for line in process.stdout:
            if len(output) < 2000:
                output.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return Server(process, api, endpoint, output)


def stop_server(server: Server) -> int:
    server.process.send_signal(2)  # SIGINT, as Ctrl-C
    try:
        return server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return server.process.wait()


def _cpu_split(pid: int) -> tuple[float, float] | None:
    """User + system CPU seconds of the process alone, and of it with every live process under it
    (its instances are its grandchildren); None without /proc or once the process is gone."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        stats[int(entry.name)] = (int(fields[1]), cpu)
    if pid not in stats:
        return None
    tree, frontier = {pid}, {pid}
    while frontier:
        frontier = {child for child, (parent, _) in stats.items() if parent in frontier} - tree
        tree |= frontier
    return stats[pid][1], sum(stats[member][1] for member in tree)


def _cpu_seconds(pid: int) -> float | None:
    split = _cpu_split(pid)
    return None if split is None else split[1]


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds so far: the server's main process (moto's), the server with everything under
    it, and this process (the clients: HTTP for commands, boto3 for raw puts)."""

    moto: float
    server: float
    clients: float

    @classmethod
    def now(cls, pid: int) -> CpuMark | None:
        split = _cpu_split(pid)
        return None if split is None else cls(split[0], split[1], time.process_time())


def cpu_per_request(before: CpuMark | None, after: CpuMark | None, requests: int) -> dict[str, float] | None:
    """Milliseconds of CPU per request between two marks: moto's process alone, and everything
    (the server's processes and the clients)."""
    if before is None or after is None:
        return None
    return {
        "moto_ms": round(1000 * (after.moto - before.moto) / requests, 2),
        "total_ms": round(
            1000 * (after.server - before.server + after.clients - before.clients) / requests, 2
        ),
    }


def wait_until_idle(pid: int, timeout: float) -> float:
    """Wait until the server's CPU use stays low (its poller has caught up); seconds waited."""
    started = time.monotonic()
    calm = 0
    last = _cpu_seconds(pid)
    if last is None:
        time.sleep(min(5.0, timeout))
        return time.monotonic() - started
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = _cpu_seconds(pid)
        if now is None:
            break
        calm = calm + 1 if (now - last) / 0.5 < IDLE_CPU_FRACTION else 0
        last = now
        if calm >= 2:
            break
    return time.monotonic() - started


def idle_cpu(pid: int, seconds: float, settle_timeout: float) -> dict[str, Any] | None:
    """The process's CPU over `seconds` with nothing happening, once it has settled; None without /proc."""
    settled = wait_until_idle(pid, settle_timeout)
    before, started = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    after, wall = _cpu_seconds(pid), time.monotonic() - started
    if before is None or after is None:
        return None
    return {
        "seconds": round(wall, 1),
        "cpu_seconds": round(after - before, 3),
        "percent_of_one_core": round(100 * (after - before) / wall, 2),
        "target_percent": IDLE_CPU_TARGET_PERCENT,
        "settled_after_seconds": round(settled, 1),
    }


# -- HTTP clients -----------------------------------------------------------------------------------


def _token(subject: str) -> str:
    from orders_local.tokens import issue_token

    return issue_token(subject, operator=False, secret=SECRET, ttl_seconds=3600)


class Client:
    """One client's HTTP connection. werkzeug, which serves the local gateway (and moto), closes a
    connection after every answer, so each request opens a new one, as a raw put's does."""

    def __init__(self, port: int, subject: str) -> None:
        self._port = port
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._auth = f"Bearer {_token(subject)}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": self._auth}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self._connection.request(method, path, body=data, headers=headers)
                reply = self._connection.getresponse()
                raw = reply.read()
                return reply.status, json.loads(raw) if raw else None
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._connection.close()


def _in_threads(count: int, work: Callable[[int], list[float]]) -> tuple[float, list[float]]:
    """Run `work(i)` in `count` threads started together; wall seconds and every latency."""
    latencies: list[list[float]] = [[] for _ in range(count)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(count + 1)

    def target(i: int) -> None:
        try:
            barrier.wait()
            latencies[i] = work(i)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds, [x for per_thread in latencies for x in per_thread]


def commands_per_second(server: Server, clients: int, total: int) -> dict[str, Any]:
    per_client = max(2, total // clients)

    def work(i: int) -> list[float]:
        client = Client(server.port, f"bench-{clients}-{i}")
        latencies = []
        order_id = ""
        try:
            for n in range(per_client):
                started = time.perf_counter()
                if n % 2 == 0:
                    status, body = client.call("POST", "/orders", ORDER)
                    order_id = body["order_id"] if status == 201 else order_id
                    expected = 201
                else:
                    status, body = client.call("POST", f"/orders/{order_id}/items", ITEM)
                    expected = 200
                if status != expected:
                    raise RuntimeError(f"command answered {status}: {body}")
                latencies.append(time.perf_counter() - started)
        finally:
            client.close()
        return latencies

    seconds, latencies = _in_threads(clients, work)
    # Every other command is a new order (placed today, naming the same products as the others).
    return {**_rate(clients * per_client, seconds, latencies), "orders_placed": clients * -(-per_client // 2)}


def raw_puts_per_second(endpoint: str, table: str, threads: int, total: int) -> dict[str, Any]:
    import boto3

    per_thread = max(2, total // threads)
    payload = "x" * 700  # about a commit's item

    def work(i: int) -> list[float]:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        dynamodb.describe_table(TableName=table)  # connect before the clock starts mattering
        latencies = []
        for _ in range(per_thread):
            started = time.perf_counter()
            dynamodb.put_item(
                TableName=table,
                Item={
                    "stream_id": {"S": f"raw-{uuid.uuid4()}"},
                    "version": {"N": "1"},
                    "events": {"S": payload},
                },
                ConditionExpression="attribute_not_exists(version)",
            )
            latencies.append(time.perf_counter() - started)
        return latencies

    seconds, latencies = _in_threads(threads, work)
    return _rate(threads * per_thread, seconds, latencies)


def _rate(count: int, seconds: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "requests": count,
        "seconds": round(seconds, 2),
        "per_second": round(count / seconds, 1),
        "latency_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


def projection_lag(server: Server, orders: int) -> dict[str, Any]:
    client = Client(server.port, "bench-lag")
    lags = []
    try:
        for _ in range(orders):
            status, placed = client.call("POST", "/orders", ORDER)
            if status != 201:
                raise RuntimeError(f"POST /orders answered {status}: {placed}")
            written = time.perf_counter()
            deadline = written + 30
            while True:
                status, view = client.call("GET", f"/orders/{placed['order_id']}")
                if status == 200 and view["version"] >= placed["version"]:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError("the order view did not show the order within 30 s")
                time.sleep(POLL_SECONDS)
            lags.append(time.perf_counter() - written)
    finally:
        client.close()
    return {
        "orders": orders,
        "p50_ms": round(percentile(lags, 0.5) * 1000, 1),
        "p99_ms": round(percentile(lags, 0.99) * 1000, 1),
        "mean_ms": round(statistics.mean(lags) * 1000, 1),
        "max_ms": round(max(lags) * 1000, 1),
        "poll_interval_ms": POLL_SECONDS * 1000,
        "target_p99_ms": LAG_TARGET_P99_MS,
    }


def _create_raw_table(endpoint: str) -> str:
    import boto3

    table = "bench-raw-puts"
    boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "stream_id", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": "stream_id", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
    )
    return table


def measure_server(
    server: Server,
    *,
    clients_levels: Sequence[int],
    total: int,
    idle_timeout: float,
    idle_seconds: float,
    lag_orders: int,
) -> dict[str, Any]:
    idle = idle_cpu(server.process.pid, idle_seconds, idle_timeout)  # before anything happens
    raw_table = _create_raw_table(server.endpoint)
    placed = commands_per_second(server, 1, 10)["orders_placed"]  # warm-up: the first requests build caches
    raw_puts_per_second(server.endpoint, raw_table, 1, 10)
    levels = []
    waited = 0.0
    for clients in clients_levels:
        waited += wait_until_idle(server.process.pid, idle_timeout)
        # From a phase's start until the server is idle again: the stream readers' catch-up after
        # the last command is part of what the commands cost.
        start = CpuMark.now(server.process.pid)
        ours = commands_per_second(server, clients, total)
        placed += ours.pop("orders_placed")
        waited += wait_until_idle(server.process.pid, idle_timeout)
        between = CpuMark.now(server.process.pid)
        raw = raw_puts_per_second(server.endpoint, raw_table, clients, total)
        waited += wait_until_idle(server.process.pid, idle_timeout)
        end = CpuMark.now(server.process.pid)
        level: dict[str, Any] = {
            "clients": clients,
            "ours": ours,
            "raw_puts": raw,
            "ratio": round(ours["per_second"] / raw["per_second"], 3),
        }
        cpu_ours = cpu_per_request(start, between, ours["requests"])
        cpu_raw = cpu_per_request(between, end, raw["requests"])
        if cpu_ours is not None and cpu_raw is not None:
            level["cpu"] = {"ours": cpu_ours, "raw_puts": cpu_raw}
        levels.append(level)
    result: dict[str, Any] = {"levels": levels}
    if idle is not None:
        result["idle_cpu"] = idle
    if lag_orders:
        waited += wait_until_idle(server.process.pid, idle_timeout)
        # The summaries re-read their partitions (ADR 11): the lag depends on what the day holds.
        result["lag"] = {**projection_lag(server, lag_orders), "orders_placed_before": placed}
    result["idle_wait_seconds"] = round(waited, 1)
    return result


def run(small: bool) -> dict[str, Any]:
    total = SMALL_COMMANDS if small else FULL_COMMANDS
    idle_timeout = 60.0 if small else 180.0
    from orders_local.projection_workers import SETTINGS
    from orders_local.system import default_workers

    results: dict[str, Any] = {
        "command_mix": "half new orders (POST /orders), half items added to the client's last order",
        # Instances per function of both servers: `orders serve`'s default on this machine.
        "workers": default_workers(),
        "cores": os.cpu_count() or 1,
        "poller": {
            "poll_interval_ms": SETTINGS.poll_interval_seconds * 1000,
            "idle_poll_max_ms": SETTINGS.idle_poll_max_seconds * 1000,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as home:
        for key, projections in (("with_projections", True), ("command_path", False)):
            started = time.perf_counter()
            server = start_server(Path(home), projections=projections)
            startup = time.perf_counter() - started
            try:
                lag_orders = (SMALL_LAG_ORDERS if small else FULL_LAG_ORDERS) if projections else 0
                results[key] = measure_server(
                    server,
                    clients_levels=SMALL_CLIENTS if small else CLIENTS,
                    total=total,
                    idle_timeout=idle_timeout,
                    idle_seconds=SMALL_IDLE_SECONDS if small else FULL_IDLE_SECONDS,
                    lag_orders=lag_orders,
                )
            finally:
                exit_code = stop_server(server)
            results[key].update(server_startup_seconds=round(startup, 2), server_exit_code=exit_code)
    results["lag"] = results["with_projections"].pop("lag")
    return results


def serve(argv: Sequence[str]) -> int:
    """`python -m bench.e2e serve --port P`: the local system without its stream poller."""
    import argparse
    import logging
    import signal

    from orders_local.system import LocalSystem

    parser = argparse.ArgumentParser(prog="bench.e2e serve")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    system = LocalSystem(
        port=args.port, projections=False, secret=os.environ.get("ORDERS_LOCAL_JWT_SECRET", SECRET)
    )
    system.start()
    try:
        print(f"Orders API      {system.url}")
        print(f"AWS endpoint    {system.endpoint_url}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        system.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        return serve(arguments[1:])
    return section_main(run, arguments, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
