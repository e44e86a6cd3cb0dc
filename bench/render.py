"""Render docs/performance.md from bench/results.json (what `python -m bench` writes).

.venv/bin/python -m bench.render            # rewrite docs/performance.md
.venv/bin/python -m bench.render --check    # exit 1 if docs/performance.md is not what the results give
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "performance.md"

PROJECTION_NAMES = ("customer_orders", "sales_analytics", "inventory", "customer_summary")
POLL_INTERVAL_MS = 100  # orders_local/projection_workers.py: the local pollers' wait between polls


# -- formatting -------------------------------------------------------------------------------------


def n(value: float, digits: int = 0) -> str:
    """1,234 / 1,234.5; whole numbers without decimals."""
    if digits == 0 or float(value).is_integer():
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:,.1f} ms"


def kb(value: float) -> str:
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:,.1f} MB"
    if value >= 1024:
        return f"{value / 1024:,.1f} KB"
    return f"{value:,.0f} B"


def dollars(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.3f}"


def times(value: float) -> str:
    return f"{value:,.1f}×" if value < 10 else f"{value:,.0f}×"


def requests_text(cost: Mapping[str, Any]) -> str:
    parts = ", ".join(
        f"{n(c, 2)} {name}" for name, c in sorted(cost["requests"].items(), key=lambda kv: -kv[1])
    )
    return f"{n(cost['total_requests'], 2)} ({parts})" if parts else "0"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ok(results: Mapping[str, Any], key: str) -> bool:
    return key in results and "error" not in results[key]


def _missing(results: Mapping[str, Any], key: str) -> str:
    if key not in results:
        return "_Not measured in this run._\n"
    return f"_This section failed in this run: {results[key]['error']}._\n"


# -- the gaps to the limits -------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    id: str
    area: str
    what: str
    ours: str
    limit: str
    ratio: float
    remedy: str


REMEDIES = {
    "projections_quiet": (
        "Most of it is per batch, not per record: each batch reads the control row (which generations "
        "to write) and writes the lag row, and recomputes each summary it touches by querying the whole "
        "partition. When commands trickle in, every batch holds one record and pays all of it. Close it "
        "with a batching window on the event source mappings (`MaximumBatchingWindowInSeconds` of 1–5 s: "
        "full batches at low traffic, lag bounded by the window), by caching the control row for a "
        "bounded time (the rebuild's Begin step then waits out that bound before exporting), and by "
        "publishing lag as an EMF metric instead of a DynamoDB write."
    ),
    "projections_busy": (
        "Exactness costs writes the limit does not make: every (order, day), (order, product) and "
        "(order, customer) contribution is its own guarded `UpdateItem`, each summary is rewritten per "
        "batch, and the order view also writes its GSI. Folding a batch's contributions per partition "
        "into one guarded write (the applied-commit set per partition instead of per source row) and "
        "maintaining summaries by deltas under the revision guard, instead of re-reading the partition, "
        "would bring writes near one per row touched and reads near zero."
    ),
    "summary_growth": (
        "The day's sales summary is recomputed from every contribution row of the day on every batch "
        "(a strongly consistent Query): read units per batch grow with the day's orders. Keep running "
        "totals in the summary row (deltas applied under the revision guard) and re-derive only the "
        "top-10 list from a bounded per-product counter set."
    ),
    "cold_start": (
        "Nothing ships as bytecode (the assets exclude `__pycache__`, the layer is built with "
        "`--no-compile`, and /var/task and /opt are read-only), so every cold start compiles Powertools, "
        "pydantic and our modules from source; with bytecode the same import takes about half. Build both "
        "layers with `.pyc` compiled by the runtime's Python (3.14), and import lazily what a function "
        "does not use (`orders_core.bootstrap` pulls the projections and rebuild modules into the "
        "command and query functions)."
    ),
    "new_order_units": (
        "The new-order commit is just over 1 KB (three events, each repeating the order id, plus "
        "uuids and a SHA-256 fingerprint), so it costs 2 write units; compressed it fits in one. "
        "Store the events attribute compressed (binary), or drop the fields every event repeats."
    ),
    "cold_command": (
        "A cold instance reads the snapshot table, then the events after the snapshot, then writes. "
        "Keeping snapshots in the events table's partition (sort key after the commits, e.g. a "
        "`snapshot#` prefix) would let one Query, newest first, return the snapshot and the commits "
        "after it: two requests instead of three, and short streams would pay no extra Query."
    ),
    "local_overhead": (
        "Locally the whole path (HTTP, the gateway's JWT check, Powertools routing and validation, "
        "JSON logs) runs in the moto server's process and shares its interpreter lock; on AWS these "
        "run in separate, parallel functions. Only the local run pays this; it does not move the AWS bill."
    ),
    "local_lag": (
        "Locally one process runs moto, the API and four pollers; each poller sleeps 100 ms after "
        "an empty poll and the sales and inventory summaries re-query their partitions (moto scans "
        "the whole table for a Query), so the lag grows with the day's orders. On AWS each "
        "projection is its own function polled by the event source mapping."
    ),
    "local_rebuild": (
        "The export, the shuffle through S3 objects and the workflow's fixed waits come on top of "
        "the row writes; on AWS the apply runs in parallel workers (ADR 9)."
    ),
    "aggregate_load": (
        "A cold load reads the snapshot and up to an interval of events after it: bounded, but more "
        "than the state alone. Smaller intervals for long streams trade snapshot writes for reads; "
        "a snapshot stored with the latest commit's partition (see the cold command) saves the request."
    ),
}


def gaps(results: Mapping[str, Any]) -> list[Gap]:
    found: list[Gap] = []
    if _ok(results, "commands"):
        s = {x["id"]: x for x in results["commands"]["scenarios"]}
        new = s["new_order"]
        found.append(
            Gap(
                "new_order_units",
                "write path",
                "New order: write units",
                n(new["ours"]["write_units"]),
                n(new["limit"]["write_units"]),
                new["ours"]["write_units"] / new["limit"]["write_units"],
                REMEDIES["new_order_units"],
            )
        )
        cold = s["cold_snapshots_none_yet"]
        found.append(
            Gap(
                "cold_command",
                "write path",
                "Command on a cold aggregate (snapshots on): requests",
                n(cold["ours"]["total_requests"]),
                n(cold["limit"]["total_requests"]),
                cold["ours"]["total_requests"] / cold["limit"]["total_requests"],
                REMEDIES["cold_command"],
            )
        )
    if _ok(results, "projections"):
        for mode, label in (("quiet", "quiet stream"), ("busy", "busy stream")):
            p = results["projections"][mode]["per_100_records"]
            found.append(
                Gap(
                    f"projections_{mode}",
                    "read side",
                    f"Projections, {label}: requests per 100 records",
                    n(p["ours"]["total_requests"]),
                    n(p["limit"]["total_requests"]),
                    p["ours"]["total_requests"] / p["limit"]["total_requests"],
                    REMEDIES[f"projections_{mode}"],
                )
            )
    if _ok(results, "cold_start"):
        deployed = results["cold_start"]["as_deployed"]
        boto3 = deployed["boto3"]["median_ms"]
        command = deployed["command_api"]["median_ms"]
        found.append(
            Gap(
                "cold_start",
                "cold start",
                "Command function: handler import as deployed ÷ `import boto3`",
                ms(command),
                ms(boto3),
                command / boto3,
                REMEDIES["cold_start"],
            )
        )
    if _ok(results, "e2e"):
        level = _e2e_level(results["e2e"]["command_path"]["levels"], 4)
        found.append(
            Gap(
                "local_overhead",
                "local run",
                f"Local commands/s vs raw conditional puts/s ({level['clients']} clients, command path)",
                n(level["ours"]["per_second"]),
                n(level["raw_puts"]["per_second"]),
                level["raw_puts"]["per_second"] / level["ours"]["per_second"],
                REMEDIES["local_overhead"],
            )
        )
    if _ok(results, "e2e"):
        lag = results["e2e"]["lag"]
        found.append(
            Gap(
                "local_lag",
                "local run",
                "Projection lag p50 vs half the pollers' wait",
                ms(lag["p50_ms"]),
                ms(POLL_INTERVAL_MS / 2),
                lag["p50_ms"] / (POLL_INTERVAL_MS / 2),
                REMEDIES["local_lag"],
            )
        )
    if _ok(results, "rebuild") and results["rebuild"].get("limit_events_per_second"):
        r = results["rebuild"]
        found.append(
            Gap(
                "local_rebuild",
                "local run",
                "Rebuild events/s vs its row writes at raw puts/s",
                n(r["events_per_second"]),
                n(r["limit_events_per_second"]),
                r["limit_events_per_second"] / r["events_per_second"],
                REMEDIES["local_rebuild"],
            )
        )
    if _ok(results, "aggregate_load"):
        rows = results["aggregate_load"]["results"]
        longest = max(r["events"] for r in rows)
        newest = next((r for r in rows if r["events"] == longest and r["snapshots"] == "newest"), None)
        if newest:
            found.append(
                Gap(
                    "aggregate_load",
                    "write path",
                    f"Cold load of a {n(longest)}-event stream with a snapshot: read units",
                    n(newest["read_units"], 1),
                    n(newest["limit_read_units"], 1),
                    newest["read_units"] / max(newest["limit_read_units"], 0.5),
                    REMEDIES["aggregate_load"],
                )
            )
    return sorted(found, key=lambda g: -g.ratio)


def _e2e_level(levels: Sequence[Mapping[str, Any]], clients: int) -> Mapping[str, Any]:
    return next((x for x in levels if x["clients"] == clients), levels[-1])


def largest_by_area(
    found: Sequence[Gap], count: int = 2, exclude: Sequence[str] = ("local run",)
) -> list[Gap]:
    """The largest gap of each area, largest first; the local run's is not an AWS cost."""
    best: dict[str, Gap] = {}
    for gap in found:
        if gap.area not in exclude and gap.area not in best:
            best[gap.area] = gap
    return sorted(best.values(), key=lambda g: -g.ratio)[:count]


