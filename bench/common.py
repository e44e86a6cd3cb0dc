"""What the benchmarks share: moto in this process, clients, versions, and the section CLI."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

REGION = "us-east-1"
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# Commands in the benchmarks are recorded from here on, one second apart: times never go back.
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def use_fake_aws() -> None:
    """Never reach AWS: fake credentials, a fixed region, stream calls moto understands in-process."""
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )


@contextmanager
def in_process_moto() -> Iterator[None]:
    use_fake_aws()
    from moto import mock_aws

    with mock_aws():
        yield


def client(service: str = "dynamodb", endpoint_url: str | None = None) -> Any:
    import boto3

    make: Any = boto3.client  # one signature for every service (the stubs overload by name)
    return make(service, region_name=REGION, endpoint_url=endpoint_url)


class InProcessMotoLookup:
    """The meter's item lookups, read straight from the moto backend of this process (no request,
    no serialization: a third of a projection benchmark's time otherwise). Same answers as
    GetItem and DescribeTable on the same tables."""

    def __init__(self, account_id: str = "123456789012", region: str = REGION) -> None:
        from moto.dynamodb.models import dynamodb_backends

        self._backend = dynamodb_backends[account_id][region]

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return dict(self._backend.describe_table(TableName))

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = True) -> dict[str, Any]:
        item = self._backend.get_item(TableName, Key)
        return {"Item": item.to_json()["Attributes"]} if item is not None else {}

    def items(self, table_name: str) -> list[dict[str, Any]]:
        """Every item of the table, as Scan would return them (no request, no serialization)."""
        return [item.to_json()["Attributes"] for item in self._backend.get_table(table_name).all_items()]


def metered_client(endpoint_url: str | None = None) -> tuple[Any, Any]:
    """A DynamoDB client whose requests and capacity are counted, and its meter. In-process (moto's
    mock), the meter looks items up in moto's backend directly; otherwise through a second client."""
    from bench.capacity import Meter

    counted = client(endpoint_url=endpoint_url)
    lookup: Any = InProcessMotoLookup() if endpoint_url is None else client(endpoint_url=endpoint_url)
    return counted, Meter(counted, lookup)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_table(request: dict[str, Any], dynamodb: Any | None = None) -> str:
    (dynamodb or client()).create_table(**request)
    return str(request["TableName"])


def timestamp(n: int) -> str:
    from orders_core.envelope import format_timestamp

    return format_timestamp(START + timedelta(seconds=n))


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "moto": version_of("moto"),
        "boto3": version_of("boto3"),
        "aws-lambda-powertools": version_of("aws-lambda-powertools"),
        "pydantic": version_of("pydantic"),
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def section_main(
    run: Callable[[bool], dict[str, Any]], argv: Sequence[str] | None, description: str | None
) -> int:
    """The CLI every section has: `--small` for the fast version, `--json PATH` for the results."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the fast version (what CI runs)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here (default: print)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.small)
    results["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(results, indent=2) + "\n"
    if args.json is None:
        sys.stdout.write(text)
    else:
        args.json.write_text(text, encoding="utf-8")
    return 0
