"""On paper: what a million commands and a million projected events cost on AWS, and the
hot-stream limit, from the request and capacity counts measured in the same run.

Every price and every assumption is a named constant here and is printed beside the result
in docs/performance.md. Prices are AWS list prices for us-east-1 as assumed for 2026
(on-demand, no free tier, no savings plans); check them before quoting a figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PRICES: dict[str, Any] = {
    "basis": "AWS list prices, us-east-1, as assumed for 2026: on-demand, no free tier, no savings plans",
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second_arm64": 0.0000133334,
    "http_api_per_million_requests": 1.00,  # first 300 million a month; a request up to 512 KB
    "dynamodb_per_million_write_units": 0.625,  # on-demand write request units (after the 2024 cut)
    "dynamodb_per_million_read_units": 0.125,  # on-demand read request units
    "dynamodb_storage_per_gb_month": 0.25,
    "streams_reads_by_lambda": 0.0,  # GetRecords by a Lambda event source mapping is not billed
}

ASSUMPTIONS: dict[str, Any] = {
    "memory_gb": 0.5,  # every API and projection function is 512 MB (infra/lambda_function.py)
    "invocation_ms": 10.0,  # a warm invocation's own work besides DynamoDB (routing, pydantic, logs)
    "dynamodb_request_ms": 5.0,  # one in-region DynamoDB round trip, sequential within an invocation
    "projection_record_ms": 0.5,  # decoding and folding one stream record in a batch
    # A steady day of commands: new orders, commands on orders the instance holds warm, a few on
    # cold instances (short orders: snapshots on, none written yet), rare conflicts.
    "command_mix": {"new_order": 0.35, "warm": 0.55, "cold_snapshots_none_yet": 0.08, "conflict": 0.02},
    "partition_write_units_per_second": 1_000,  # DynamoDB's per-partition limit
    "partition_read_units_per_second": 3_000,
    "stream_batches_per_second_per_shard": 4,  # Lambda polls a stream shard about four times a second
}

VARIANTS = ("ours", "naive", "limit")


def _billed_ms(requests: float, records: float = 0.0) -> float:
    a = ASSUMPTIONS
    return math.ceil(
        a["invocation_ms"] + requests * a["dynamodb_request_ms"] + records * a["projection_record_ms"]
    )


def _lambda_dollars(invocations: float, billed_ms: float) -> float:
    gb_seconds = invocations * billed_ms / 1000 * ASSUMPTIONS["memory_gb"]
    return (
        invocations / 1e6 * PRICES["lambda_per_million_requests"]
        + gb_seconds * PRICES["lambda_per_gb_second_arm64"]
    )


def _dynamodb_dollars(write_units: float, read_units: float) -> tuple[float, float]:
    return (
        write_units / 1e6 * PRICES["dynamodb_per_million_write_units"],
        read_units / 1e6 * PRICES["dynamodb_per_million_read_units"],
    )


def per_million_commands(scenarios: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    mix: Mapping[str, float] = ASSUMPTIONS["command_mix"]
    result: dict[str, Any] = {}
    for variant in VARIANTS:
        requests = sum(share * scenarios[s][variant]["total_requests"] for s, share in mix.items())
        write_units = sum(share * scenarios[s][variant]["write_units"] for s, share in mix.items())
        read_units = sum(share * scenarios[s][variant]["read_units"] for s, share in mix.items())
        n = 1e6
        billed = _billed_ms(requests)
        writes, reads = _dynamodb_dollars(write_units * n, read_units * n)
        parts = {
            "api_gateway": n / 1e6 * PRICES["http_api_per_million_requests"],
            "lambda": _lambda_dollars(n, billed),
            "dynamodb_writes": writes,
            "dynamodb_reads": reads,
        }
        result[variant] = {
            "requests_per_command": round(requests, 3),
            "write_units_per_command": round(write_units, 3),
            "read_units_per_command": round(read_units, 3),
            "billed_ms": billed,
            "dollars": {k: round(v, 4) for k, v in parts.items()},
            "total_dollars": round(sum(parts.values()), 4),
        }
    return result


def per_million_events(delivery: Mapping[str, Any]) -> dict[str, Any]:
    """A million events as the measured delivery (busy: full batches of 100; quiet: one record).
    One projector invocation per batch feeds every read model (ADR 11), so an invocation makes the
    requests of all of them, one after the other."""
    workload = delivery["workload"]
    events_per_record = workload["events"] / workload["records"]
    records = 1e6 / events_per_record
    batch = delivery["batch_size"]
    invocations = records / batch
    result: dict[str, Any] = {
        "events_per_record": round(events_per_record, 3),
        "invocations": round(invocations),
        "read_models": len(delivery["projections"]),
    }
    for variant in VARIANTS:
        per_100 = delivery["per_100_records"][variant]
        requests_per_batch = per_100["total_requests"] / 100 * batch
        billed = _billed_ms(requests_per_batch, batch)
        writes, reads = _dynamodb_dollars(
            per_100["write_units"] / 100 * records, per_100["read_units"] / 100 * records
        )
        parts = {
            "lambda": _lambda_dollars(invocations, billed),
            "dynamodb_writes": writes,
            "dynamodb_reads": reads,
        }
        result[variant] = {
            "requests_per_event": round(per_100["total_requests"] / 100 / events_per_record, 3),
            "billed_ms_per_invocation": billed,
            "dollars": {k: round(v, 4) for k, v in parts.items()},
            "total_dollars": round(sum(parts.values()), 4),
        }
    return result


def hot_stream(scenarios: Mapping[str, Mapping[str, Any]], projections: Mapping[str, Any]) -> dict[str, Any]:
    a = ASSUMPTIONS
    warm_units = scenarios["warm"]["ours"]["write_units"]
    new_units = scenarios["new_order"]["ours"]["write_units"]
    round_trip_ms = a["invocation_ms"] + a["dynamodb_request_ms"]
    sales = projections["busy"]["partitions"].get("sales_analytics", {})
    bytes_per_order = sales["largest_bytes"] / max(1, sales["largest_rows"]) if sales else 0.0
    batches_per_second = a["stream_batches_per_second_per_shard"]
    # The day's summary is recomputed from every contribution row of the day, strongly
    # consistent, once per batch that touches the day.
    orders_per_day_at_read_limit = (
        a["partition_read_units_per_second"] * 4096 / (bytes_per_order * batches_per_second)
        if bytes_per_order
        else 0
    )
    return {
        "partition_write_units_per_second": a["partition_write_units_per_second"],
        "write_units_per_warm_command": warm_units,
        "write_units_per_new_order": new_units,
        "commands_per_second_per_stream_by_partition": round(
            a["partition_write_units_per_second"] / warm_units
        ),
        "commands_per_second_per_stream_by_round_trip": round(1000 / round_trip_ms),
        "round_trip_ms": round_trip_ms,
        "sales_bytes_per_order": round(bytes_per_order),
        "sales_orders_per_day_at_partition_read_limit": round(orders_per_day_at_read_limit),
        "batches_per_second": batches_per_second,
    }


def compute(results: Mapping[str, Any]) -> dict[str, Any]:
    scenarios = {s["id"]: s for s in results["commands"]["scenarios"]}
    projections = results["projections"]
    return {
        "prices": PRICES,
        "assumptions": ASSUMPTIONS,
        "per_million_commands": per_million_commands(scenarios),
        "per_million_events": {mode: per_million_events(projections[mode]) for mode in ("busy", "quiet")},
        "hot_stream": hot_stream(scenarios, projections),
    }