# -- sections ---------------------------------------------------------------------------------------


def intro(results: Mapping[str, Any]) -> str:
    meta = results.get("meta", {})
    env = meta.get("environment", {})
    minutes = (meta.get("seconds") or 0) / 60
    small = meta.get("mode") == "small"
    small_note = (
        "\n\n**This is the small (CI) run: its figures are not the published ones.**" if small else ""
    )
    return f"""# Performance

_Generated by `{meta.get("command", "make bench")}` (`.venv/bin/python -m bench`) from
`bench/results.json`; do not edit by hand. `make bench` runs everything at full size (under 15
minutes on 2 cores) and rewrites both; `.venv/bin/python -m bench.render` only re-renders._{small_note}

Measured {meta.get("generated_at", "?")} at commit `{meta.get("git_commit", "?")}`
on {env.get("cpus", "?")} CPUs ({env.get("platform", "?")}, {env.get("machine", "?")}),
Python {env.get("python", "?")}, moto {env.get("moto", "?")}, boto3 {env.get("boto3", "?")},
Powertools {env.get("aws-lambda-powertools", "?")}, pydantic {env.get("pydantic", "?")};
the whole run took {minutes:.1f} minutes.

**What is counted.** A serverless event store is billed by requests and capacity units, so those
are the figures here: requests counted at the boto3 level (a botocore `before-call` hook on each
client) and capacity units computed from item sizes by DynamoDB's rules (`bench/capacity.py`:
writes ⌈size / 1 KB⌉ per item, the larger of before and after, 2× in a transaction, one more
per global index entry; reads ⌈bytes / 4 KB⌉ per consistent read, Query summed per page, half
when eventually consistent), because moto's ConsumedCapacity is fake. Times are moto's on this
machine: they show how cost grows and ratios measured in the same run, never DynamoDB latency.

**Baselines** are real code run on the same moto in the same run (`bench/naive.py`): a naive
event store that writes one item per event in a `TransactWriteItems` and loads a stream by
reading every event, with no cache and no snapshots; and a naive projection that makes one
`UpdateItem` per event per row it touches. **Limits** are the physical floors: one write
request per command, of the commit with its events compressed, and nothing read; one read of
the current state to load an aggregate; one write per read-model row a batch changes, and no
read, to project; `import boto3` for a cold start; raw conditional puts on the same endpoint
for local throughput.
"""


