"""The reliability suite's processes (started once per run, when first needed) and its figures table."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import figures
from tests.reliability.cluster import Cluster, start_cluster, start_single_serve
from tests.reliability.scale import SCALE

_started = time.monotonic()


@pytest.fixture(scope="session")
def reliability_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reliability")


def _stopped_cleanly(cluster: Cluster) -> None:
    codes = cluster.stop()
    # Stopping on Ctrl-C with exit code 0 is part of what `orders serve` promises its user.
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope="session")
def concurrency_cluster(reliability_tmp: Path) -> Iterator[Cluster]:
    """SCALE.servers `orders serve` processes sharing one moto: several 'Lambda instances' on one table."""
    logs = reliability_tmp / "concurrency"
    logs.mkdir()
    cluster = start_cluster(logs, reliability_tmp / "home", servers=SCALE.servers)
    yield cluster
    _stopped_cleanly(cluster)


@pytest.fixture(scope="session")
def api_server(reliability_tmp: Path) -> Iterator[Cluster]:
    """One `orders serve` exactly as a user starts it (its own moto, projections, rebuild workflow)."""
    logs = reliability_tmp / "api"
    logs.mkdir()
    cluster = start_single_serve(logs, reliability_tmp / "home")
    yield cluster
    _stopped_cleanly(cluster)


@pytest.fixture(scope="session")
def limits_cluster(reliability_tmp: Path) -> Iterator[Cluster]:
    """Two API processes on one moto, without stream pollers (see api_only_server.py)."""
    logs = reliability_tmp / "limits"
    logs.mkdir()
    cluster = start_cluster(logs, reliability_tmp / "home", servers=2, api_only=True)
    yield cluster
    _stopped_cleanly(cluster)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    recorded = figures.recorded()
    if not recorded:
        return
    terminalreporter.section(f"reliability figures (RELIABILITY_SCALE={SCALE.name})")
    terminalreporter.write_line(figures.table(recorded))
    target = os.environ.get(figures.FIGURES_ENV)
    if target:
        terminalreporter.write_line(f"\nwritten to {target}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(figures.FIGURES_ENV)
    if target and figures.recorded():
        outcome = "passed" if exitstatus == 0 else f"failed (pytest exit status {exitstatus})"
        figures.write(Path(target), SCALE.name, time.monotonic() - _started, outcome)
