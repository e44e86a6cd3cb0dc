"""Processes the reliability suite runs: moto servers and `orders serve` instances, as separate processes.

One `orders serve` runs one handler at a time (its gateway serializes invocations, as one Lambda
instance would), so concurrent clients of ONE server never race inside the handlers. Several
servers on one shared moto are like several Lambda instances on one table: each has its own warm
aggregate cache, and their conditional writes really collide.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from orders_local.tokens import issue_token

HERE = Path(__file__).resolve().parent
ORDERS = str(Path(sys.executable).with_name("orders"))
SECRET = "reliability-suite-secret-0123456789abcdef0123456789"
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "RELIABILITY_SCALE"}
    env.update(
        ORDERS_LOCAL_JWT_SECRET=SECRET,
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
    )
    return env


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    interrupted: bool = False

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_SECONDS) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output())
            if found:
                return found
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not print {pattern!r} within {timeout} s:\n{self.output()}")

    def interrupt(self) -> None:
        """One Ctrl-C (a second one would ask for an immediate, unclean exit)."""
        if self.process.poll() is None and not self.interrupted:
            self.process.send_signal(signal.SIGINT)
            self.interrupted = True

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a user stops it; returns the exit code (killed if it does not stop)."""
        if self.process.poll() is None:
            self.interrupt()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def launch(name: str, command: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return Process(name, process, log)


@dataclass
class Cluster:
    """API servers (and the moto they share); `endpoint` is the AWS endpoint all of them use."""

    endpoint: str
    urls: list[str]
    processes: list[Process] = field(default_factory=list)

    def dynamodb(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @staticmethod
    def token(subject: str, *, operator: bool = False, ttl_seconds: int = 3600) -> str:
        return issue_token(subject, operator=operator, secret=SECRET, ttl_seconds=ttl_seconds)

    def stop(self) -> dict[str, int]:
        # API servers first (all at once), their moto last.
        servers = [p for p in self.processes if p.name != "moto"]
        for process in servers:
            process.interrupt()
        codes = {p.name: p.stop() for p in servers}
        codes.update({p.name: p.stop() for p in self.processes if p.name == "moto"})
        return codes


def start_shared_moto(logs: Path, home: Path) -> tuple[Process, str]:
    port = free_port()
    moto = launch(
        "moto", [sys.executable, str(HERE / "moto_launcher.py"), str(port)], base_environment(home), logs
    )
    moto.wait_for(r"moto ready at ")
    return moto, f"http://127.0.0.1:{port}"


def start_cluster(logs: Path, home: Path, *, servers: int, api_only: bool = False) -> Cluster:
    """One moto process and `servers` API processes on it (`orders serve`, or the API without projections)."""
    moto, endpoint = start_shared_moto(logs, home)
    cluster = Cluster(endpoint=endpoint, urls=[], processes=[moto])
    env = {**base_environment(home), "AWS_ENDPOINT_URL": endpoint}
    try:
        started = []
        for n in range(servers):
            port = free_port()
            if api_only:
                command = [sys.executable, str(HERE / "api_only_server.py"), str(port)]
            else:
                command = [ORDERS, "serve", "--port", str(port), "--live-port", "0"]
            started.append((launch(f"server-{n}", command, env, logs), port))
            if n == 0:
                # The first one creates the tables; the others find them (all would cope, this is quicker).
                started[0][0].wait_for(r"Press Ctrl-C to stop")
        for process, port in started:
            process.wait_for(r"Press Ctrl-C to stop")
            cluster.processes.append(process)
            cluster.urls.append(f"http://127.0.0.1:{port}")
    except BaseException:
        for process, _ in started:
            process.stop()
        moto.stop()
        raise
    return cluster


def start_single_serve(logs: Path, home: Path) -> Cluster:
    """`orders serve` exactly as a user starts it: its own embedded moto, whose endpoint it prints."""
    port = free_port()
    server = launch(
        "serve", [ORDERS, "serve", "--port", str(port), "--live-port", "0"], base_environment(home), logs
    )
    server.wait_for(r"Press Ctrl-C to stop")
    endpoint = server.wait_for(r"AWS endpoint\s+(http://\S+)").group(1)
    return Cluster(endpoint=endpoint, urls=[f"http://127.0.0.1:{port}"], processes=[server])