def headline(results: Mapping[str, Any]) -> str:
    rows: list[list[str]] = []
    if _ok(results, "commands"):
        s = {x["id"]: x for x in results["commands"]["scenarios"]}

        def cmd(scenario: str, label: str) -> None:
            x = s[scenario]
            o, v, lim = x["ours"], x["naive"], x["limit"]
            rows.append(
                [
                    label,
                    f"{n(o['total_requests'])} req, {n(o['write_units'])} WCU, {n(o['read_units'], 1)} RCU",
                    f"{n(v['total_requests'])} req, {n(v['write_units'])} WCU, {n(v['read_units'], 1)} RCU",
                    f"{n(lim['total_requests'])} req, {n(lim['write_units'])} WCU",
                    times(o["total_requests"] / lim["total_requests"])
                    + " req, "
                    + times(o["write_units"] / lim["write_units"])
                    + " WCU",
                ]
            )

        cmd("new_order", "New order")
        cmd("warm", "Command on a warm aggregate")
        cmd("cold_snapshots_none_yet", "Command on a cold aggregate (typical order, snapshots on)")
        cmd("cold_long_snapshot", s["cold_long_snapshot"]["label"].replace("Cold aggregate, ", "Cold, "))
        cmd("conflict", "Conflict and retry")
    if _ok(results, "aggregate_load"):
        agg = results["aggregate_load"]["results"]
        longest = max(r["events"] for r in agg)
        by = {r["snapshots"]: r for r in agg if r["events"] == longest}
        if "newest" in by and "naive (item per event)" in by:
            o, v = by["newest"], by["naive (item per event)"]
            rows.append(
                [
                    f"Load a {n(longest)}-event aggregate (newest snapshot)",
                    f"{n(o['total_requests'])} req, {kb(o['bytes_read'])}, {n(o['read_units'])} RCU",
                    f"{n(v['total_requests'])} req, {kb(v['bytes_read'])}, {n(v['read_units'])} RCU",
                    f"1 req, {kb(o['state_bytes'])}, {n(o['limit_read_units'])} RCU",
                    times(o["read_units"] / max(o["limit_read_units"], 0.5)) + " RCU",
                ]
            )
    if _ok(results, "projections"):
        for mode, label in (("busy", "batches of 100"), ("quiet", "batches of 1")):
            p = results["projections"][mode]["per_100_records"]
            rows.append(
                [
                    f"Projections per 100 stream records, {label}",
                    f"{n(p['ours']['total_requests'])} req ({n(p['ours']['write_requests'])} writes), "
                    f"{n(p['ours']['write_units'])} WCU, {n(p['ours']['read_units'])} RCU",
                    f"{n(p['naive']['total_requests'])} req, {n(p['naive']['write_units'])} WCU",
                    f"{n(p['limit']['total_requests'])} req, {n(p['limit']['write_units'])} WCU",
                    times(p["ours"]["total_requests"] / p["limit"]["total_requests"]) + " req",
                ]
            )
    if _ok(results, "cold_start"):
        c = results["cold_start"]
        deployed, compiled = c["as_deployed"], c["with_bytecode"]
        boto3 = deployed["boto3"]["median_ms"]
        for package in ("command_api", "projections"):
            rows.append(
                [
                    f"Cold start: `{package}.handler` import (as deployed; with bytecode)",
                    f"{ms(deployed[package]['median_ms'])}; {ms(compiled[package]['median_ms'])}",
                    "—",
                    f"{ms(boto3)} (`import boto3`)",
                    times(deployed[package]["median_ms"] / boto3),
                ]
            )
    if _ok(results, "e2e"):
        e = results["e2e"]
        level = _e2e_level(e["command_path"]["levels"], 4)
        with_proj = _e2e_level(e["with_projections"]["levels"], 4)
        rows.append(
            [
                f"Local commands/s, {level['clients']} clients (command path; with projections)",
                f"{n(level['ours']['per_second'])}; {n(with_proj['ours']['per_second'])}",
                "—",
                f"{n(level['raw_puts']['per_second'])} raw puts/s",
                times(level["raw_puts"]["per_second"] / level["ours"]["per_second"]) + " slower",
            ]
        )
        lag = e["lag"]
        rows.append(
            [
                "Projection lag, write to visible (p50 / p99)",
                f"{ms(lag['p50_ms'])} / {ms(lag['p99_ms'])}",
                "—",
                f"≥ {ms(POLL_INTERVAL_MS / 2)} (half the pollers' {POLL_INTERVAL_MS} ms wait)",
                times(lag["p50_ms"] / (POLL_INTERVAL_MS / 2)) + " (p50)",
            ]
        )
    if _ok(results, "rebuild"):
        r = results["rebuild"]
        limit = r.get("limit_events_per_second")
        rows.append(
            [
                f"Rebuild, {n(r['events'])} events (local, moto)",
                f"{n(r['events_per_second'])} events/s",
                "—",
                f"{n(limit)} events/s (its row writes at raw puts/s)" if limit else "—",
                times(limit / r["events_per_second"]) + " slower" if limit else "—",
            ]
        )
    if "on_paper" in results:
        cost = results["on_paper"]["per_million_commands"]
        rows.append(
            [
                "On paper: per million commands (AWS, steady mix)",
                dollars(cost["ours"]["total_dollars"]),
                dollars(cost["naive"]["total_dollars"]),
                dollars(cost["limit"]["total_dollars"]),
                times(cost["ours"]["total_dollars"] / cost["limit"]["total_dollars"]),
            ]
        )
        for mode, label in (("busy", "busy stream"), ("quiet", "quiet stream")):
            ev = results["on_paper"]["per_million_events"][mode]
            rows.append(
                [
                    f"On paper: per million projected events ({label})",
                    dollars(ev["ours"]["total_dollars"]),
                    dollars(ev["naive"]["total_dollars"]),
                    dollars(ev["limit"]["total_dollars"]),
                    times(ev["ours"]["total_dollars"] / ev["limit"]["total_dollars"]),
                ]
            )
    return (
        "## Headline figures\n\n"
        + table(["Figure", "Ours", "Naive baseline", "Limit", "Ours ÷ limit"], rows)
        + "\n"
    )


