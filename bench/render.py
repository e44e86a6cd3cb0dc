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

from bench.records import (
    NAIVE_LOAD,
    AggregateLoad,
    AggregateLoads,
    Assumptions,
    BenchResults,
    ColdStarts,
    CommandBill,
    CommandCosts,
    CommandScenario,
    CountedCost,
    DeploymentSizes,
    EndToEnd,
    EventBill,
    FunctionSize,
    GrowthPoint,
    HotStream,
    IdleCpu,
    LoadLevel,
    OnPaper,
    Prices,
    ProjectionCosts,
    ProjectionDelivery,
    ProjectionLag,
    RebuildFloor,
    RebuildThroughput,
    ShuffleMemory,
    SummaryGrowth,
    Variants,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "performance.md"

# The read models the benchmark covers, in registration order (orders_core.projections.registry;
# tests/bench checks that both agree and that the results hold each of them).
PROJECTION_NAMES = ("customer_orders", "sales_analytics", "inventory", "customer_summary", "product_sales")
# The read models kept by deltas (orders_core.projections.deltas): a row per source, summaries in
# shard rows, one transaction per batch.
SUMMARY_PROJECTIONS = ("sales_analytics", "inventory", "customer_summary", "product_sales")
# Runs that did not record the local poller's waits had pollers waiting 100 ms between polls.
OLD_POLL_INTERVAL_MS = 100.0
# The headline and the gaps quote local throughput at this many clients (or the last level run).
QUOTED_CLIENTS = 4

Row = list[str]


# -- formatting -------------------------------------------------------------------------------------


def number(value: float, digits: int = 0) -> str:
    """1,234 / 1,234.5; whole numbers without decimals."""
    if digits == 0 or float(value).is_integer():
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def ordinal(value: int) -> str:
    """100th, 101st, 100,000th."""
    suffix = "th" if value % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{value:,}{suffix}"


def milliseconds(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:,.1f} ms"


def byte_size(value: float) -> str:
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:,.1f} MB"
    if value >= 1024:
        return f"{value / 1024:,.1f} KB"
    return f"{value:,.0f} B"


def dollars(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.3f}"


def times(value: float) -> str:
    return f"{value:,.1f}×" if value < 10 else f"{value:,.0f}×"


def rows_text(count: int, what: str = "row") -> str:
    """`1 row`, `8 rows`."""
    return f"{number(count)} {what}{'' if count == 1 else 's'}"


def bold(text: str) -> str:
    return f"**{text}**"


def count_word(count: int) -> str:
    """`five` for 5: how many read models, in a sentence."""
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[count] if 0 <= count < len(words) else f"{count:,}"


def read_models_text(projections: ProjectionCosts) -> str:
    return f"{count_word(len(projections.read_models))} read models"


def requests_text(cost: CountedCost) -> str:
    """`2 (1 PutItem, 1 Query)`: the total, then each operation, most sent first."""
    most_sent_first = sorted(cost.requests.items(), key=lambda operation_count: -operation_count[1])
    parts = ", ".join(f"{number(count, 2)} {operation}" for operation, count in most_sent_first)
    return f"{number(cost.total_requests, 2)} ({parts})" if parts else "0"


def requests_and_write_units(cost: CountedCost) -> str:
    return f"{number(cost.total_requests)} req, {number(cost.write_units)} WCU"


def requests_and_units(cost: CountedCost) -> str:
    return f"{requests_and_write_units(cost)}, {number(cost.read_units, 1)} RCU"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table; `align` has a letter per column (l, r or c), by default `lrrr…`."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [_table_line(header), "|" + "|".join(marks[column] for column in align) + "|"]
    lines += [_table_line(row) for row in rows]
    return "\n".join(lines)


def _table_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# -- the gaps to the limits -------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A figure of ours beside its limit."""

    gap_id: str  # its remedy in REMEDIES
    area: str
    what: str
    ours: str
    limit: str
    ratio: float  # how far from the limit: 1 is at it

    @property
    def remedy(self) -> str:
        return REMEDIES[self.gap_id]

    @property
    def figure(self) -> str:
        return f"{self.what}, {self.ours} against {self.limit} ({ratio_text(self.ratio, 1)})"


