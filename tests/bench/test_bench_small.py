"""`make bench-small`: every benchmark in its fast version, in one run, asserting what must hold
whatever the machine: request counts, capacity against the baselines and the limits, and a
complete page. Counts and structure only; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import render

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 240  # the run takes under a minute on 2 cores; the bound only stops a hung run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str, float]]:
    out = tmp_path_factory.mktemp("bench-small")
    results, docs = out / "results.json", out / "performance.md"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--small", "--results", str(results), "--docs", str(docs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS,
    )
    seconds = time.monotonic() - started
    assert completed.returncode == 0, completed.stdout + completed.stderr
    yield json.loads(results.read_text()), docs.read_text(), seconds


def _scenarios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in results["commands"]["scenarios"]}


def test_every_section_ran(small_run: tuple[dict[str, Any], str, float]) -> None:
    results, _, _ = small_run
    for key in ("commands", "aggregate_load", "projections", "cold_start", "e2e", "rebuild", "on_paper"):
        assert key in results and "error" not in results[key], key
    assert results["meta"]["mode"] == "small"


def test_commands_cost_what_the_design_promises(small_run: tuple[dict[str, Any], str, float]) -> None:
    s = _scenarios(small_run[0])
    requests = {key: x["ours"]["requests"] for key, x in s.items()}
    assert requests["new_order"] == {"PutItem": 1}
    assert requests["warm"] == {"PutItem": 1}
    assert requests["warm_snapshot_due"] == {"PutItem": 2}  # the commit and the snapshot
    assert requests["cold"] == {"Query": 1, "PutItem": 1}
    assert requests["cold_snapshots_none_yet"] == {"Query": 2, "PutItem": 1}
    assert requests["cold_long_snapshot"] == {"Query": 2, "PutItem": 1}
    assert requests["conflict"] == {"PutItem": 2, "Query": 1}
    # A snapshot bounds what a cold command reads
    assert s["cold_long_snapshot"]["ours"]["bytes_read"] < s["cold_long"]["ours"]["bytes_read"] / 2
    for key, x in s.items():
        ours, naive, limit = x["ours"], x["naive"], x["limit"]
        assert limit["requests"] == {"PutItem": 1} and limit["read_units"] == 0, key
        assert ours["write_requests"] >= 1 and ours["write_units"] >= limit["write_units"], key
        # The naive store writes an item per event in a transaction and reads the whole stream
        assert naive["requests"].get("TransactWriteItems", 0) >= 1, key
        if key != "warm_snapshot_due":
            assert naive["write_units"] > ours["write_units"], key
        if key not in ("cold_snapshots_none_yet", "cold_long_snapshot", "warm_snapshot_due"):
            assert naive["total_requests"] >= ours["total_requests"], key
    assert s["warm"]["ours"]["total_requests"] < s["warm"]["naive"]["total_requests"]
    assert s["new_order"]["ours"]["total_requests"] < s["new_order"]["naive"]["total_requests"]


def test_projections_write_less_than_the_naive_projection_and_more_than_the_limit(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    p = small_run[0]["projections"]
    busy = p["busy"]["per_100_records"]
    assert busy["limit"]["write_requests"] < busy["ours"]["write_requests"] < busy["naive"]["write_requests"]
    assert busy["ours"]["write_units"] < busy["naive"]["write_units"]
    assert busy["limit"]["read_requests"] == 0 and busy["naive"]["read_requests"] == 0
    quiet = p["quiet"]["per_100_records"]
    assert p["quiet"]["batch_size"] == 1 and p["busy"]["batch_size"] == 100
    # One record per batch: every batch pays the control read and the lag write
    assert quiet["ours"]["total_requests"] > busy["ours"]["total_requests"]
    for mode in ("busy", "quiet"):
        assert set(p[mode]["projections"]) == set(render.PROJECTION_NAMES)
        assert p[mode]["workload"]["events"] > p[mode]["workload"]["records"] > 0


def test_cold_start_and_sizes_are_measured_for_every_function(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    c = small_run[0]["cold_start"]
    packages = {"command_api", "query_api", "projections", "admin_api", "rebuild_worker"}
    for variant in ("as_deployed", "with_bytecode"):
        assert set(c[variant]) == packages | {"boto3"}
        assert all(m["median_ms"] > 0 for m in c[variant].values())
    sizes = c["sizes"]
    assert set(sizes["functions"]) == packages
    for size in sizes["functions"].values():
        assert 0 < size["code"]["unzipped"] < size["total_unzipped"] < sizes["lambda_unzipped_limit"]
    assert sizes["deps_layer"] is not None or sizes["note"]  # skipped offline, and says so


def test_end_to_end_and_rebuild_produce_figures(small_run: tuple[dict[str, Any], str, float]) -> None:
    results = small_run[0]
    e = results["e2e"]
    for key in ("with_projections", "command_path"):
        assert e[key]["server_exit_code"] == 0
        for level in e[key]["levels"]:
            assert level["ours"]["per_second"] > 0 and level["raw_puts"]["per_second"] > 0
            assert level["ratio"] > 0
    assert 0 < e["lag"]["p50_ms"] <= e["lag"]["p99_ms"]
    r = results["rebuild"]
    assert r["events"] >= 2_000 and r["events_per_second"] > 0


def test_the_cost_model_prices_ours_the_baseline_and_the_limit(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    o = small_run[0]["on_paper"]
    commands = o["per_million_commands"]
    assert commands["limit"]["total_dollars"] <= commands["ours"]["total_dollars"]
    assert commands["ours"]["total_dollars"] < commands["naive"]["total_dollars"]
    for mode in ("busy", "quiet"):
        assert all(o["per_million_events"][mode][v]["total_dollars"] > 0 for v in ("ours", "naive", "limit"))
    assert o["hot_stream"]["commands_per_second_per_stream_by_partition"] > 0


def test_the_page_shows_every_section_and_names_the_two_largest_gaps(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    results, page, _ = small_run
    for heading in (
        "## Headline figures",
        "## 1. Requests and capacity per command",
        "## 2. Aggregate load",
        "## 3. Projection cost",
        "## 4. Cold start",
        "## 5. Local end-to-end",
        "## 6. Rebuild throughput",
        "## 7. On paper",
        "## Gaps to the limits",
        "### The two largest gaps",
    ):
        assert heading in page, heading
    closing = page.split("### The two largest gaps", 1)[1]
    assert "1. **" in closing and "2. **" in closing
    assert render.render(results) == page  # the page is exactly what the results render to


def test_the_published_page_is_what_the_published_results_render_to() -> None:
    results, page = ROOT / "bench" / "results.json", ROOT / "docs" / "performance.md"
    if not results.exists():
        pytest.skip("no published results yet: run `make bench`")
    assert render.render(json.loads(results.read_text())) == page.read_text(), (
        "docs/performance.md is stale: run `.venv/bin/python -m bench.render` (or `make bench`)"
    )