def commands_section(results: Mapping[str, Any]) -> str:
    text = "## 1. Requests and capacity per command\n\n"
    if not _ok(results, "commands"):
        return text + _missing(results, "commands")
    c = results["commands"]
    rows = []
    for x in c["scenarios"]:
        o, v, lim = x["ours"], x["naive"], x["limit"]
        rows.append(
            [
                x["label"] + (f"; {x['note']}" if x.get("note") else ""),
                requests_text(o),
                n(o["write_units"]),
                n(o["read_units"], 1),
                requests_text(v),
                n(v["write_units"]),
                n(v["read_units"], 1),
                f"1 PutItem, {n(lim['write_units'])} WCU",
                f"{n(x['commit_bytes'])} B ({n(x['compressed_commit_bytes'])} B compressed)",
            ]
        )
    header = [
        "Command",
        "Ours: requests",
        "WCU",
        "RCU",
        "Naive: requests",
        "WCU",
        "RCU",
        "Limit",
        "Commit item",
    ]
    return (
        text + "The real command service on moto with a counted client, beside the naive service on the same "
        "history (`bench/command_cost.py`). Ids are shaped as the API makes them (uuids, a Cognito sub, "
        "a SHA-256 request fingerprint). Snapshots every "
        f"{c['snapshot_every']} events. RCU are strongly consistent read units, WCU write units.\n\n"
        + table(header, rows, "l" + "r" * 8)
        + "\n\n"
        "- A warm command is one `PutItem` of one item, as the limit: the cache and the commit item "
        "(ADR 1, ADR 3) remove the read and the per-event items the naive store pays for.\n"
        "- The crossing of a snapshot interval adds one unconditional `PutItem` of the whole state "
        "(with its last 100 command ids), once every interval: its write units are the snapshot's size.\n"
        "- The naive store's transaction costs two write units per event item and it reads the whole "
        "stream before every command; on a conflict it reads it again.\n"
    )


