"""`make bench-small`: every benchmark in its fast version, in one run, asserting what must hold
whatever the machine: request counts, capacity against the baselines and the limits, and a
complete page. Counts and structure only; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import cold_start, render
from infra import bytecode

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


def test_the_benchmark_covers_every_registered_read_model() -> None:
    from orders_core.projections.registry import NAMES

    assert render.PROJECTION_NAMES == NAMES  # a new read model needs its place in the benchmark
    assert set(render.SUMMARY_PROJECTIONS) < set(NAMES)


def test_projections_send_about_the_limits_requests_and_write_less_than_the_naive_projection(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    p = small_run[0]["projections"]
    busy = p["busy"]["per_100_records"]
    # A transaction (per read model and batch; per customer for the customer summary) writes many
    # rows: no more write requests than the limit's one per row, all requests within 1.3x of it
    assert busy["ours"]["write_requests"] <= busy["limit"]["write_requests"] < busy["naive"]["write_requests"]
    assert busy["ours"]["total_requests"] <= 1.3 * busy["limit"]["total_requests"]
    # Write units: above the limit (2 per item and KB in a transaction, the source rows), below naive
    assert busy["limit"]["write_units"] < busy["ours"]["write_units"] < busy["naive"]["write_units"]
    assert busy["limit"]["read_requests"] == 0 and busy["naive"]["read_requests"] == 0
    quiet = p["quiet"]["per_100_records"]
    assert p["quiet"]["batch_size"] == 1 and p["busy"]["batch_size"] == 100
    # One record per batch: every batch pays each read model's transaction alone
    assert quiet["ours"]["total_requests"] > busy["ours"]["total_requests"]
    for mode in ("busy", "quiet"):
        assert tuple(p[mode]["projections"]) == render.PROJECTION_NAMES  # every read model, in order
        assert p[mode]["workload"]["events"] > p[mode]["workload"]["records"] > 0
        for name, cost in p[mode]["projections"].items():
            # Each read model has requests of its own, and the naive and the limit write its rows
            assert cost["ours"]["write_requests"] > 0 and cost["naive"]["write_requests"] > 0, (mode, name)
            assert cost["limit"]["write_requests"] > 0, (mode, name)
            # At most one write request per row the limit writes: a row per request, or many per transaction
            assert cost["ours"]["write_requests"] <= cost["limit"]["write_requests"], (mode, name)


def test_a_warm_summary_projection_reads_only_its_control_row_and_new_customers_latest_keys(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    quiet = small_run[0]["projections"]["quiet"]
    workload, batches = quiet["workload"], quiet["batches"]
    seconds = batches * quiet["batch_gap_seconds"]  # on the bench clock
    control_reads = seconds / quiet["projector"]["control_ttl_seconds"] + 1  # each control row, once per 10 s
    # Source rows are never read here: each is cached once written, and a source whose first commit
    # is in the batch is new. The customer summary reads a customer's newest-wins key once.
    first_met = {
        "sales_analytics": 0,
        "product_sales": 0,
        "inventory": 0,
        "customer_summary": workload["customers"],
    }
    assert set(first_met) == set(render.SUMMARY_PROJECTIONS)
    for name, keys in first_met.items():
        cost = quiet["projections"][name]["ours"]
        reads = round(cost["read_requests"] * workload["records"] / 100)
        # Not a read per batch, and no Query: no summary is recomputed from its partition
        assert 1 <= reads <= control_reads + keys < batches, name
        assert set(cost["requests"]) == {"BatchGetItem", "TransactWriteItems"}, name


def test_the_projectors_shared_work_is_counted_on_its_own_line_and_in_the_total(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    p = small_run[0]["projections"]
    for mode in ("busy", "quiet"):
        delivery = p[mode]
        shared = delivery["projector"]
        # The lists of parked streams (a Query per read model) and the heartbeat: the control table
        assert set(shared["ours"]["requests"]) == {"Query", "PutItem"}, mode
        parts = [cost["ours"]["total_requests"] for cost in delivery["projections"].values()]
        total = delivery["per_100_records"]["ours"]["total_requests"]
        assert total == pytest.approx(sum(parts) + shared["ours"]["total_requests"], abs=0.05), mode
    quiet = p["quiet"]
    records, batches, gap = quiet["workload"]["records"], quiet["batches"], quiet["batch_gap_seconds"]
    assert batches == records  # one record per batch

    def sent(per_100_records: float) -> int:
        return round(per_100_records * records / 100)

    seconds = batches * gap  # on the bench clock
    # Cached, not per batch: the heartbeat at most once a minute
    heartbeats = sent(quiet["projector"]["ours"]["requests"]["PutItem"])
    assert 1 <= heartbeats <= seconds / quiet["projector"]["heartbeat_seconds"] + 1


def test_a_summary_costs_the_same_at_the_last_order_of_a_day_as_at_the_100th(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    projections = small_run[0]["projections"]
    growth, shards = projections["summary_growth"], projections["summary_shards"]
    assert set(shards) == set(render.SUMMARY_PROJECTIONS)
    assert set(growth["points"]) == {"sales_analytics", "product_sales"}
    for name, points in growth["points"].items():
        first, last = points
        assert (first["order"], last["order"]) == (100, growth["orders"]), name
        # One more order: one transaction (its source row and a shard row), no Query of the summary
        requests = first["cost"]["requests"]
        assert requests.get("TransactWriteItems") == 1, name
        assert set(requests) <= {"TransactWriteItems", "BatchGetItem"}, name
        assert last["cost"]["requests"] == requests, name
        # Flat: the same read and write units whatever the day holds
        assert last["cost"]["read_units"] == first["cost"]["read_units"] <= 1, name
        assert last["cost"]["write_units"] == first["cost"]["write_units"], name
        # The summary is its shard rows, never more than its shards, filled as the day goes
        assert 1 <= first["partition_rows"] <= last["partition_rows"] <= shards[name], name


def test_cold_start_and_sizes_are_measured_for_every_function(
    small_run: tuple[dict[str, Any], str, float],
) -> None:
    c = small_run[0]["cold_start"]
    packages = set(cold_start.PACKAGES)
    # The authorizer's own layer (cryptography) loads here only as its twin, built by the runtime's Python.
    measured = packages if bytecode.runtime_python() is not None else packages - {cold_start.AUTHORIZER}
    for variant in ("as_deployed", "without_bytecode"):
        assert set(c[variant]) == measured | {"boto3"}
        assert all(m["median_ms"] > 0 for m in c[variant].values())
    # Measured on the runtime's own minor version where this machine has one, with the bytecode
    # the assets ship for it; elsewhere the page must say it was not.
    assert c["runtime"] == f"python{bytecode.PYTHON_VERSION}"
    if bytecode.runtime_python() is not None:
        assert c["matches_runtime"] and c["python"].startswith(f"{bytecode.PYTHON_VERSION}.")
        assert c["bytecode"] == bytecode.BYTECODE_TAG
    else:
        assert not c["matches_runtime"]
    sizes = c["sizes"]
    assert set(sizes["functions"]) == packages
    for size in sizes["functions"].values():
        assert 0 < size["code"]["unzipped"] < size["total_unzipped"] < sizes["lambda_unzipped_limit"]
    assert sizes["deps_layer"] is not None or sizes["note"]  # skipped offline, and says so
    if sizes["auth_layer"] is not None:  # the authorizer carries its own layer on top of the shared two
        layers = {
            name: size["total_unzipped"] - size["code"]["unzipped"]
            for name, size in sizes["functions"].items()
        }
        assert layers["live_authorizer"] == layers["command_api"] + sizes["auth_layer"]["unzipped"]


def test_end_to_end_and_rebuild_produce_figures(small_run: tuple[dict[str, Any], str, float]) -> None:
    results = small_run[0]
    e = results["e2e"]
    assert 2 <= e["workers"] <= 8  # instances per function, `orders serve`'s default
    for key in ("with_projections", "command_path"):
        assert e[key]["server_exit_code"] == 0
        for level in e[key]["levels"]:
            assert level["ours"]["per_second"] > 0 and level["raw_puts"]["per_second"] > 0
            assert level["ratio"] > 0
            # CPU per request: moto's process is part of "all", and a command costs moto at least
            # its own conditional put's parsing and storing.
            for cost in (level["cpu"]["ours"], level["cpu"]["raw_puts"]):
                assert 0 < cost["moto_ms"] < cost["total_ms"]
    assert e["cores"] == (os.cpu_count() or 1)
    assert 0 < e["lag"]["p50_ms"] <= e["lag"]["p99_ms"]
    assert e["lag"]["target_p99_ms"] == 500
    assert e["lag"]["orders_placed_before"] > 0  # the day the summaries re-read is not empty
    for key in ("with_projections", "command_path"):
        idle = e[key]["idle_cpu"]
        assert idle["seconds"] > 0 and idle["percent_of_one_core"] >= 0 and idle["target_percent"] == 5
    assert e["poller"]["poll_interval_ms"] <= e["poller"]["idle_poll_max_ms"]
    r = results["rebuild"]
    assert r["events"] >= 2_000 and r["events_per_second"] > 0
    # The shuffle streams its file: a file four times larger leaves its peak memory where it was
    small_file, large_file = r["shuffle_memory"]["files"]
    assert large_file["uncompressed_bytes"] > 3 * small_file["uncompressed_bytes"]
    assert large_file["uncompressed_bytes"] > r["shuffle_memory"]["buffer_bytes"]
    assert large_file["peak_bytes"] < 1.5 * small_file["peak_bytes"]


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
        "**Idle CPU**",
        "**Where the CPU goes**",
        "Target p99 ≤ 500 ms",
        "**Against the limit**",
        "**Flat: the target is met.**",
        "projector (shared)",
        "all five + projector",
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
