"""Settings from the CDK context: cdk.json's values, and clear errors for bad ones."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_logs as logs

from infra.settings import RebuildSettings, Settings


def _settings(context: dict[str, Any], **overrides: Any) -> Settings:
    return Settings.from_node(App(context={**context, **overrides}).node)


def test_cdk_json_context_is_complete(context: dict[str, Any]) -> None:
    settings = _settings(context)
    assert settings.stage == context["stage"]
    assert settings.cors_allowed_origins == tuple(context["corsAllowedOrigins"])
    assert settings.throttling_rate_limit == context["apiThrottlingRateLimit"]
    assert settings.throttling_burst_limit == context["apiThrottlingBurstLimit"]


def test_retention_must_be_one_cloudwatch_accepts(context: dict[str, Any]) -> None:
    assert _settings(context, logRetentionDays=14).log_retention == logs.RetentionDays.TWO_WEEKS
    with pytest.raises(ValueError, match="logRetentionDays=31"):
        _settings(context, logRetentionDays=31)


def test_origins_from_the_command_line(context: dict[str, Any]) -> None:
    settings = _settings(context, corsAllowedOrigins="https://a.example, https://b.example")
    assert settings.cors_allowed_origins == ("https://a.example", "https://b.example")


def test_any_origin_is_refused(context: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no '\\*'"):
        _settings(context, corsAllowedOrigins=["*"])


def test_missing_context_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"CDK context '\w+' is missing"):
        Settings.from_node(App().node)


def test_rebuild_sizing_defaults_without_context(context: dict[str, Any]) -> None:
    # cdk.json need not name them: the defaults are sized for 100 million events (ADR 9).
    assert not {key for key in context if key.startswith("rebuild")}
    rebuild = _settings(context).rebuild
    assert rebuild == RebuildSettings()
    assert rebuild.timeout_seconds == 6 * 3600


def test_rebuild_sizing_from_the_command_line(context: dict[str, Any]) -> None:
    rebuild = _settings(
        context,
        rebuildBuckets="512",
        rebuildApplyConcurrency="10",
        rebuildShuffleConcurrency=8,
        rebuildWorkerMemoryMb="1769",
        rebuildTimeoutMinutes="120",
    ).rebuild
    assert rebuild == RebuildSettings(
        buckets=512, apply_concurrency=10, shuffle_concurrency=8, worker_memory_mb=1769, timeout_minutes=120
    )
    assert rebuild.peak_concurrency == 10


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("rebuildApplyConcurrency", "0", "out of range"),
        ("rebuildShuffleConcurrency", "10001", "out of range"),
        ("rebuildWorkerMemoryMb", "64", "out of range"),
        ("rebuildTimeoutMinutes", "5", "out of range"),
        ("rebuildBuckets", "many", "not a whole number"),
    ],
)
def test_rebuild_sizing_refuses_what_aws_would(
    context: dict[str, Any], key: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"{key}=.*{message}"):
        _settings(context, **{key: value})