def aggregate_section(results: Mapping[str, Any]) -> str:
    text = "## 2. Aggregate load as the stream grows\n\n"
    if not _ok(results, "aggregate_load"):
        return text + _missing(results, "aggregate_load")
    a = results["aggregate_load"]
    rows = []
    for size in sorted({r["events"] for r in a["results"]}):
        group = [r for r in a["results"] if r["events"] == size]
        for r in group:
            start = f"snapshot at {n(r['snapshot_version'])}" if r["snapshot_version"] else "event 1"
            requests = ", ".join(f"{c} {name}" for name, c in sorted(r["requests"].items()))
            rows.append(
                [
                    n(size),
                    "ours, " + r["snapshots"]
                    if not r["snapshots"].startswith("naive")
                    else "naive: item per event",
                    f"{r['total_requests']} ({requests})",
                    n(r["bytes_read"]),
                    n(r["read_units"]),
                    f"{start} ({n(r['events_folded'])} events)",
                    ms(r["milliseconds"]),
                ]
            )
        rows.append(
            [
                n(size),
                "limit: one read of the state",
                "1 (GetItem)",
                n(group[0]["state_bytes"]),
                n(group[0]["limit_read_units"]),
                "—",
                "—",
            ]
        )
    return (
        text + "Orders built through the real command service (the 200-line cap lifted), loaded cold by a "
        "fresh service (`bench/aggregate_load.py`); bytes are the returned items' sizes, what read "
        f"units are billed on; snapshot every {a['snapshot_every']} events; time is the median of "
        'three loads on moto. "One interval older" is the worst case: just short of the next '
        "snapshot. The limit reads the state alone: the size of the snapshot item it makes.\n\n"
        + table(
            ["Events", "Load", "Requests", "Bytes read", "RCU", "Folded from", "Local time"], rows, "rlrrrlr"
        )
        + "\n\nWithout snapshots the cost grows with the stream (one Query page per MB); with them it is "
        "two requests and at most an interval of events whatever the length, so a long stream costs "
        "the state's size plus a bounded tail.\n"
    )


def projections_section(results: Mapping[str, Any]) -> str:
    text = "## 3. Projection cost per 100 stream records\n\n"
    if not _ok(results, "projections"):
        return text + _missing(results, "projections")
    p = results["projections"]
    busy_workload = p["busy"]["workload"]
    text += (
        "A realistic mix written through the command service (stock and reorder levels for "
        f"{busy_workload['products']} products; orders of 1–3 lines by {busy_workload['customers']} "
        "customers, 40% add an "
        "item, 30% shipped, 15% cancelled), delivered from the events stream to the four live "
        "projections by the local event source mapping, each with a counted client "
        "(`bench/projection_cost.py`). A stream record is one commit. Ours includes each batch's "
        "control-row read and lag write. The naive projection makes one `UpdateItem` per event per "
        "row (it reads nothing and is not exact under redelivery: a cheap baseline). The limit writes "
        "each row a batch changes once (at least one write unit, at the row's final size) and reads "
        "nothing.\n\n"
    )
    for mode, title in (
        ("busy", "Busy stream: the backlog in batches of 100 (the stack's batch size)"),
        ("quiet", "Quiet stream: one record per batch (commands trickling in; no batching window)"),
    ):
        d = p[mode]
        w = d["workload"]
        rows = []
        for name in PROJECTION_NAMES:
            x = d["projections"][name]
            o, v, lim = x["ours"], x["naive"], x["limit"]
            rows.append(
                [
                    f"`{name}`",
                    n(o["write_requests"], 1),
                    n(o["read_requests"], 1),
                    n(o["write_units"], 1),
                    n(o["read_units"], 1),
                    n(v["write_requests"], 1),
                    n(v["write_units"], 1),
                    n(lim["write_requests"], 1),
                    n(lim["write_units"], 1),
                ]
            )
        t = d["per_100_records"]
        rows.append(
            [
                "**all four**",
                f"**{n(t['ours']['write_requests'], 1)}**",
                f"**{n(t['ours']['read_requests'], 1)}**",
                f"**{n(t['ours']['write_units'], 1)}**",
                f"**{n(t['ours']['read_units'], 1)}**",
                f"**{n(t['naive']['write_requests'], 1)}**",
                f"**{n(t['naive']['write_units'], 1)}**",
                f"**{n(t['limit']['write_requests'], 1)}**",
                f"**{n(t['limit']['write_units'], 1)}**",
            ]
        )
        header = [
            "Projection",
            "Ours: writes",
            "reads",
            "WCU",
            "RCU",
            "Naive: writes",
            "WCU",
            "Limit: writes",
            "WCU",
        ]
        text += (
            f"**{title}**: {n(w['orders'])} orders, {n(w['records'])} records, {n(w['events'])} events.\n\n"
            + table(header, rows)
            + "\n\n"
        )
    growth = []
    for name in ("sales_analytics", "inventory", "customer_summary"):
        x = p["busy"]["projections"][name]
        part = p["busy"]["partitions"].get(name, {})
        growth.append(
            f"`{name}` {n(x['first_batch']['read_units'], 1)} → {n(x['last_batch']['read_units'], 1)} "
            f"(largest partition at the end: {n(part.get('largest_rows', 0))} rows, "
            f"{kb(part.get('largest_bytes', 0))})"
        )
    text += (
        "**How it grows.** Read units per 100 records in the first full batch → the last, busy stream: "
        + "; ".join(growth)
        + ". Each summary is recomputed from every contribution row of its partition (a strongly "
        "consistent Query per batch): the day's sales read more with every order of the day.\n"
    )
    return text


