"""Operator commands: `orders rebuild` (and `orders rebuild --release`), `orders rebuilds`,
`orders projections`, `orders failures`, `orders replay-failures`.

They talk to the admin API over HTTP, so the same commands work against `orders serve` and a
deployed stack (`--api https://... --token "$TOKEN"`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any, TextIO

from orders_local.tokens import issue_token, load_or_create_secret

DEFAULT_API = "http://127.0.0.1:8000"
PHASES = ("starting", "exporting", "shuffling", "applying", "catching_up", "retiring", "done")


class ApiError(Exception):
    pass


class AdminClient:
    def __init__(self, api: str, token: str) -> None:
        self._api = api.rstrip("/")
        self._token = token
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self._api}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=30) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as error:
            try:
                problem = json.loads(error.read())
                detail = problem.get("detail") or problem.get("message") or problem
            except ValueError:
                detail = error.reason
            raise ApiError(f"{method} {path}: {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise ApiError(f"cannot reach {self._api}: {error.reason} (is 'orders serve' running?)") from None


def add_commands(commands: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api", default=DEFAULT_API, help="API base URL (default: %(default)s)")
        parser.add_argument(
            "--token",
            help="an operator's bearer token (default: mint a local one, as 'orders token --operator')",
        )

    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild a read model from the event log",
        description=(
            "Start the rebuild workflow for one projection (export the events table, rebuild into a new "
            "generation, catch up, switch readers, drop the old generation) and show its progress until it "
            "ends. Readers keep the current generation until the switch; a failed run changes nothing. "
            "With --release, give up instead the claim that a run whose workflow execution ended "
            "without ending the run still holds on a projection (a new rebuild of it is refused until then)."
        ),
    )
    rebuild.add_argument(
        "projection",
        nargs="?",
        help="customer_orders, sales_analytics, inventory, customer_summary or product_sales",
    )
    rebuild.add_argument(
        "--release",
        metavar="PROJECTION",
        help=(
            "release PROJECTION's claim instead of rebuilding: the run holding it is abandoned (its "
            "partial generation dropped, readers untouched). Refused while its execution still runs: "
            "stop the execution, whose end releases the claim by itself, or wait for it"
        ),
    )
    rebuild.add_argument("--no-wait", action="store_true", help="start it and return at once")
    rebuild.add_argument("--timeout", type=float, default=3600, help="give up waiting after so many seconds")
    common(rebuild)

    runs = commands.add_parser(
        "rebuilds", help="list rebuild runs, newest first", description="List rebuild runs."
    )
    common(runs)

    projections = commands.add_parser(
        "projections",
        help="list read models with their active generation and lag",
        description="List every registered projection: the generation readers use, a running rebuild, lag.",
    )
    common(projections)

    failures = commands.add_parser(
        "failures",
        help="list commits a read model parked (it failed on them)",
        description=(
            "List what each read model parked: the stream, the versions held back (the first one failed, "
            "the later ones wait behind it) and the error. Fix the cause, then run 'orders replay-failures'."
        ),
    )
    failures.add_argument("--projection", help="only this read model")
    common(failures)

    replay = commands.add_parser(
        "replay-failures",
        help="apply parked commits again, after the cause is fixed",
        description=(
            "Apply every parked commit again, stream by stream in version order, to the read model that "
            "parked it; what goes through is released, what fails again stays parked with its new error."
        ),
    )
    replay.add_argument("--projection", help="only this read model")
    common(replay)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # Looked up when called, not bound at import: tests (and callers) that swap sys.stdout see it.
    out = out or sys.stdout
    token = args.token or issue_token("operator", operator=True, secret=load_or_create_secret())
    client = AdminClient(args.api, token)
    try:
        if args.command == "rebuild" and args.release:
            return _release(client, args.release, out)
        if args.command == "rebuild":
            return _rebuild(client, args, out)
        if args.command == "rebuilds":
            return _list_runs(client, out)
        if args.command == "failures":
            return _list_failures(client, args.projection, out)
        if args.command == "replay-failures":
            return _replay_failures(client, args.projection, out)
        return _list_projections(client, out)
    except ApiError as error:
        print(f"orders {args.command}: {error}", file=sys.stderr)
        return 1


def _bar(done: int, total: int | None, width: int = 30) -> str:
    if not total:
        return "[" + " " * width + "]"
    filled = min(width, round(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + f"] {100 * done // total:3d}%"


def progress_line(run: dict[str, Any]) -> str:
    phase = run.get("phase", "?")
    step = PHASES.index(phase) + 1 if phase in PHASES else 0
    exported = int(run.get("events_exported") or 0)
    processed = int(run.get("events_processed") or 0)
    files = f"files {run.get('files_processed', 0)}" + (
        f"/{run['files_total']}" if run.get("files_total") else ""
    )
    return (
        f"{phase:<12} step {step}/{len(PHASES)} {_bar(processed, exported or None)} "
        f"{files}, events {processed:,}/{exported:,} exported, generation {run.get('generation') or '-'}"
    )


def _rebuild(client: AdminClient, args: argparse.Namespace, out: TextIO) -> int:
    started = client.call("POST", "/admin/rebuilds", {"projection": args.projection})
    rebuild_id = started["rebuild_id"]
    print(f"Rebuild {rebuild_id} of {args.projection} started.", file=out, flush=True)
    if args.no_wait:
        return 0
    interactive = out.isatty()
    deadline = time.monotonic() + args.timeout
    last = ""
    while True:
        run = client.call("GET", f"/admin/rebuilds/{rebuild_id}")
        line = progress_line(run)
        if line != last:
            # On a terminal the line redraws itself; in logs each change is its own line.
            print(
                ("\r" + line.ljust(110)) if interactive else line,
                end="" if interactive else "\n",
                file=out,
                flush=True,
            )
            last = line
        if run["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            print(f"\nstill running after {args.timeout:.0f}s; follow it with 'orders rebuilds'", file=out)
            return 2
        time.sleep(0.5)
    if interactive:
        print(file=out)
    if run["status"] == "SUCCEEDED":
        print(
            f"Succeeded: generation {run['generation']} is active, {run['events_processed']:,} events "
            f"from {run.get('files_processed', 0)} export files.",
            file=out,
        )
        if run.get("retirement"):
            print(f"Note: {run['retirement']}", file=out)
        return 0
    print(
        f"Failed: {run.get('error')}. Readers still use generation {run.get('previous_generation')}.",
        file=out,
    )
    return 1


def _release(client: AdminClient, projection: str, out: TextIO) -> int:
    released = client.call("POST", "/admin/rebuilds/release", {"projection": projection})
    print(
        f"Released {projection}: rebuild {released['rebuild_id']} (execution {released['execution_status']}) "
        f"is {released['status']}, generation {released['generation']} dropped; "
        f"a new rebuild of {projection} can start.",
        file=out,
    )
    return 0


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )


def _list_runs(client: AdminClient, out: TextIO) -> int:
    runs = client.call("GET", "/admin/rebuilds")["rebuilds"]
    if not runs:
        print("No rebuilds yet.", file=out)
        return 0
    rows = [["REBUILD", "PROJECTION", "STATUS", "PHASE", "GENERATION", "EVENTS", "STARTED", "ERROR"]]
    for r in runs:
        rows.append(
            [
                r["rebuild_id"],
                r["projection"],
                r["status"],
                r["phase"],
                str(r.get("generation") or "-"),
                f"{r.get('events_processed', 0):,}",
                r["started_at"][:19],
                (r.get("error") or "")[:60],
            ]
        )
    _table(rows, out)
    return 0


def _list_projections(client: AdminClient, out: TextIO) -> int:
    projections = client.call("GET", "/admin/projections")["projections"]
    rows = [["PROJECTION", "ACTIVE GENERATION", "BUILDING", "LAG", "LAST BATCH", "PARKED"]]
    for p in projections:
        lag = "-" if p["lag_ms"] is None else f"{p['lag_ms'] / 1000:.1f}s"
        last = "-" if p["last_batch_seconds_ago"] is None else f"{p['last_batch_seconds_ago']}s ago"
        building = f"{p['building_generation']} ({p['rebuild_id']})" if p["building_generation"] else "-"
        parked = str(p.get("parked_streams") or "-")
        rows.append([p["projection"], str(p["active_generation"]), building, lag, last, parked])
    _table(rows, out)
    return 0


def _list_failures(client: AdminClient, projection: str | None, out: TextIO) -> int:
    query = f"?projection={projection}" if projection else ""
    parked = client.call("GET", f"/admin/failures{query}")["parked"]
    if not parked:
        print("Nothing parked: every read model is applying every commit.", file=out)
        return 0
    rows = [["PROJECTION", "STREAM", "VERSIONS", "PARKED AT", "ERROR"]]
    for p in parked:
        versions = ", ".join(str(v) for v in p["versions"])
        rows.append([p["projection"], p["stream_id"], versions, p["last_parked_at"][:19], p["error"][:80]])
    _table(rows, out)
    print(f"{len(parked)} stream(s) parked; after fixing the cause: orders replay-failures", file=out)
    return 0


def _replay_failures(client: AdminClient, projection: str | None, out: TextIO) -> int:
    body = {"projection": projection} if projection else {}
    outcomes = client.call("POST", "/admin/failures/replay", body)["replayed"]
    if not outcomes:
        print("Nothing parked: nothing to replay.", file=out)
        return 0
    rows = [["PROJECTION", "STREAM", "VERSIONS", "RESULT"]]
    for o in outcomes:
        result = "replayed" if o["replayed"] else f"still parked: {(o['error'] or '')[:80]}"
        rows.append([o["projection"], o["stream_id"], ", ".join(str(v) for v in o["versions"]), result])
    _table(rows, out)
    failed = sum(1 for o in outcomes if not o["replayed"])
    print(f"{len(outcomes) - failed} stream(s) replayed, {failed} still parked", file=out)
    return 1 if failed else 0