REMEDIES = {
    "projections_quiet": (
        "A batch of one record pays each read model's per-batch work alone, but nothing is recomputed: "
        "a summary read model sends one `TransactWriteItems` (the source's row and the summary shards "
        "it changes), at most one write request per row the limit writes. Above the limit are reads: "
        "each read model's control row (kept 10 s), the projector's lists of parked streams (one Query "
        "per read model every 10 s: one partition holding every read model's parked streams would "
        "make it one Query), the customer summary's newest-wins key for a customer it meets first, "
        "and the order view's row, which it reads again for every later commit of an order (it keeps "
        "no cache, where the summaries keep their source rows)."
    ),
    "projections_busy": (
        "One `TransactWriteItems` writes up to 100 rows (every source row and summary shard a batch "
        "changes), where the limit counts a request per row; the order view's `PutItem` per order is "
        "the limit's own. The customer summary sends a transaction per customer of the batch (its "
        "newest-wins slot's condition is what concurrent writers contend for) and reads, in a request "
        "per transaction, the newest-wins key of each customer it meets first."
    ),
    "projections_busy_units": (
        "The units pay for exactness: every source whose state a batch changes is rewritten whole in "
        "its read model's transaction (an order has a source row in each of four read models; the "
        "limit keeps none), every item of a transaction costs two write units per KB (each at least "
        "1 KB), and a source adds to the revision of every summary it names, so a summary is written "
        "when its counters did not move. Fewer items would lower it, not smaller ones: a watermark per "
        "delivery lane on each summary instead of a row per source, at the price of the rebuild "
        "handing over per shard."
    ),
    "projections_quiet_units": (
        "Each record is a transaction of its own: its source row and the summary shards it changes, "
        "two write units per item, in each of four read models."
    ),
    "summary_growth": (
        "A summary is never re-read to be written: a batch adds the difference a source makes to one "
        "shard row of each summary (`orders_core.projections.deltas`), so what one more order costs "
        "does not depend on the day's or the product's orders so far."
    ),
    "summary_growth_grows": (
        "Summaries are kept by deltas (`orders_core.projections.deltas`) and should cost the same "
        "whatever the day holds: a growing figure means a batch reads something that grows with the "
        "summary (its shard rows, a source row that accumulates the day); section 3 shows which "
        "requests it sent."
    ),
    "cold_start": (
        "The assets carry bytecode compiled by the runtime's Python (infra/bytecode.py, ADR 13); what "
        "remains is pydantic and Powertools' resolver with validation (section 4's shares), which every "
        "HTTP function uses. Beyond that: Lambda SnapStart for Python (ADR 13 weighs it), or fewer "
        "pydantic models built at import."
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
        "Locally one process, moto's, serves every AWS request of the run under one interpreter lock, "
        "and everything shares two cores: a command costs its put, the gateway's and its instance's "
        "work, a Query when it reaches an instance that has not met the order, and what every stream "
        "reader does for it (the view's write, the summaries' transactions, the published events, the "
        "stream reads), in moto and in processes of their own (ADR 16). Section 5 measures it: several "
        "times a raw put's CPU, in moto and in all, which bounds the sustained ratio below the target "
        "whatever runs in parallel; even the command path alone is bounded near 0.5. Only a smaller "
        "command would close it: fewer or cheaper requests per command on the read side. Only the "
        "local run pays this; it does not move the AWS bill."
    ),
    "local_lag": (
        "Locally the projector's poller hands each batch to every read model in turn: a command waits "
        "behind the previous batch's order view and its four summary transactions, each applied by the "
        "one moto process that also serves the API's requests. On AWS the projector is its own "
        "function, polled by the event source mapping."
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


def gaps(results: BenchResults) -> list[Gap]:
    """Every figure that has a limit, largest ratio first."""
    found: list[Gap] = []
    if results.commands is not None:
        found += _command_gaps(results.commands)
    if results.projections is not None:
        found += _projection_gaps(results.projections)
    if results.cold_start is not None:
        found.append(_cold_start_gap(results.cold_start))
    if results.e2e is not None:
        found += _local_run_gaps(results.e2e)
    if results.rebuild is not None and results.rebuild.floor is not None:
        found.append(_rebuild_gap(results.rebuild, results.rebuild.floor))
    if results.aggregate_load is not None:
        found += _aggregate_load_gaps(results.aggregate_load)
    return sorted(found, key=lambda gap: -gap.ratio)


def largest_by_area(
    found: Sequence[Gap], count: int = 2, exclude: Sequence[str] = ("local run",)
) -> list[Gap]:
    """The largest gap of each area, largest first; the local run's is not an AWS cost."""
    best: dict[str, Gap] = {}
    for gap in found:
        if gap.area not in exclude and gap.area not in best:
            best[gap.area] = gap
    return sorted(best.values(), key=lambda gap: -gap.ratio)[:count]


def _cost_gap(
    gap_id: str, area: str, what: str, ours: float, limit: float, show: Callable[[float], str] = number
) -> Gap:
    """A cost (less is better): ours is `ratio` times the limit."""
    return Gap(gap_id, area, what, show(ours), show(limit), ours / limit)


def _rate_gap(
    gap_id: str, area: str, what: str, ours: float, limit: float, show: Callable[[float], str] = number
) -> Gap:
    """A rate (more is better): the limit is `ratio` times ours."""
    return Gap(gap_id, area, what, show(ours), show(limit), limit / ours)


def _command_gaps(commands: CommandCosts) -> list[Gap]:
    new_order = commands.scenario("new_order").cost
    cold = commands.scenario("cold_snapshots_none_yet").cost
    return [
        _cost_gap(
            "new_order_units",
            "write path",
            "New order: write units",
            new_order.ours.write_units,
            new_order.limit.write_units,
        ),
        _cost_gap(
            "cold_command",
            "write path",
            "Command on a cold aggregate (snapshots on): requests",
            cold.ours.total_requests,
            cold.limit.total_requests,
        ),
    ]


def _projection_gaps(projections: ProjectionCosts) -> list[Gap]:
    found: list[Gap] = []
    for mode, delivery in (("quiet", projections.quiet), ("busy", projections.busy)):
        cost = delivery.per_100_records
        found += [
            _cost_gap(
                f"projections_{mode}",
                "read side",
                f"Projections, {mode} stream: requests per 100 records",
                cost.ours.total_requests,
                cost.limit.total_requests,
            ),
            _cost_gap(
                f"projections_{mode}_units",
                "read side",
                f"Projections, {mode} stream: write units per 100 records",
                cost.ours.write_units,
                cost.limit.write_units,
            ),
        ]
    growth = projections.summary_growth
    if growth is not None and "sales_analytics" in growth.points:
        first, last = growth.first("sales_analytics"), growth.last("sales_analytics")
        found.append(
            Gap(
                "summary_growth" if growth.flat else "summary_growth_grows",
                "read side",
                f"The day's sales row: read units per record at order {number(last.order)} of a day vs "
                f"at order {number(first.order)} (target: flat)",
                number(last.cost.read_units, 1),
                number(first.cost.read_units, 1),
                growth.ratio("sales_analytics"),
            )
        )
    return found


def _cold_start_gap(cold_start: ColdStarts) -> Gap:
    slowest = max(cold_start.functions, key=cold_start.ratio)
    return _cost_gap(
        "cold_start",
        "cold start",
        f"Slowest function (`{slowest}`): handler import as deployed ÷ `import boto3`",
        cold_start.as_deployed[slowest].median_ms,
        cold_start.boto3_ms,
        milliseconds,
    )


def _local_run_gaps(e2e: EndToEnd) -> list[Gap]:
    level = e2e.with_projections.level(QUOTED_CLIENTS)
    return [
        _rate_gap(
            "local_overhead",
            "local run",
            f"Local commands/s, read models running, vs raw conditional puts/s ({level.clients} clients)",
            level.ours.per_second,
            level.raw_puts.per_second,
        ),
        _cost_gap(
            "local_lag",
            "local run",
            "Projection lag p50 vs half the poller's wait",
            e2e.lag.p50_ms,
            lag_floor_ms(e2e),
            milliseconds,
        ),
    ]


def _rebuild_gap(rebuild: RebuildThroughput, floor: RebuildFloor) -> Gap:
    return _rate_gap(
        "local_rebuild",
        "local run",
        "Rebuild events/s vs its row writes at raw puts/s",
        rebuild.events_per_second,
        floor.events_per_second,
    )


def _aggregate_load_gaps(loads: AggregateLoads) -> list[Gap]:
    longest = loads.longest_stream
    newest = loads.by_snapshots(longest).get("newest")
    if newest is None:
        return []
    return [
        Gap(
            "aggregate_load",
            "write path",
            f"Cold load of a {number(longest)}-event stream with a snapshot: read units",
            number(newest.read_units, 1),
            number(newest.limit_read_units, 1),
            newest.times_the_limit,
        )
    ]


# -- the page, a function per section ---------------------------------------------------------------


def intro(results: BenchResults) -> str:
    meta = results.meta
    env = meta.environment
    minutes = (meta.seconds or 0) / 60
    small_note = (
        "\n\n**This is the small (CI) run: its figures are not the published ones.**" if meta.small else ""
    )
    return f"""# Performance

_Generated by `{meta.command}` (`.venv/bin/python -m bench`) from
`bench/results.json`; do not edit by hand. `make bench` runs everything at full size (under 15
minutes on 2 cores) and rewrites both; `.venv/bin/python -m bench.render` only re-renders._{small_note}

Measured {meta.generated_at} at commit `{meta.git_commit}`
on {env.cpus} CPUs ({env.platform}, {env.machine}),
Python {env.python}, moto {env.moto}, boto3 {env.boto3},
Powertools {env.powertools}, pydantic {env.pydantic};
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


# The headline: a row per figure, from each section that ran.


def headline(results: BenchResults) -> str:
    rows: list[Row] = []
    if results.commands is not None:
        rows += _command_headlines(results.commands)
    if results.aggregate_load is not None:
        rows += _aggregate_load_headlines(results.aggregate_load)
    if results.projections is not None:
        rows += _projection_headlines(results.projections)
    if results.cold_start is not None:
        rows += _cold_start_headlines(results.cold_start)
    if results.e2e is not None:
        rows += _end_to_end_headlines(results.e2e)
    if results.rebuild is not None:
        rows.append(_rebuild_headline(results.rebuild))
    if results.on_paper is not None:
        rows += _on_paper_headlines(results.on_paper)
    return (
        "## Headline figures\n\n"
        + table(["Figure", "Ours", "Naive baseline", "Limit", "Ours ÷ limit"], rows)
        + "\n"
    )


def _command_headlines(commands: CommandCosts) -> list[Row]:
    long_stream = commands.scenario("cold_long_snapshot").label.replace("Cold aggregate, ", "Cold, ")
    shown = (
        ("new_order", "New order"),
        ("warm", "Command on a warm aggregate"),
        ("cold_snapshots_none_yet", "Command on a cold aggregate (typical order, snapshots on)"),
        ("cold_long_snapshot", long_stream),
        ("conflict", "Conflict and retry"),
    )
    return [_command_headline(label, commands.scenario(scenario_id).cost) for scenario_id, label in shown]


def _command_headline(label: str, cost: Variants[CountedCost]) -> Row:
    ours, limit = cost.ours, cost.limit
    return [
        label,
        requests_and_units(ours),
        requests_and_units(cost.naive),
        requests_and_write_units(limit),
        f"{times(ours.total_requests / limit.total_requests)} req, "
        f"{times(ours.write_units / limit.write_units)} WCU",
    ]


def _aggregate_load_headlines(loads: AggregateLoads) -> list[Row]:
    longest = loads.longest_stream
    by_snapshots = loads.by_snapshots(longest)
    if "newest" not in by_snapshots or NAIVE_LOAD not in by_snapshots:
        return []
    ours, naive = by_snapshots["newest"], by_snapshots[NAIVE_LOAD]
    return [
        [
            f"Load a {number(longest)}-event aggregate (newest snapshot)",
            _load_figures(ours),
            _load_figures(naive),
            f"1 req, {byte_size(ours.state_bytes)}, {number(ours.limit_read_units)} RCU",
            f"{times(ours.times_the_limit)} RCU",
        ]
    ]


def _load_figures(load: AggregateLoad) -> str:
    return f"{number(load.total_requests)} req, {byte_size(load.bytes_read)}, {number(load.read_units)} RCU"


def _projection_headlines(projections: ProjectionCosts) -> list[Row]:
    rows = [
        _projection_headline(label, delivery, projections)
        for delivery, label in ((projections.busy, "batches of 100"), (projections.quiet, "batches of 1"))
    ]
    if projections.summary_growth is not None:
        rows.append(_growth_headline(projections.summary_growth))
    return rows


def _projection_headline(batches: str, delivery: ProjectionDelivery, projections: ProjectionCosts) -> Row:
    cost = delivery.per_100_records
    ours = cost.ours
    shared = (
        f" (projector's shared work: {number(delivery.projector.cost.total_requests, 1)} req)"
        if delivery.projector is not None
        else ""
    )
    return [
        f"Projections per 100 stream records, {batches} ({read_models_text(projections)})",
        f"{number(ours.total_requests)} req ({number(ours.write_requests)} writes), "
        f"{number(ours.write_units)} WCU, {number(ours.read_units)} RCU{shared}",
        requests_and_write_units(cost.naive),
        requests_and_write_units(cost.limit),
        f"{ratio_text(ours.total_requests, cost.limit.total_requests)} req, "
        f"{ratio_text(ours.write_units, cost.limit.write_units)} WCU",
    ]


def ratio_text(ours: float, limit: float) -> str:
    """`0.43x` below the limit, `4.9x` above it (with the sign): enough digits to tell which."""
    if not limit:
        return "—"
    ratio = ours / limit
    return f"{ratio:.2f}×" if ratio < 1 else times(ratio)


def _growth_headline(growth: SummaryGrowth) -> Row:
    names = [name for name in ("sales_analytics", "product_sales") if name in growth.points]
    first, last = growth.first(names[0]), growth.last(names[0])
    return [
        f"Read units per record at order {number(first.order)} → order {number(last.order)} of one day "
        f"({'; '.join(_growth_row_name(name) for name in names)})",
        "; ".join(_growth_figures(growth, name) for name in names),
        "0 (reads nothing)",
        f"flat (target; {'met' if growth.flat else 'not reached'})",
        "; ".join(f"{times(growth.ratio(name))} growth" for name in names),
    ]


def _growth_figures(growth: SummaryGrowth, name: str) -> str:
    first, last = growth.first(name).cost.read_units, growth.last(name).cost.read_units
    return f"{number(first, 1)} → {number(last, 1)}"


def _growth_row_name(name: str) -> str:
    return {"sales_analytics": "the day's sales row", "product_sales": "a product's sales row"}.get(
        name, f"`{name}`"
    )


def _cold_start_headlines(cold_start: ColdStarts) -> list[Row]:
    slowest = max(cold_start.functions, key=cold_start.ratio)
    deployed = cold_start.as_deployed[slowest].median_ms
    return [
        [
            f"Cold start: slowest handler import (`{slowest}`), as deployed; without bytecode "
            f"(Python {cold_start.python})",
            f"{milliseconds(deployed)}; {milliseconds(cold_start.without_bytecode[slowest].median_ms)}",
            "—",
            f"{milliseconds(cold_start.boto3_ms)} (`import boto3`)",
            f"{times(cold_start.ratio(slowest))} (target ≤ 1.5×: {met(cold_start.ratio(slowest) <= 1.5)})",
        ]
    ]


# Local commands/s with the read models running, as a share of raw conditional puts/s, at every
# client count measured: a local run that keeps up with what its own moto can write.
LOCAL_RATIO_TARGET = 0.5


def poll_interval_ms(e2e: EndToEnd) -> float:
    """The local poller's wait between polls while records come, as the run used it."""
    return e2e.poller.poll_interval_ms if e2e.poller is not None else OLD_POLL_INTERVAL_MS


def lag_floor_ms(e2e: EndToEnd) -> float:
    """A record lands on average half a wait before the next poll: the local lag cannot be shorter."""
    return poll_interval_ms(e2e) / 2


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _end_to_end_headlines(e2e: EndToEnd) -> list[Row]:
    command_path = e2e.command_path.level(QUOTED_CLIENTS)
    with_projections = e2e.with_projections.level(QUOTED_CLIENTS)
    lag = e2e.lag
    lowest = min(level.ratio for level in e2e.with_projections.levels)
    rows = [
        [
            f"Local commands/s, {with_projections.clients} clients (with the read models running; "
            "command path alone)",
            f"{number(with_projections.ours.per_second)}; {number(command_path.ours.per_second)}",
            "—",
            f"{number(with_projections.raw_puts.per_second)}; {number(command_path.raw_puts.per_second)} "
            f"raw puts/s; ≥ {LOCAL_RATIO_TARGET:g}× raw with the read models (target)",
            f"{with_projections.ratio:.2f}×; {command_path.ratio:.2f}× raw; lowest with the read models "
            f"{lowest:.2f}× (target {met(lowest >= LOCAL_RATIO_TARGET)})",
        ]
    ]
    idle = e2e.idle_cpu.get("with_projections")
    if idle is not None:
        rows.append(
            [
                f"Idle CPU of `orders serve` ({number(idle.seconds)} s, nothing happening)",
                f"{idle.percent_of_one_core:.1f}% of one core",
                "—",
                f"< {idle.target_percent:g}% (target)",
                f"target {met(idle.meets_target)}",
            ]
        )
    target = f"p99 ≤ {milliseconds(lag.target_p99_ms)} (target); " if lag.target_p99_ms else ""
    verdict = f"target {met(lag.meets_target)}; " if lag.target_p99_ms else ""
    floor = lag_floor_ms(e2e)
    rows.append(
        [
            "Projection lag, command accepted to visible in its order view (p50 / p99)",
            f"{milliseconds(lag.p50_ms)} / {milliseconds(lag.p99_ms)}",
            "—",
            f"{target}p50 ≥ {milliseconds(floor)} (half the poller's "
            f"{milliseconds(poll_interval_ms(e2e))} wait)",
            f"{verdict}{times(lag.p50_ms / floor)} the floor (p50)",
        ]
    )
    return rows


def _rebuild_headline(rebuild: RebuildThroughput) -> Row:
    floor = rebuild.floor
    return [
        f"Rebuild, {number(rebuild.events)} events (local, moto)",
        f"{number(rebuild.events_per_second)} events/s",
        "—",
        f"{number(floor.events_per_second)} events/s (its row writes at raw puts/s)" if floor else "—",
        f"{times(floor.events_per_second / rebuild.events_per_second)} slower" if floor else "—",
    ]


def _on_paper_headlines(on_paper: OnPaper) -> list[Row]:
    def total(bill: CommandBill | EventBill) -> float:
        return bill.total_dollars

    return [
        _dollars_headline("per million commands (AWS, steady mix)", on_paper.per_million_commands.map(total)),
        _dollars_headline(
            "per million projected events (busy stream)", on_paper.per_million_busy_events.bills.map(total)
        ),
        _dollars_headline(
            "per million projected events (quiet stream)", on_paper.per_million_quiet_events.bills.map(total)
        ),
    ]


def _dollars_headline(what: str, total_dollars: Variants[float]) -> Row:
    return [
        f"On paper: {what}",
        dollars(total_dollars.ours),
        dollars(total_dollars.naive),
        dollars(total_dollars.limit),
        times(total_dollars.ours / total_dollars.limit),
    ]


# 1. Commands


def commands_section(results: BenchResults) -> str:
    heading = "## 1. Requests and capacity per command\n\n"
    commands = results.commands
    if commands is None:
        return heading + results.without_figures("commands")
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
        heading
        + "The real command service on moto with a counted client, beside the naive service on the same "
        "history (`bench/command_cost.py`). Ids are shaped as the API makes them (uuids, a Cognito sub, "
        "a SHA-256 request fingerprint). Snapshots every "
        f"{commands.snapshot_every} events. RCU are strongly consistent read units, WCU write units.\n\n"
        + table(header, [_command_row(scenario) for scenario in commands.scenarios])
        + "\n\n"
        "- A warm command is one `PutItem` of one item, as the limit: the cache and the commit item "
        "(ADR 1, ADR 3) remove the read and the per-event items the naive store pays for.\n"
        "- The crossing of a snapshot interval adds one unconditional `PutItem` of the whole state "
        "(with its last 100 command ids), once every interval: its write units are the snapshot's size.\n"
        "- The naive store's transaction costs two write units per event item and it reads the whole "
        "stream before every command; on a conflict it reads it again.\n"
    )


def _command_row(scenario: CommandScenario) -> Row:
    ours, naive = scenario.cost.ours, scenario.cost.naive
    return [
        scenario.label + (f"; {scenario.note}" if scenario.note else ""),
        requests_text(ours),
        number(ours.write_units),
        number(ours.read_units, 1),
        requests_text(naive),
        number(naive.write_units),
        number(naive.read_units, 1),
        f"1 PutItem, {number(scenario.cost.limit.write_units)} WCU",
        f"{number(scenario.commit_bytes)} B ({number(scenario.compressed_commit_bytes)} B compressed)",
    ]


# 2. Aggregate load


def aggregate_section(results: BenchResults) -> str:
    heading = "## 2. Aggregate load as the stream grows\n\n"
    loads = results.aggregate_load
    if loads is None:
        return heading + results.without_figures("aggregate_load")
    rows: list[Row] = []
    for events in loads.stream_lengths():
        same_length = loads.of_length(events)
        rows += [_load_row(load) for load in same_length]
        rows.append(_limit_load_row(same_length[0]))
    return (
        heading + "Orders built through the real command service (the 200-line cap lifted), loaded cold by a "
        "fresh service (`bench/aggregate_load.py`); bytes are the returned items' sizes, what read "
        f"units are billed on; snapshot every {loads.snapshot_every} events; time is the median of "
        'three loads on moto. "One interval older" is the worst case: just short of the next '
        "snapshot. The limit reads the state alone: the size of the snapshot item it makes.\n\n"
        + table(
            ["Events", "Load", "Requests", "Bytes read", "RCU", "Folded from", "Local time"], rows, "rlrrrlr"
        )
        + "\n\nWithout snapshots the cost grows with the stream (one Query page per MB); with them it is "
        "two requests and at most an interval of events whatever the length, so a long stream costs "
        "the state's size plus a bounded tail.\n"
    )


def _load_row(load: AggregateLoad) -> Row:
    start = f"snapshot at {number(load.snapshot_version)}" if load.snapshot_version else "event 1"
    requests = ", ".join(f"{count} {operation}" for operation, count in sorted(load.requests.items()))
    return [
        number(load.events),
        "naive: item per event" if load.is_naive else f"ours, {load.snapshots}",
        f"{load.total_requests} ({requests})",
        number(load.bytes_read),
        number(load.read_units),
        f"{start} ({number(load.events_folded)} events)",
        milliseconds(load.milliseconds),
    ]


def _limit_load_row(load: AggregateLoad) -> Row:
    return [
        number(load.events),
        "limit: one read of the state",
        "1 (GetItem)",
        number(load.state_bytes),
        number(load.limit_read_units),
        "—",
        "—",
    ]


# 3. Projections


def projections_section(results: BenchResults) -> str:
    heading = "## 3. Projection cost per 100 stream records\n\n"
    projections = results.projections
    if projections is None:
        return heading + results.without_figures("projections")
    workload = projections.busy.workload
    return (
        heading + "A realistic mix written through the command service (stock and reorder levels for "
        f"{workload.products} products; orders of 1–3 lines by {workload.customers} "
        "customers, 40% add an "
        "item, 30% shipped, 15% cancelled), delivered from the events stream by the local event source "
        f"mapping to one projector, as the stack runs it: it hands every batch to the "
        f"{read_models_text(projections)} (`bench/projection_cost.py`). "
        + _projector_text(projections.busy)
        + "A stream record is one commit. "
        + _ours_text(projections.summary_shards)
        + "The naive projection makes one `UpdateItem` per event per "
        "row (it reads nothing and is not exact under redelivery: a cheap baseline). The limit writes "
        "each row a batch changes once (at least one write unit, at the row's final size; a summary "
        "as one row) and reads nothing; source rows are not read-model rows, so it keeps none.\n\n"
        + _delivery_table(
            "Busy stream: the backlog in batches of 100 (the stack's batch size)", projections.busy
        )
        + _delivery_table(_quiet_title(projections.quiet), projections.quiet)
        + _against_the_limit(projections)
        + _read_growth(projections.busy)
        + _summary_growth(projections.summary_growth)
    )


# What each summary is, in words, for the read models kept by deltas.
SUMMARY_WORDS = {
    "sales_analytics": "a day's sales",
    "inventory": "a product's stock",
    "customer_summary": "a customer's summary",
    "product_sales": "a product's sales",
}


def _ours_text(shards: Mapping[str, int]) -> str:
    split = ", ".join(
        f"{SUMMARY_WORDS.get(name, f'`{name}`')} {'is one row' if count == 1 else f'over {count} rows'}"
        for name, count in shards.items()
    )
    split_text = f" ({split})" if split else ""
    return (
        "Ours: the order view writes an order's row with a `PutItem` (and its index entry), reading it "
        "first unless the batch holds the order's first commit. The four summaries are kept by deltas "
        "(`orders_core.projections.deltas`): each source (an order, a product's stream) keeps its "
        "folded state in a row of its own, and a batch writes the sources it changed and adds the "
        "difference they make to one shard row of each summary they name, which readers add up"
        f"{split_text}: all in one `TransactWriteItems` per batch (up to 100 rows), each source row "
        "conditioned on its version. No summary is read to be written. The projection keeps the "
        "source rows it read or wrote in memory and takes a source whose first commit is in the batch "
        "to be new without reading it, so a warm projector reads a source row only when it has "
        "neither. "
    )


def _against_the_limit(projections: ProjectionCosts) -> str:
    parts = [_mode_against_the_limit(mode, delivery) for mode, delivery in _modes(projections)]
    return (
        "**Against the limit**, per 100 records. "
        + " ".join(parts)
        + " A transaction writes up to 100 rows in one request, where the limit counts a request per "
        "row; but DynamoDB charges two write units per item per KB in a `TransactWriteItems` (each "
        "item at least 1 KB), every source row a batch changes is written with it (the limit keeps "
        "none), and a source adds to the revision of every summary it names, so a summary is written "
        "even when its counters did not move.\n\n"
    )


def _modes(projections: ProjectionCosts) -> tuple[tuple[str, ProjectionDelivery], ...]:
    return (("Busy stream", projections.busy), ("Quiet stream", projections.quiet))


def _mode_against_the_limit(mode: str, delivery: ProjectionDelivery) -> str:
    cost = delivery.per_100_records
    ours, limit, naive = cost.ours, cost.limit, cost.naive
    shared = (
        f", {number(delivery.projector.cost.read_requests, 1)} of them the projector's shared work"
        if delivery.projector is not None
        else ""
    )
    return (
        f"{mode}: {bold(f'{number(ours.total_requests, 1)} requests')} against the limit's "
        f"{number(limit.total_requests, 1)} ({ratio_text(ours.total_requests, limit.total_requests)}; "
        f"naive {number(naive.total_requests, 1)}): {number(ours.write_requests, 1)} write requests "
        f"for the limit's {number(limit.write_requests, 1)}, and {number(ours.read_requests, 1)} reads"
        f"{shared}; {bold(f'{number(ours.write_units, 1)} write units')} against the limit's "
        f"{number(limit.write_units, 1)} ({ratio_text(ours.write_units, limit.write_units)}; naive "
        f"{number(naive.write_units, 1)})."
    )


def _projector_text(delivery: ProjectionDelivery) -> str:
    work = delivery.projector
    if work is None:
        return "Each read model had its own stream poller and counted client. "
    return (
        "Each read model has its own counted client (its projection and its control row, which it "
        f"keeps {number(work.control_ttl_seconds)} s), so its requests are its own; the projector's "
        "shared work has a counted client and a line of its own, included in the total: each read "
        f"model's list of parked streams (a Query, kept {number(work.parked_ttl_seconds)} s) and a "
        f"heartbeat row (at most once every {number(work.heartbeat_seconds)} s). What is kept for a "
        "time is timed by a bench clock, not by moto's milliseconds per batch: "
        f"busy batches arrive {_gap_text(delivery)} apart. "
    )


def _gap_text(delivery: ProjectionDelivery) -> str:
    gap = delivery.batch_gap_seconds
    return f"{number(gap, 1)} s" if gap is not None else "back to back"


def _quiet_title(quiet: ProjectionDelivery) -> str:
    if quiet.batch_gap_seconds is None:
        return "Quiet stream: one record per batch (commands trickling in; no batching window)"
    return (
        f"Quiet stream: one record per batch, a command every {_gap_text(quiet)} (further apart than "
        "the stack's 1 s batching window)"
    )


def _delivery_table(title: str, delivery: ProjectionDelivery) -> str:
    header = [
        "Read model",
        "Ours: writes",
        "reads",
        "WCU",
        "RCU",
        "Naive: writes",
        "WCU",
        "Limit: writes",
        "WCU",
    ]
    rows = [[f"`{name}`", *_projection_figures(cost.cost)] for name, cost in delivery.projections.items()]
    if delivery.projector is not None:
        rows.append(["projector (shared)", *_shared_figures(delivery.projector.cost)])
    everything = f"all {count_word(len(delivery.projections))}"
    if delivery.projector is not None:
        everything += " + projector"
    rows.append([bold(everything), *map(bold, _projection_figures(delivery.per_100_records))])
    workload = delivery.workload
    return (
        f"**{title}**: {number(workload.orders)} orders, {number(workload.records)} records, "
        f"{number(workload.events)} events.\n\n" + table(header, rows) + "\n\n"
    )


def _projection_figures(cost: Variants[CountedCost]) -> Row:
    ours, naive, limit = cost.ours, cost.naive, cost.limit
    figures = (
        ours.write_requests,
        ours.read_requests,
        ours.write_units,
        ours.read_units,
        naive.write_requests,
        naive.write_units,
        limit.write_requests,
        limit.write_units,
    )
    return [number(figure, 1) for figure in figures]


def _shared_figures(ours: CountedCost) -> Row:
    figures = (ours.write_requests, ours.read_requests, ours.write_units, ours.read_units)
    return [*(number(figure, 1) for figure in figures), "—", "—", "—", "—"]


def _read_growth(busy: ProjectionDelivery) -> str:
    growth = []
    for name in SUMMARY_PROJECTIONS:
        if name not in busy.projections:
            continue
        cost = busy.projections[name]
        partition = busy.largest_partition(name)
        sources = (
            f"; {rows_text(partition.source_rows, 'source row')}, {byte_size(partition.source_bytes)}"
            if partition.source_rows
            else ""
        )
        growth.append(
            f"`{name}` {number(cost.first_batch.read_units, 1)} → {number(cost.last_batch.read_units, 1)} "
            f"(largest summary at the end: {rows_text(partition.rows)}, "
            f"{byte_size(partition.size_bytes)}{sources})"
        )
    return (
        "**How it grows.** Read units per 100 records in the first full batch → the last, busy stream: "
        + "; ".join(growth)
        + ". No summary is read to be written: a batch reads only what it has not kept (each read "
        "model's control row, every 10 s; a source row neither cached nor new in the batch; the "
        "customer summary's newest-wins key of a customer met first), whatever the day holds.\n\n"
    )


def _summary_growth(growth: SummaryGrowth | None) -> str:
    if growth is None:
        return ""
    names = list(growth.points)
    first_order, last_order = growth.first(names[0]).order, growth.last(names[0]).order
    header = [
        "Row",
        f"Order {number(first_order)}: RCU",
        "WCU",
        "Summary rows",
        f"Order {number(last_order)}: RCU",
        "WCU",
        "Summary rows",
        "Read growth (target 1×)",
    ]
    rows = []
    for name in names:
        first, last = growth.first(name), growth.last(name)
        rows.append(
            [
                f"`{name}`: {growth.rows[name]}",
                number(first.cost.read_units, 1),
                number(first.cost.write_units, 1),
                _partition_text(first),
                number(last.cost.read_units, 1),
                number(last.cost.write_units, 1),
                _partition_text(last),
                times(growth.ratio(name)),
            ]
        )
    fill = (
        " Filling the day in memory took "
        + ", ".join(f"{number(seconds, 1)} s for `{name}`" for name, seconds in growth.fill_seconds.items())
        + "."
        if growth.fill_seconds
        else ""
    )
    short = (
        f" This run filled {number(last_order)} orders; `make bench` measures the {ordinal(100_000)}."
        if last_order < 100_000
        else ""
    )
    return (
        f"**One day's summaries as the day fills up** (target: flat, the same read units per record at "
        "the 100th and at the 100,000th order of a day). One day filled through the real projections "
        f"with {number(growth.orders)} orders placed that day, each naming one hot product (half of them "
        "one other product too), the summaries' shard rows then copied into moto; then the read and "
        "write units of a batch of one more order (one stream record, naming only the hot product, "
        "new to the projection) for the day's sales row and the hot product's sales row, and the "
        f"summary's shard rows after it.{fill}{short}\n\n"
        + table(header, rows)
        + "\n\n"
        + _growth_verdict(growth, names, first_order, last_order)
    )


def _growth_verdict(growth: SummaryGrowth, names: Sequence[str], first_order: int, last_order: int) -> str:
    ratios = "; ".join(f"`{name}` {times(growth.ratio(name))}" for name in names)
    writes = "; ".join(
        f"`{name}` {number(growth.first(name).cost.write_units, 1)} → "
        f"{number(growth.last(name).cost.write_units, 1)}"
        for name in names
    )
    requests = "; ".join(f"`{name}` {requests_text(growth.last(name).cost)}" for name in names)
    if growth.flat:
        reads = sorted({growth.last(name).cost.read_units for name in names})
        read_text = (
            "nothing is read (the order's first commit is in the batch, so its source row is new)"
            if reads == [0]
            else f"{' or '.join(number(units, 1) for units in reads)} read units, at both points"
        )
        return (
            f"**Flat: the target is met.** One more order costs the same read units at the "
            f"{ordinal(last_order)} order of the day as at the {ordinal(first_order)} ({ratios}); "
            f"write units {writes}. Requests at the last order: {requests}. No summary is read to be "
            "written: one transaction writes the order's source row and adds to one shard row of the "
            f"summary (two write units per item up to 1 KB), and {read_text}. The day's figures live "
            "in its shard rows, which readers add up, whatever number of orders they sum.\n"
        )
    return (
        f"**Not flat: the target is not reached.** The read units of one more order grow from the "
        f"{ordinal(first_order)} order of the day to the {ordinal(last_order)} ({ratios}); write "
        f"units {writes}. Requests at the last order: {requests}.\n"
    )


def _partition_text(point: GrowthPoint) -> str:
    return f"{rows_text(point.partition_rows)}, {byte_size(point.partition_bytes)}"


# 4. Cold start


def cold_start_section(results: BenchResults) -> str:
    heading = "## 4. Cold start\n\n"
    cold_start = results.cold_start
    if cold_start is None:
        return heading + results.without_figures("cold_start")
    sizes = cold_start.sizes
    rows = [
        _cold_start_row(cold_start, package, size)
        for package, size in sizes.functions.items()
        if package in cold_start.as_deployed
    ]
    rows.append(_boto3_alone_row(cold_start))
    layers = _layers_text(sizes)
    header = [
        "Function",
        "As deployed",
        "÷ boto3",
        "Without bytecode",
        "Largest shares (as deployed)",
        "Code",
        "Code + layers",
    ]
    slowest = max(cold_start.functions, key=cold_start.ratio)
    return (
        heading
        + "`python -X importtime` of each handler module in fresh interpreters with Lambda's `sys.path` "
        "(function package, core layer, dependencies layer, the runtime's boto3; `-I -S`), median of "
        f"{cold_start.runs}, interleaved (`bench/cold_start.py`). Measured on {cold_start.interpreter_text}, "
        f"{cold_start.machine_text}. "
        f'"As deployed" is what the assets ship: sources with bytecode ({cold_start.bytecode}) compiled '
        "ahead by the runtime's Python in unchecked-hash mode (`infra/bytecode.py`, ADR 13), since Lambda's "
        'code directories are read-only and a `.pyc` of another Python version is ignored; "without '
        "bytecode\" is the same code with every `.pyc` left out, as before ADR 13. The runtime's boto3 "
        "has its bytecode in both. Every function's import is at most "
        f"{times(cold_start.ratio(slowest))} `import boto3` (target 1.5×: "
        f'{met(cold_start.ratio(slowest) <= 1.5)}). "Largest shares" is where the as-deployed time goes '
        f"(self time by package). Sizes: the function's package plus both layers, bytecode included "
        f"({layers}); Lambda allows {byte_size(sizes.lambda_unzipped_limit)} unzipped.\n\n"
        + table(header, rows, "lrrrlrr")
        + "\n"
    )


def _cold_start_row(cold_start: ColdStarts, package: str, size: FunctionSize) -> Row:
    deployed = cold_start.as_deployed[package]
    largest_shares = list(deployed.by_package_ms.items())[:3]
    return [
        f"`{package}`",
        milliseconds(deployed.median_ms),
        times(cold_start.ratio(package)),
        milliseconds(cold_start.without_bytecode[package].median_ms),
        ", ".join(f"{name} {milliseconds(share)}" for name, share in largest_shares),
        byte_size(size.code_unzipped),
        f"{byte_size(size.total_unzipped)} ({byte_size(size.total_zipped)} zipped)",
    ]


def _boto3_alone_row(cold_start: ColdStarts) -> Row:
    return [
        "`import boto3` alone",
        milliseconds(cold_start.boto3_ms),
        "1.0×",
        milliseconds(cold_start.without_bytecode["boto3"].median_ms),
        "",
        "",
        "",
    ]


def _layers_text(sizes: DeploymentSizes) -> str:
    core = f"core layer {byte_size(sizes.core_layer_unzipped)}"
    if sizes.deps_layer_unzipped is None:
        return f"{core}; {sizes.note}"
    distributions = ", ".join(sizes.deps_layer_distributions)
    text = f"{core}, dependencies layer {byte_size(sizes.deps_layer_unzipped)} ({distributions})"
    if sizes.auth_layer_unzipped is not None:
        own = byte_size(sizes.auth_layer_unzipped)
        text += f"; the authorizer also has its own layer, {own} (PyJWT, cryptography)"
    return text


# 5. Local end-to-end


def e2e_section(results: BenchResults) -> str:
    heading = "## 5. Local end-to-end throughput, idle CPU and projection lag\n\n"
    e2e = results.e2e
    if e2e is None:
        return heading + results.without_figures("e2e")
    levels = zip(e2e.command_path.levels, e2e.with_projections.levels, strict=True)
    rows = [
        [str(command_path.clients), *_level_cells(command_path), *_level_cells(with_projections)]
        for command_path, with_projections in levels
    ]
    header = [
        "Clients",
        "Command path: commands/s",
        "Raw puts/s",
        "Ratio",
        "`orders serve`: commands/s",
        "Raw puts/s",
        "Ratio",
    ]
    projector = (
        "runs the projector's one stream poller (every read model) in a process of its own, and the "
        "live notifier and the integration publisher in another"
        if e2e.poller is not None
        else "runs a stream poller per read model in the server's process"
    )
    return (
        heading
        + "Through `orders serve` in a separate process (`bench/e2e.py`): moto in its main process, the "
        "gateway and each function's instances (its default `--workers`, twice the cores; each a process "
        "handling one request at a time with its own cache, ADR 16) in processes of their own. N clients "
        "each with a connection of its own (werkzeug, serving the gateway and moto, closes it after every "
        f"answer, so every request opens one, raw puts' too), {e2e.command_mix}; every command is one "
        "conditional `PutItem`, "
        "plus a `Query` when an item reaches an instance that has not met its order. Beside it, raw "
        "conditional `PutItem`s of a commit-sized item on the same moto endpoint from as many threads, "
        'in the same run. "Command path" is the same server without its stream poller; "`orders serve`" '
        f"{projector}, as users run it (on AWS the projector is another function). Target: "
        f"`orders serve` at ≥ {LOCAL_RATIO_TARGET:g}× raw puts/s at every client count.\n\n"
        + table(header, rows)
        + "\n\n"
        + _cpu_text(e2e)
        + _idle_text(e2e)
        + _lag_text(e2e, e2e.lag)
    )


def _cpu_text(e2e: EndToEnd) -> str:
    if e2e.cores is None:
        return ""
    runs = (("Command path", e2e.command_path), ("`orders serve`", e2e.with_projections))
    rows = [
        _cpu_cells(name, level, e2e.cores) for name, run in runs for level in run.levels if level.cpu_ours
    ]
    if not rows:
        return ""
    header = [
        "Server",
        "Clients",
        "CPU ms per command: moto / all",
        "Per raw put: moto / all",
        "Sustained commands/s allowed",
        "Ratio allowed",
        "Measured ratio",
    ]
    return (
        "**Where the CPU goes** (the same phases; CPU from a phase's start until the server is idle "
        "again, so the stream readers' catch-up counts, per command or per raw put; moto is the "
        'server\'s main process, which serves every AWS request of the run under one GIL; "all" adds '
        "every other process of the server and the clients). A command costs its own conditional put, "
        "the gateway's and its instance's work, and, with the read models running, what every stream "
        "reader does for it, in moto and in its own process: the view's write, the summaries' "
        "transactions, the published events, the stream reads. Sustained, with the readers keeping "
        f"up, moto's process can give a command at most one core and all processes together the "
        f"machine's {e2e.cores}: the smaller of 1,000 ÷ moto's ms and {e2e.cores},000 ÷ all ms is the "
        "most commands a second these costs allow, whatever runs in parallel; over the raw puts/s "
        "measured, the most the ratio can be. A burst can measure above it, as the readers fall "
        "behind during it and catch up after.\n\n" + table(header, rows) + "\n\n"
    )


def _cpu_cells(server: str, level: LoadLevel, cores: int) -> Row:
    assert level.cpu_ours is not None
    ceiling = level.sustained_ceiling(cores)
    raw = level.cpu_raw_puts
    return [
        server,
        str(level.clients),
        f"{level.cpu_ours.moto_ms:.1f} / {level.cpu_ours.total_ms:.1f}",
        f"{raw.moto_ms:.1f} / {raw.total_ms:.1f}" if raw is not None else "",
        number(ceiling) if ceiling is not None else "",
        f"{ceiling / level.raw_puts.per_second:.2f}" if ceiling is not None else "",
        f"{level.ratio:.2f}",
    ]


def _idle_text(e2e: EndToEnd) -> str:
    serve = e2e.idle_cpu.get("with_projections")
    if serve is None:
        return ""
    alone = e2e.idle_cpu.get("command_path")
    without = f"; the same server without the poller {_idle_share(alone)}" if alone is not None else ""
    waits = (
        f" The projector's poller waits {milliseconds(e2e.poller.poll_interval_ms)} between polls while "
        f"records come and stretches the wait to {milliseconds(e2e.poller.idle_poll_max_ms)} when the "
        "stream is idle."
        if e2e.poller is not None
        else ""
    )
    return (
        f"**Idle CPU** (after startup, nothing happening, {number(serve.seconds)} s; user + system time of "
        f"the server's processes, instances and poller included, from `/proc`): `orders serve` "
        f"{_idle_share(serve)}{without}. "
        f"Target under {serve.target_percent:g}% of one core: {met(serve.meets_target)}.{waits}\n\n"
    )


def _idle_share(idle: IdleCpu) -> str:
    return f"{idle.percent_of_one_core:.1f}% of one core ({number(idle.cpu_seconds, 2)} CPU s)"


def _lag_text(e2e: EndToEnd, lag: ProjectionLag) -> str:
    target = (
        f" Target p99 ≤ {milliseconds(lag.target_p99_ms)}: {met(lag.meets_target)}."
        if lag.target_p99_ms
        else ""
    )
    before = (
        f", after the earlier phases had placed {number(lag.orders_placed_before)} orders that day, all "
        "naming the same products"
        if lag.orders_placed_before is not None
        else ""
    )
    why = (
        " The projector hands each batch to every read model in turn, the order view first: an order "
        "placed as soon as the previous one shows waits for that one's summaries, a transaction per "
        "read model (section 3) that moto applies in the server's main process, which serves the API's "
        "requests too."
        if e2e.poller is not None
        else ""
    )
    return (
        "**Projection lag** (`orders serve`, one order at a time, from the command's answer, accepted "
        f"with its version, to the first `GET /orders/{{id}}` that shows that version, polled every "
        f"{lag.poll_interval_ms:.0f} ms; {lag.orders} orders{before}): p50 {milliseconds(lag.p50_ms)}, "
        f"p99 {milliseconds(lag.p99_ms)}, mean {milliseconds(lag.mean_ms)}.{target}{why} "
        f"The local poller waits {milliseconds(poll_interval_ms(e2e))} between polls while records come; "
        "on AWS Lambda polls a shard about four times a second and the projector's 1 s batching window "
        "adds up to a second (ADR 11), which the API's `min_version` wait (3 s) covers.\n"
    )


def _level_cells(level: LoadLevel) -> Row:
    return [
        f"{number(level.ours.per_second)} (p50 {milliseconds(level.ours.latency_p50_ms)})",
        number(level.raw_puts.per_second),
        f"{level.ratio:.2f}",
    ]


# 6. Rebuild


def rebuild_section(results: BenchResults) -> str:
    heading = "## 6. Rebuild throughput\n\n"
    rebuild = results.rebuild
    if rebuild is None:
        return heading + results.without_figures("rebuild")
    phases = ", ".join(f"{phase} at {at:.1f} s" for phase, at in rebuild.phases_reached_at_seconds.items())
    return heading + (
        f"`{rebuild.projection}` rebuilt from {number(rebuild.events)} events "
        f"({number(rebuild.commits)} commits) through "
        "`workflows/rebuild.asl.json` on moto's Step Functions with the in-process worker "
        f"(`bench/rebuild_throughput.py`): **{number(rebuild.seconds, 1)} s, "
        f"{number(rebuild.events_per_second)} events/s** end "
        f"to end (phases reached: {phases}). {_rebuild_floor_text(rebuild.floor)}ADR 9 has the estimate "
        "for 100 million events on AWS, phase by phase, with the settings the stack deploys.\n"
        + _shuffle_memory_text(rebuild.shuffle_memory)
    )


def _shuffle_memory_text(memory: ShuffleMemory | None) -> str:
    if memory is None or len(memory.files) < 2:
        return ""
    small, large = memory.files[0], memory.files[-1]
    growth = large.peak_bytes / small.peak_bytes if small.peak_bytes else 0.0
    return (
        "\n**Shuffle memory.** The shuffle streams an export file and writes its buckets' fragments "
        f"whenever {byte_size(memory.buffer_bytes)} of lines are buffered (the stack buffers 64 MB; "
        "scaled down here so that the files exceed it), so its memory is bounded by the buffer, not "
        f"by the file: peak {byte_size(small.peak_bytes)} for a file of {number(small.commits)} "
        f"commits ({byte_size(small.file_bytes)} gzip, {byte_size(small.uncompressed_bytes)} of lines) "
        f"and {byte_size(large.peak_bytes)} for {number(large.commits)} commits "
        f"({byte_size(large.file_bytes)} gzip, {byte_size(large.uncompressed_bytes)}): "
        f"{growth:.2f}× for a {large.uncompressed_bytes / small.uncompressed_bytes:.1f}× larger file "
        "(tracemalloc, the step alone, `bench/rebuild_throughput.py`).\n"
    )


def _rebuild_floor_text(floor: RebuildFloor | None) -> str:
    if floor is None:
        return "Bounded by moto's conditional writes in one Python process, not by the workflow. "
    return (
        f"The apply writes one row per order ({number(floor.rows_written)} rows); at the "
        f"{number(floor.raw_puts_per_second)} conditional puts a second that moto takes in this process "
        "(measured after the run), the "
        f"rows alone bound the run at {number(floor.events_per_second)} events/s: the rest is the "
        "export, the shuffle through S3 objects and the workflow's waits. "
    )


# 7. On paper


def on_paper_section(results: BenchResults) -> str:
    heading = "## 7. On paper: AWS cost and the hot-stream limit\n\n"
    on_paper = results.on_paper
    if on_paper is None:
        return heading + "_Needs the command and projection sections._\n"
    read_models = read_models_text(results.projections) if results.projections else "every read model"
    return (
        heading
        + _prices_and_assumptions(on_paper.prices, on_paper.assumptions, read_models)
        + _command_bills_table(on_paper.per_million_commands)
        + _event_bills_table(on_paper, read_models)
        + _hot_stream_text(on_paper.hot_stream)
    )


def _prices_and_assumptions(prices: Prices, assumptions: Assumptions, read_models: str) -> str:
    command_mix = ", ".join(
        f"{share:.0%} {scenario.replace('_', ' ')}" for scenario, share in assumptions.command_mix.items()
    )
    return (
        f"**Prices (assumptions)**: {prices.basis}. "
        f"Lambda arm64 ${prices.lambda_per_gb_second_arm64:.10f} "
        f"per GB-second and ${prices.lambda_per_million_requests:.2f} per million requests; HTTP API "
        f"${prices.http_api_per_million_requests:.2f} per million requests; DynamoDB on-demand "
        f"${prices.dynamodb_per_million_write_units} per million write request units and "
        f"${prices.dynamodb_per_million_read_units} per million read request units; storage "
        f"${prices.dynamodb_storage_per_gb_month} per GB-month (not below: about a kilobyte per "
        "command, a quarter of a dollar a month per million commands kept); DynamoDB Streams reads by "
        "Lambda are free.\n\n"
        f"**Assumptions**: {assumptions.memory_gb * 1024:.0f} MB functions; billed duration = "
        f"{assumptions.invocation_ms:.0f} ms + {assumptions.dynamodb_request_ms:.0f} ms per DynamoDB request "
        f"(+ {assumptions.projection_record_ms} ms per record in a batch), rounded up to the millisecond; "
        f"command mix {command_mix}"
        " (per-command requests and units from section 1); projected events as measured in section 3 "
        f"(busy: full batches of 100; quiet: one record per batch), {read_models} fed by one projector "
        "invocation per batch, which makes all their requests in turn. Cold starts, the "
        "query side and the rebuild are not included.\n\n"
    )


def _command_bills_table(bills: Variants[CommandBill]) -> str:
    header = ["", "Requests/command", "WCU/command", "RCU/command", "HTTP API", "Lambda", "DynamoDB", "Total"]
    rows = [
        [
            label,
            number(bill.requests_per_command, 2),
            number(bill.write_units_per_command, 2),
            number(bill.read_units_per_command, 2),
            dollars(bill.dollars.api_gateway),
            dollars(bill.dollars.lambda_functions),
            dollars(bill.dollars.dynamodb_writes + bill.dollars.dynamodb_reads),
            bold(dollars(bill.total_dollars)),
        ]
        for label, bill in bills.labelled()
    ]
    return "**Per million commands**\n\n" + table(header, rows) + "\n\n"


def _event_bills_table(on_paper: OnPaper, read_models: str) -> str:
    header = ["", "Requests/event", "Invocations", "Lambda", "DynamoDB writes", "DynamoDB reads", "Total"]
    rows = [
        [
            f"{mode}: {label}",
            number(bill.requests_per_event, 2),
            number(bills.invocations),
            dollars(bill.dollars.lambda_functions),
            dollars(bill.dollars.dynamodb_writes),
            dollars(bill.dollars.dynamodb_reads),
            bold(dollars(bill.total_dollars)),
        ]
        for mode, bills in (
            ("busy", on_paper.per_million_busy_events),
            ("quiet", on_paper.per_million_quiet_events),
        )
        for label, bill in bills.bills.labelled()
    ]
    return (
        f"**Per million projected events** ({read_models} and the projector's shared work)\n\n"
        + table(header, rows)
        + "\n\n"
    )


def _hot_stream_text(hot: HotStream) -> str:
    return (
        "**Hot-stream limit.** All of a stream's commits share one partition key, so one stream can take "
        f"at most {number(hot.partition_write_units_per_second)} write units a second (DynamoDB's "
        f"per-partition limit): at {number(hot.write_units_per_warm_command)} WCU per warm command, "
        f"**{number(hot.commands_per_second_per_stream_by_partition)} commands a second on one order or "
        "product**. "
        "Optimistic concurrency binds first: a stream's commands are ordered by version, so one writer "
        f"at a time gets about one command per round trip (~{number(hot.round_trip_ms)} ms: "
        f"**~{number(hot.commands_per_second_per_stream_by_round_trip)} a second**), and concurrent "
        "writers on the same stream conflict and retry (three requests each, section 1). An order sees "
        "a handful of commands in its life; a product's stock stream is the one that could get hot. On "
        "the read side no summary is re-read any more (section 3): the day's sales summary is the hot "
        "spot for writes, as every batch that touches the day adds to one of its shard rows in a "
        "transaction. The shards spread concurrent batches over several items; they share the day's "
        "partition key, so together they have one partition's "
        f"{number(hot.partition_write_units_per_second)} write units a second unless DynamoDB splits "
        f"the partition for heat: at {hot.batches_per_second} batches a second per stream shard and two "
        "write units per shard row under 1 KB, that is about "
        f"**{number(hot.partition_write_units_per_second / (2 * hot.batches_per_second))} stream shards "
        "writing one day**, whatever the day's number of orders.\n"
    )


# The gaps, and the two largest with what would close them


def gaps_section(results: BenchResults) -> str:
    found = gaps(results)
    if not found:
        return ""
    rows = [[gap.area, gap.what, gap.ours, gap.limit, ratio_text(gap.ratio, 1)] for gap in found]
    closing = "".join(
        _closing_item(rank, gap, found, results) for rank, gap in enumerate(largest_by_area(found), 1)
    )
    return (
        "## Gaps to the limits\n\n"
        "Every figure above that has a limit, largest ratio first.\n\n"
        + table(["Area", "Figure", "Ours", "Limit", "Ratio"], rows, "llrrr")
        + "\n\n### The two largest gaps, and what would close them\n\n"
        + closing
        + "\nThe warm command already sits at its limit (one request, one item). The local run's gaps "
        "(throughput against raw puts, lag, rebuild) come from moto serving every AWS request of the run "
        "in one process while the API, its instances and the stream readers share the machine's two "
        "cores with it (section 5 states what a command costs there and what that allows); they do "
        "not move the AWS bill.\n"
    )


def _closing_item(rank: int, gap: Gap, found: Sequence[Gap], results: BenchResults) -> str:
    text = f"{rank}. **{gap.area.capitalize()}: {gap.figure}.** {gap.remedy}\n"
    for other in found:
        if other.area == gap.area and other is not gap:
            text += f"   Same area: {other.figure}. {other.remedy}\n"
    growth_ids = ("summary_growth", "summary_growth_grows")
    if gap.area == "read side" and not any(other.gap_id in growth_ids for other in found):
        text += f"   {growth_note(results)}\n"
    return text


def growth_note(results: BenchResults) -> str:
    """The sales summary's reads over the busy stream (not a gap to a limit: a trend), when the run
    has no summary growth figures."""
    if results.projections is None:
        return ""
    busy = results.projections.busy
    sales = busy.projections["sales_analytics"]
    return (
        "Over the busy stream the sales projection read "
        f"{number(sales.first_batch.read_units, 1)} read units per 100 records in the first batch and "
        f"{number(sales.last_batch.read_units, 1)} in the last, when the day's summary "
        f"held {number(busy.largest_partition('sales_analytics').rows)} rows."
    )


# Reproduce


def reproduce(results: BenchResults) -> str:
    meta = results.meta
    timing = ", ".join(f"{section} {seconds:.0f} s" for section, seconds in meta.section_seconds.items())
    load = ", ".join(f"{section} {load:.1f}" for section, load in meta.load_average_after.items())
    load_note = (
        f" One-minute load average after each section ({meta.environment.cpus} CPUs; more than that means "
        f"other work shared the machine and skewed the timed sections): {load}."
        if load
        else ""
    )
    return (
        "## Reproduce\n\n"
        "```bash\n"
        "make bench        # every section at full size; writes bench/results.json and this page\n"
        "make bench-small  # the fast version (under a minute) into build/bench-small/; tests/bench runs it\n"
        ".venv/bin/python -m bench --only projections   # re-run sections, keep the others\n"
        ".venv/bin/python -m bench.render                # re-render this page from bench/results.json\n"
        "```\n\n"
        f"Seconds per section in this run: {timing}. Each section runs in its own interpreter and logs to "
        "`build/bench-logs/`." + load_note + "\n"
    )


SECTIONS: tuple[Callable[[BenchResults], str], ...] = (
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
    """The page for the results as bench/__main__.py writes them; a section without figures says why."""
    parsed = BenchResults.from_json(results)
    parts = [section(parsed).strip() for section in SECTIONS]
    return "\n\n".join(part for part in parts if part) + "\n"


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