def cold_start_section(results: Mapping[str, Any]) -> str:
    text = "## 4. Cold start\n\n"
    if not _ok(results, "cold_start"):
        return text + _missing(results, "cold_start")
    c = results["cold_start"]
    deployed, compiled = c["as_deployed"], c["with_bytecode"]
    sizes = c["sizes"]
    boto3 = deployed["boto3"]["median_ms"]
    rows = []
    for package, size in sizes["functions"].items():
        top = ", ".join(f"{name} {ms(t)}" for name, t in list(deployed[package]["by_package_ms"].items())[:3])
        rows.append(
            [
                f"`{package}`",
                ms(deployed[package]["median_ms"]),
                ms(compiled[package]["median_ms"]),
                times(deployed[package]["median_ms"] / boto3),
                top,
                kb(size["code"]["unzipped"]),
                f"{kb(size['total_unzipped'])} ({kb(size['total_zipped'])} zipped)",
            ]
        )
    rows.append(["`import boto3` alone", ms(boto3), ms(compiled["boto3"]["median_ms"]), "1.0×", "", "", ""])
    deps = sizes.get("deps_layer")
    layer_text = (
        f"core layer {kb(sizes['core_layer']['unzipped'])}, dependencies layer "
        f"{kb(deps['unzipped'])} ({', '.join(sizes['deps_layer_distributions'])})"
        if deps
        else f"core layer {kb(sizes['core_layer']['unzipped'])}; {sizes['note']}"
    )
    return (
        text
        + f"`python -X importtime` of each handler module in fresh interpreters with Lambda's `sys.path` "
        f"(function package, core layer, dependencies layer, the runtime's boto3; `-I -S`), median of "
        f'{c["runs"]} (`bench/cold_start.py`), Python {c["python"]} here (Lambda runs 3.14). "As deployed" '
        "has no bytecode for our code and the layers (nothing ships it and Lambda's code directories are "
        'read-only, so every cold start compiles them); "with bytecode" is the same after `compileall`. '
        "The runtime's boto3 has its bytecode in both. The third column is where the as-deployed time "
        f"goes (self time by package). Sizes: the function's package plus both layers ({layer_text}); "
        f"Lambda allows {kb(sizes['lambda_unzipped_limit'])} unzipped.\n\n"
        + table(
            [
                "Function",
                "As deployed",
                "With bytecode",
                "÷ boto3",
                "Largest shares (as deployed)",
                "Code",
                "Code + layers",
            ],
            rows,
            "lrrrlrr",
        )
        + "\n"
    )


def e2e_section(results: Mapping[str, Any]) -> str:
    text = "## 5. Local end-to-end throughput and projection lag\n\n"
    if not _ok(results, "e2e"):
        return text + _missing(results, "e2e")
    e = results["e2e"]
    rows = []
    for with_p, alone in zip(e["with_projections"]["levels"], e["command_path"]["levels"], strict=True):
        rows.append(
            [
                str(alone["clients"]),
                f"{n(alone['ours']['per_second'])} (p50 {ms(alone['ours']['latency_p50_ms'])})",
                f"{n(alone['raw_puts']['per_second'])}",
                f"{alone['ratio']:.2f}",
                f"{n(with_p['ours']['per_second'])} (p50 {ms(with_p['ours']['latency_p50_ms'])})",
                f"{n(with_p['raw_puts']['per_second'])}",
                f"{with_p['ratio']:.2f}",
            ]
        )
    lag = e["lag"]
    return (
        text
        + "Through the local HTTP server in a separate process (`bench/e2e.py`), N clients on keep-alive "
        f"connections, {e['command_mix']}; every command is one conditional `PutItem`. Beside it, raw "
        "conditional `PutItem`s of a commit-sized item on the same moto endpoint from as many threads, "
        'in the same run. "Command path" is the same server without its stream pollers; "`orders serve`" '
        "runs the four projections in the server's process, as users run it (on AWS they run in other "
        "functions).\n\n"
        + table(
            [
                "Clients",
                "Command path: commands/s",
                "Raw puts/s",
                "Ratio",
                "`orders serve`: commands/s",
                "Raw puts/s",
                "Ratio",
            ],
            rows,
        )
        + f"\n\n**Projection lag** (`orders serve`, one order at a time, from the command's answer to the "
        f"first `GET /orders/{{id}}` that shows it, polled every {lag['poll_interval_ms']:.0f} ms; "
        f"{lag['orders']} orders): p50 {ms(lag['p50_ms'])}, p99 {ms(lag['p99_ms'])}, "
        f"mean {ms(lag['mean_ms'])}. "
        "The local pollers wait 100 ms between empty polls; Lambda polls a shard about four times a second.\n"
    )


