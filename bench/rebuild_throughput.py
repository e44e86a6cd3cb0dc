"""Rebuild throughput on the local stack: events per second through the shared workflow on moto.

    .venv/bin/python -m bench.rebuild_throughput              # 100,000 events (a few minutes)
    .venv/bin/python -m bench.rebuild_throughput --events 2000
    .venv/bin/python -m bench.rebuild_throughput --small --json PATH   # as `python -m bench` runs it

Writes a synthetic log straight into the events table (commit items, as the command service
writes them), then runs `workflows/rebuild.asl.json` on moto's Step Functions interpreter with
the in-process worker, and times each phase. moto is far slower than DynamoDB (it scans whole
tables for some calls and runs in one process), so the figure is a floor, not an AWS estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    REBUILD_EXPORT_POLL_SECONDS="1",
    REBUILD_RETIRE_DELAY_SECONDS="1",
    POWERTOOLS_METRICS_DISABLED="true",
)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.pop("AWS_ENDPOINT_URL", None)

RESULTS = Path(__file__).with_name("results-rebuild.json")
FULL_EVENTS, SMALL_EVENTS = 100_000, 2_000
# The shuffle's memory: export files of these many commits, against a buffer smaller than both (the
# stack's is 64 MB; scaled down so that files of tens of MB exceed it, as 100 M events' files do).
FULL_SHUFFLE_COMMITS, SMALL_SHUFFLE_COMMITS = (25_000, 100_000), (1_000, 4_000)
SHUFFLE_BUFFER_BYTES = 4 * 1024 * 1024
SMALL_SHUFFLE_BUFFER_BYTES = 256 * 1024
DEPLOYED_BUCKETS = 1024  # infra/settings.py's default rebuildBuckets


def synthetic_commits(events: int, seed: int = 1) -> list[Any]:
    from orders_core.domain.orders import ORDER, AddItem, OrderLine, PlaceOrder, ShipOrder, ShippingAddress
    from orders_core.envelope import Commit, CommitMetadata, format_timestamp

    rng = random.Random(seed)
    commits: list[Commit] = []
    produced = 0
    start = datetime(2026, 11, 1, tzinfo=UTC)
    n = 0
    while produced < events:
        order_id = f"00000000-0000-4000-8000-{n:012d}"
        customer = f"customer-{n % 500}"
        at = start + timedelta(minutes=n)
        state = ORDER.initial_state
        version = 0
        lines = tuple(
            OrderLine(
                f"sku-{rng.randint(1, 200)}",
                rng.randint(1, 3),
                Decimal(rng.choice(["4.99", "12.50", "99.00"])),
            )
            for _ in range(rng.randint(1, 3))
        )
        commands: list[Any] = [
            PlaceOrder(order_id, customer, lines, ShippingAddress("1 Main", "Town", "1000", "NL"))
        ]
        if rng.random() < 0.3:
            commands.append(AddItem(order_id, customer, OrderLine("sku-1", 1, Decimal("2.00"))))
        if rng.random() < 0.2:
            commands.append(ShipOrder(order_id, f"T{n}"))
        for index, command in enumerate(commands):
            decided = ORDER.decide(state, command)
            state = ORDER.fold(state, decided)
            meta = CommitMetadata(
                f"c{n}-{index}",
                f"corr{n}",
                f"c{n}-{index}",
                customer,
                format_timestamp(at + timedelta(seconds=index)),
            )
            commits.append(
                Commit(f"order-{order_id}", version + 1, tuple(e.to_new_event() for e in decided), meta)
            )
            version += len(decided)
            produced += len(decided)
        n += 1
    return commits


def run(events: int, projection: str) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        from orders_core.store.codec import commit_to_item
        from orders_core.tables import ALL_TABLES, EVENTS
        from orders_local.moto_server import install_dynamodb_write_lock
        from orders_local.rebuild_runner import create_state_machine

        install_dynamodb_write_lock()
        dynamodb: Any = boto3.client("dynamodb")
        for spec in ALL_TABLES:
            dynamodb.create_table(**spec.create_table_request(spec.local_name("bench")))
            os.environ[spec.env_var] = spec.local_name("bench")
        os.environ["REBUILD_BUCKET"] = "bench-exports"
        # The claim is waited out before the export: keep the projectors' cache short here.
        os.environ["PROJECTION_CONTROL_TTL_SECONDS"] = "0.5"
        commits = synthetic_commits(events)
        loaded = time.perf_counter()
        items = [{"PutRequest": {"Item": commit_to_item(c)}} for c in commits]
        for start in range(0, len(items), 25):
            dynamodb.batch_write_item(RequestItems={EVENTS.local_name("bench"): items[start : start + 25]})
        load_seconds = time.perf_counter() - loaded

        from admin_api import handler as admin
        from projections.handler import handler_for
        from rebuild_worker import handler as worker

        from orders_core import composition
        from orders_local.stream_poller import InMemoryCheckpointStore, PollerSettings, StreamPoller
        from tests.support.apigw import FakeLambdaContext, http_event

        arn = create_state_machine(
            stepfunctions=boto3.client("stepfunctions"),
            dynamodb=dynamodb,
            s3=boto3.client("s3"),
            events_table=EVENTS.local_name("bench"),
            bucket="bench-exports",
            region="us-east-1",
            worker=worker.lambda_handler,
        )
        os.environ["REBUILD_STATE_MACHINE_ARN"] = arn
        # Only what is written from now on (the catch-up marker) goes through the live path.
        stream = dynamodb.describe_table(TableName=EVENTS.local_name("bench"))["Table"]["LatestStreamArn"]
        live = StreamPoller(
            "bench-live",
            streams_client=boto3.client("dynamodbstreams"),
            stream_arn=stream,
            handler=handler_for(composition.root().projector),
            checkpoints=InMemoryCheckpointStore(),
            settings=PollerSettings(starting_position="LATEST", poll_interval_seconds=0.05),
        )
        live.start()
        try:
            started = time.perf_counter()
            reply = admin.lambda_handler(
                http_event(
                    "POST", "/admin/rebuilds", body={"projection": projection}, user="op", operator=True
                ),
                FakeLambdaContext(),
            )
            rebuild_id = json.loads(reply["body"])["rebuild_id"]
            phases: dict[str, float] = {}
            while True:
                run_reply = admin.lambda_handler(
                    http_event("GET", f"/admin/rebuilds/{rebuild_id}", user="op", operator=True),
                    FakeLambdaContext(),
                )
                state = json.loads(run_reply["body"])
                phases.setdefault(state["phase"], time.perf_counter() - started)
                if state["status"] != "RUNNING":
                    break
                time.sleep(0.2)
            seconds = time.perf_counter() - started
        finally:
            live.stop()
        if state["status"] != "SUCCEEDED":
            raise SystemExit(f"rebuild failed: {state.get('error')}")
        # The local floor: the apply writes one row per order (coalesced), and moto in this process
        # takes conditional puts at a rate measured here, with the same write lock.
        rows = len({c.stream_id for c in commits})
        puts_per_second = raw_conditional_puts_per_second(dynamodb, min(2_000, max(200, rows // 10)))
        return {
            "rows_written": rows,
            "raw_puts_per_second": round(puts_per_second),
            "limit_events_per_second": round(state["events_processed"] / rows * puts_per_second),
            "projection": projection,
            "events": state["events_processed"],
            "commits": len(commits),
            "seconds": round(seconds, 2),
            "events_per_second": round(state["events_processed"] / seconds),
            "phases_reached_at_seconds": {k: round(v, 2) for k, v in phases.items()},
            "load_seconds": round(load_seconds, 2),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


class _DiscardingObjects:
    """The ObjectStore port for a memory measurement: the export file is streamed from disk, and
    what the shuffle writes is counted, not kept (kept, it would be the bench's memory, not the
    shuffle's)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self.written = 0
        self.objects = 0

    def put(self, key: str, body: bytes) -> None:
        self.written += len(body)
        self.objects += 1

    def get(self, key: str) -> bytes:
        raise AssertionError("the shuffle streams the export file: it never reads it whole")

    def open(self, key: str) -> IO[bytes]:
        return open(self._path, "rb")

    def list(self, prefix: str) -> list[str]:
        return []

    def delete_prefix(self, prefix: str) -> int:
        return 0


def shuffle_peak_memory(commit_counts: Sequence[int], buffer_bytes: int) -> list[dict[str, Any]]:
    """Peak memory (tracemalloc) of the shuffle step on one export file of each size, with the
    deployed bucket count and a buffer of `buffer_bytes`: flat in the file's size when the shuffle
    streams its input and writes its buckets whenever the buffer fills."""
    import gzip
    import tempfile
    import tracemalloc

    from orders_core.projections.control import ControlStore
    from orders_core.readmodels.memory import InMemoryReadStore
    from orders_core.rebuild.runs import RebuildRun, RunStore
    from orders_core.rebuild.steps import RebuildSteps
    from orders_core.store.codec import commit_to_item
    from orders_core.store.memory import InMemoryEventStore

    figures = []
    for count in commit_counts:
        with tempfile.NamedTemporaryFile(suffix=".json.gz") as export:
            with gzip.open(export.name, "wt", encoding="utf-8") as lines:
                for commit in synthetic_commits(count * 2, seed=count):  # about two events a commit
                    lines.write(json.dumps({"Item": commit_to_item(commit)}) + "\n")
            objects = _DiscardingObjects(export.name)
            control = InMemoryReadStore()
            runs = RunStore(control)
            runs.save_run(
                RebuildRun(
                    rebuild_id="bench", projection="customer_orders", details={"data_prefix": "x/data/"}
                )
            )
            never: Any = None
            steps = RebuildSteps(
                control=ControlStore(control),
                runs=runs,
                objects=objects,
                events=InMemoryEventStore(),
                projection_for=never,
                read_store_for=never,
                now=lambda: "2026-11-29T00:00:00.000000Z",
                buckets=DEPLOYED_BUCKETS,
                shuffle_buffer_bytes=buffer_bytes,
            )
            tracemalloc.start()
            counts = steps.shuffle("bench", "x/data/file.json.gz")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            figures.append(
                {
                    "commits": counts["commits"],
                    "file_bytes": os.path.getsize(export.name),
                    "uncompressed_bytes": objects.written,
                    "objects_written": objects.objects,
                    "peak_bytes": peak,
                }
            )
    return figures


def raw_conditional_puts_per_second(dynamodb: Any, count: int) -> float:
    """Conditional PutItems of a view-row-sized item per second on this process's moto."""
    from orders_core.tables import EVENTS

    request = EVENTS.create_table_request("bench-raw-puts")
    request.pop("StreamSpecification", None)
    dynamodb.create_table(**request)
    payload = "x" * 600
    started = time.perf_counter()
    for n in range(count):
        dynamodb.put_item(
            TableName="bench-raw-puts",
            Item={"stream_id": {"S": f"raw-{n}"}, "version": {"N": "1"}, "doc": {"S": payload}},
            ConditionExpression="attribute_not_exists(version)",
        )
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=None, help=f"events in the synthetic log (default: {FULL_EVENTS})"
    )
    parser.add_argument("--projection", default="customer_orders", help="which read model to rebuild")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--small", action="store_true", help=f"{SMALL_EVENTS:,} events unless --events says")
    parser.add_argument(
        "--json", type=Path, default=None, help=f"write the results here instead of {RESULTS.name}"
    )
    args = parser.parse_args(argv)
    events = args.events or (SMALL_EVENTS if args.small else FULL_EVENTS)
    started = time.perf_counter()
    result = run(events, args.projection)
    sizes = SMALL_SHUFFLE_COMMITS if args.small else FULL_SHUFFLE_COMMITS
    buffer = SMALL_SHUFFLE_BUFFER_BYTES if args.small else SHUFFLE_BUFFER_BYTES
    result["shuffle_memory"] = {"buffer_bytes": buffer, "files": shuffle_peak_memory(sizes, buffer)}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    elif not args.no_save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
