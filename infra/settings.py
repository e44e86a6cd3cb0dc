"""Deployment settings from the CDK context (`cdk.json`, or `-c key=value` on the command line)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context in cdk.json, for apps built outside the CLI (tests), so feature flags match."""
    context = json.loads(path.read_text()).get("context", {})
    assert isinstance(context, dict)
    return context


@dataclass(frozen=True)
class RebuildSettings:
    """How the rebuild workflow (ADR 9) is sized. The defaults are sized for 100 million events
    (ADR 9, "Throughput"); each is a CDK context key of its own (`-c rebuildBuckets=1024`)."""

    # Hash buckets a run splits the events into (the worker's REBUILD_BUCKETS): one apply worker
    # each, which must finish within Lambda's 15 minutes at its share of the table's write rate.
    buckets: int = 1024
    # Apply workers at once (the apply Distributed Map's MaxConcurrency): at ~200 sequential
    # writes/s each, 100 write ~20,000 WCU/s, half a table's default on-demand maximum.
    apply_concurrency: int = 100
    # Shuffle workers at once: 64 x ~40 object writes/s stays below S3's 3,500 PUT/s per prefix.
    shuffle_concurrency: int = 64
    # A shuffle worker holds one export file's fragments in memory; memory also buys CPU.
    worker_memory_mb: int = 2048
    # The whole execution; a run still going after that ends TIMED_OUT (and is abandoned).
    timeout_minutes: int = 6 * 60

    @property
    def timeout_seconds(self) -> int:
        return self.timeout_minutes * 60

    @property
    def peak_concurrency(self) -> int:
        """Worker invocations a run holds at once: the larger map (the maps run one after the other)."""
        return max(self.apply_concurrency, self.shuffle_concurrency)


# Context key -> (field, lowest, highest). Distributed Map runs at most 10,000 child executions at
# once; Lambda memory is 128-10,240 MB; a Standard execution lasts at most a year.
_REBUILD_KEYS: dict[str, tuple[str, int, int]] = {
    "rebuildBuckets": ("buckets", 1, 100_000),
    "rebuildApplyConcurrency": ("apply_concurrency", 1, 10_000),
    "rebuildShuffleConcurrency": ("shuffle_concurrency", 1, 10_000),
    "rebuildWorkerMemoryMb": ("worker_memory_mb", 128, 10_240),
    "rebuildTimeoutMinutes": ("timeout_minutes", 10, 365 * 24 * 60),
}


# Stages whose alarms may notify nobody (a developer's own); every other stage needs a topic.
DEVELOPMENT_STAGES = frozenset({"dev"})


@dataclass(frozen=True)
class Settings:
    stage: str
    cors_allowed_origins: tuple[str, ...]
    throttling_rate_limit: float
    throttling_burst_limit: int
    log_retention: logs.RetentionDays
    alarm_topic_arn: str | None
    rebuild: RebuildSettings = RebuildSettings()

    @classmethod
    def from_node(cls, node: Node) -> Settings:
        def get(key: str) -> Any:
            value = node.try_get_context(key)
            if value is None:
                raise ValueError(f"CDK context {key!r} is missing (set it in cdk.json or with -c {key}=...)")
            return value

        origins = get("corsAllowedOrigins")
        if isinstance(origins, str):  # `-c corsAllowedOrigins=https://a,https://b` on the command line
            origins = [o.strip() for o in origins.split(",") if o.strip()]
        stage = str(get("stage"))
        alarm_topic_arn = str(node.try_get_context("alarmTopicArn") or "") or None
        if alarm_topic_arn is None and stage not in DEVELOPMENT_STAGES:
            raise ValueError(
                f"CDK context 'alarmTopicArn' is missing for stage {stage!r}: its alarms would notify "
                "nobody. Pass the SNS topic they go to (-c alarmTopicArn=arn:aws:sns:...); only "
                f"{', '.join(sorted(DEVELOPMENT_STAGES))} may go without"
            )
        return cls(
            stage=stage,
            cors_allowed_origins=_origins(origins),
            throttling_rate_limit=float(get("apiThrottlingRateLimit")),
            throttling_burst_limit=int(get("apiThrottlingBurstLimit")),
            log_retention=_retention(int(get("logRetentionDays"))),
            alarm_topic_arn=alarm_topic_arn,
            rebuild=_rebuild(node),
        )


def _rebuild(node: Node) -> RebuildSettings:
    values: dict[str, int] = {}
    for key, (field, lowest, highest) in _REBUILD_KEYS.items():
        raw = node.try_get_context(key)
        if raw is None:
            continue
        try:
            value = int(str(raw))
        except ValueError:
            raise ValueError(f"{key}={raw!r} is not a whole number") from None
        if not lowest <= value <= highest:
            raise ValueError(f"{key}={value} is out of range ({lowest} to {highest})")
        values[field] = value
    return RebuildSettings(**values)


def _origins(origins: Sequence[str]) -> tuple[str, ...]:
    if not origins or "*" in origins:
        raise ValueError("corsAllowedOrigins must list the web clients' origins explicitly (no '*')")
    return tuple(origins)


# CloudWatch Logs accepts only these retentions (days); the CDK names them.
_RETENTIONS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTIONS[days]
    except KeyError:
        raise ValueError(
            f"logRetentionDays={days} is not a CloudWatch Logs retention; use one of {sorted(_RETENTIONS)}"
        ) from None