def rebuild_section(results: Mapping[str, Any]) -> str:
    text = "## 6. Rebuild throughput\n\n"
    if not _ok(results, "rebuild"):
        return text + _missing(results, "rebuild")
    r = results["rebuild"]
    phases = ", ".join(f"{name} at {t:.1f} s" for name, t in r["phases_reached_at_seconds"].items())
    floor = (
        f"The apply writes one row per order ({n(r['rows_written'])} rows); at the "
        f"{n(r['raw_puts_per_second'])} conditional puts a second that moto takes in this process "
        "(measured after the run), the "
        f"rows alone bound the run at {n(r['limit_events_per_second'])} events/s: the rest is the "
        "export, the shuffle through S3 objects and the workflow's waits. "
        if r.get("limit_events_per_second")
        else "Bounded by moto's conditional writes in one Python process, not by the workflow. "
    )
    return text + (
        f"`{r['projection']}` rebuilt from {n(r['events'])} events ({n(r['commits'])} commits) through "
        "`workflows/rebuild.asl.json` on moto's Step Functions with the in-process worker "
        f"(`bench/rebuild_throughput.py`): **{n(r['seconds'], 1)} s, "
        f"{n(r['events_per_second'])} events/s** end "
        f"to end (phases reached: {phases}). {floor}ADR 9 has the estimate for 100 million events on "
        "AWS (45–60 minutes).\n"
    )


def on_paper_section(results: Mapping[str, Any]) -> str:
    text = "## 7. On paper: AWS cost and the hot-stream limit\n\n"
    if "on_paper" not in results:
        return text + "_Needs the command and projection sections._\n"
    o = results["on_paper"]
    prices, a = o["prices"], o["assumptions"]
    text += (
        f"**Prices (assumptions)**: {prices['basis']}. "
        f"Lambda arm64 ${prices['lambda_per_gb_second_arm64']:.10f} "
        f"per GB-second and ${prices['lambda_per_million_requests']:.2f} per million requests; HTTP API "
        f"${prices['http_api_per_million_requests']:.2f} per million requests; DynamoDB on-demand "
        f"${prices['dynamodb_per_million_write_units']} per million write request units and "
        f"${prices['dynamodb_per_million_read_units']} per million read request units; storage "
        f"${prices['dynamodb_storage_per_gb_month']} per GB-month (not below: about a kilobyte per "
        "command, a quarter of a dollar a month per million commands kept); DynamoDB Streams reads by "
        "Lambda are free.\n\n"
        f"**Assumptions**: {a['memory_gb'] * 1024:.0f} MB functions; billed duration = "
        f"{a['invocation_ms']:.0f} ms + {a['dynamodb_request_ms']:.0f} ms per DynamoDB request "
        f"(+ {a['projection_record_ms']} ms per record in a batch), rounded up to the millisecond; "
        "command mix "
        + ", ".join(f"{share:.0%} {name.replace('_', ' ')}" for name, share in a["command_mix"].items())
        + " (per-command requests and units from section 1); projected events as measured in section 3 "
        "(busy: full batches of 100; quiet: one record per batch), four projections. Cold starts, the "
        "query side and the rebuild are not included.\n\n"
    )
    rows = []
    for variant, label in (("ours", "Ours"), ("naive", "Naive baseline"), ("limit", "Limit")):
        x = o["per_million_commands"][variant]
        d = x["dollars"]
        rows.append(
            [
                label,
                n(x["requests_per_command"], 2),
                n(x["write_units_per_command"], 2),
                n(x["read_units_per_command"], 2),
                dollars(d["api_gateway"]),
                dollars(d["lambda"]),
                dollars(d["dynamodb_writes"] + d["dynamodb_reads"]),
                f"**{dollars(x['total_dollars'])}**",
            ]
        )
    text += (
        "**Per million commands**\n\n"
        + table(
            ["", "Requests/command", "WCU/command", "RCU/command", "HTTP API", "Lambda", "DynamoDB", "Total"],
            rows,
        )
        + "\n\n"
    )
    rows = []
    for mode in ("busy", "quiet"):
        ev = o["per_million_events"][mode]
        for variant, label in (("ours", "Ours"), ("naive", "Naive baseline"), ("limit", "Limit")):
            x = ev[variant]
            d = x["dollars"]
            rows.append(
                [
                    f"{mode}: {label}",
                    n(x["requests_per_event"], 2),
                    n(ev["invocations"]),
                    dollars(d["lambda"]),
                    dollars(d["dynamodb_writes"]),
                    dollars(d["dynamodb_reads"]),
                    f"**{dollars(x['total_dollars'])}**",
                ]
            )
    text += (
        "**Per million projected events** (all four read models)\n\n"
        + table(
            ["", "Requests/event", "Invocations", "Lambda", "DynamoDB writes", "DynamoDB reads", "Total"],
            rows,
        )
        + "\n\n"
    )
    h = o["hot_stream"]
    text += (
        "**Hot-stream limit.** All of a stream's commits share one partition key, so one stream can take "
        f"at most {n(h['partition_write_units_per_second'])} write units a second (DynamoDB's per-partition "
        f"limit): at {n(h['write_units_per_warm_command'])} WCU per warm command, "
        f"**{n(h['commands_per_second_per_stream_by_partition'])} commands a second on one order or "
        "product**. "
        "Optimistic concurrency binds first: a stream's commands are ordered by version, so one writer "
        f"at a time gets about one command per round trip (~{n(h['round_trip_ms'])} ms: "
        f"**~{n(h['commands_per_second_per_stream_by_round_trip'])} a second**), and concurrent writers on "
        "the same stream conflict and retry (three requests each, section 1). An order sees a handful of "
        "commands in its life; a product's stock stream is the one that could get hot. On the read side "
        "the day's sales partition is the hot spot: every order of the day writes a contribution there, "
        f"and each batch re-reads all of them (about {n(h['sales_bytes_per_order'])} B per order): at "
        f"{h['batches_per_second']} batches a second the partition's "
        f"{n(a['partition_read_units_per_second'])} read units a second are spent at about "
        f"**{n(h['sales_orders_per_day_at_partition_read_limit'])} orders in a day**.\n"
    )
    return text


