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
class Settings:
    stage: str
    cors_allowed_origins: tuple[str, ...]
    throttling_rate_limit: float
    throttling_burst_limit: int
    log_retention: logs.RetentionDays
    alarm_topic_arn: str | None

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
        return cls(
            stage=str(get("stage")),
            cors_allowed_origins=_origins(origins),
            throttling_rate_limit=float(get("apiThrottlingRateLimit")),
            throttling_burst_limit=int(get("apiThrottlingBurstLimit")),
            log_retention=_retention(int(get("logRetentionDays"))),
            alarm_topic_arn=str(node.try_get_context("alarmTopicArn") or "") or None,
        )


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