def growth_note(results: Mapping[str, Any]) -> str:
    """How the sales summary's reads grow over the busy stream (not a gap to a limit: a trend)."""
    if not _ok(results, "projections"):
        return ""
    sales = results["projections"]["busy"]["projections"]["sales_analytics"]
    part = results["projections"]["busy"]["partitions"].get("sales_analytics", {})
    return (
        "It grows with the day: the sales projection read "
        f"{n(sales['first_batch']['read_units'], 1)} read units per 100 records in the first batch and "
        f"{n(sales['last_batch']['read_units'], 1)} in the last, when the day "
        f"held {n(part.get('largest_rows', 0))} rows."
    )


def gaps_section(results: Mapping[str, Any]) -> str:
    found = gaps(results)
    if not found:
        return ""
    rows = [[g.area, g.what, g.ours, g.limit, times(g.ratio)] for g in found]
    top = largest_by_area(found)
    text = (
        "## Gaps to the limits\n\n"
        "Every figure above that has a limit, largest ratio first.\n\n"
        + table(["Area", "Figure", "Ours", "Limit", "Ratio"], rows, "llrrr")
        + "\n\n### The two largest gaps, and what would close them\n\n"
    )
    for number, gap in enumerate(top, 1):
        figure = f"{gap.what}, {gap.ours} against {gap.limit} ({times(gap.ratio)})"
        text += f"{number}. **{gap.area.capitalize()}: {figure}.** "
        text += gap.remedy + "\n"
        for other in (g for g in found if g.area == gap.area and g is not gap):
            figure = f"{other.what}, {other.ours} against {other.limit} ({times(other.ratio)})"
            text += f"   Same area: {figure}. {other.remedy}\n"
        if gap.area == "read side":
            text += f"   {growth_note(results)} {REMEDIES['summary_growth']}\n"
    text += (
        "\nThe warm command already sits at its limit (one request, one item). The local run's gaps "
        "(throughput against raw puts, lag, rebuild) come from running moto, the API and the "
        "projections in one process on two cores; they do not move the AWS bill.\n"
    )
    return text


def os_cpus(meta: Mapping[str, Any]) -> str:
    return str(meta.get("environment", {}).get("cpus", "?"))


def reproduce(results: Mapping[str, Any]) -> str:
    meta = results.get("meta", {})
    seconds = meta.get("section_seconds", {})
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    loads = meta.get("load_average_after", {})
    load = ", ".join(f"{k} {v:.1f}" for k, v in loads.items())
    return (
        "## Reproduce\n\n"
        "```bash\n"
        "make bench        # every section at full size; writes bench/results.json and this page\n"
        "make bench-small  # the fast version (under a minute) into build/bench-small/; tests/bench runs it\n"
        ".venv/bin/python -m bench --only projections   # re-run sections, keep the others\n"
        ".venv/bin/python -m bench.render                # re-render this page from bench/results.json\n"
        "```\n\n"
        f"Seconds per section in this run: {timing}. Each section runs in its own interpreter and logs to "
        "`build/bench-logs/`."
        + (
            f" One-minute load average after each section ({os_cpus(meta)} CPUs; more than that means "
            f"other work shared the machine and skewed the timed sections): {load}."
            if load
            else ""
        )
        + "\n"
    )


SECTIONS: tuple[Callable[[Mapping[str, Any]], str], ...] = (
    intro,
    headline,
    commands_section,
    aggregate_section,
    projections_section,
    cold_start_section,
    e2e_section,
    rebuild_section,
    on_paper_section,
    gaps_section,
    reproduce,
)


def render(results: Mapping[str, Any]) -> str:
    parts = [section(results).strip() for section in SECTIONS]
    return "\n\n".join(p for p in parts if p) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the page is stale")
    args = parser.parse_args(argv)
    text = render(json.loads(args.results.read_text(encoding="utf-8")))
    if args.check:
        current = args.docs.read_text(encoding="utf-8") if args.docs.exists() else ""
        if current != text:
            print(
                f"{args.docs} is not what {args.results} renders to: run `.venv/bin/python -m bench.render`"
            )
            return 1
        return 0
    args.docs.write_text(text, encoding="utf-8")
    print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
