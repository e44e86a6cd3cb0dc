"""Deployment settings from the CDK context (`cdk.json`, or `-c key=value` on the command line)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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

# The CLI signs in through the browser and receives the answer on a listener of its own on the
# loopback interface (RFC 8252, section 7.3): the same URL on every stage, since it names the
# operator's own machine. Cognito accepts plain http for localhost only.
CLI_CALLBACK_URL = "http://localhost:8976/callback"
CLI_LOGOUT_URL = "http://localhost:8976/signed-out"


@dataclass(frozen=True)
class AuthSettings:
    """Where the app clients' sign-in and sign-out may return to, and the managed login domain.

    The defaults are a developer's: a web app on http://localhost:3000 and a mobile app with the
    `orders://` scheme. Every stage but dev must name its own web and mobile URLs (synth stops
    otherwise); each is a CDK context key (`-c authWebCallbackUrls=https://shop.example.com/callback`).
    """

    web_callback_urls: tuple[str, ...] = ("http://localhost:3000/callback",)
    web_logout_urls: tuple[str, ...] = ("http://localhost:3000/",)
    mobile_callback_urls: tuple[str, ...] = ("orders://callback",)
    mobile_logout_urls: tuple[str, ...] = ("orders://signed-out",)
    cli_callback_urls: tuple[str, ...] = (CLI_CALLBACK_URL,)
    cli_logout_urls: tuple[str, ...] = (CLI_LOGOUT_URL,)
    # The managed login pages live at https://<prefix>.auth.<region>.amazoncognito.com; the prefix
    # is unique per region across all of AWS. None: orders-<stage>-<account id>.
    domain_prefix: str | None = None
    # An address verified in Amazon SES that sign-up and recovery mails come from. None: Cognito's
    # own sender, which sends only a few mails a day per pool (docs/auth.md): fine for dev, not for a shop.
    email_from: str | None = None


# Context key -> AuthSettings field, for the redirect URL lists.
_AUTH_URL_KEYS: dict[str, str] = {
    "authWebCallbackUrls": "web_callback_urls",
    "authWebLogoutUrls": "web_logout_urls",
    "authMobileCallbackUrls": "mobile_callback_urls",
    "authMobileLogoutUrls": "mobile_logout_urls",
}
# Cognito domain prefixes: lower-case letters, digits and hyphens, 1 to 63, no reserved words.
_DOMAIN_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_RESERVED_IN_DOMAIN_PREFIX = ("aws", "amazon", "cognito")


@dataclass(frozen=True)
class Settings:
    stage: str
    cors_allowed_origins: tuple[str, ...]
    throttling_rate_limit: float
    throttling_burst_limit: int
    log_retention: logs.RetentionDays
    alarm_topic_arn: str | None
    rebuild: RebuildSettings = RebuildSettings()
    auth: AuthSettings = AuthSettings()

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
            auth=_auth(node, stage),
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


def _auth(node: Node, stage: str) -> AuthSettings:
    values: dict[str, Any] = {}
    for key, name in _AUTH_URL_KEYS.items():
        raw = node.try_get_context(key)
        if raw is None:
            if stage not in DEVELOPMENT_STAGES:
                raise ValueError(
                    f"CDK context {key!r} is missing for stage {stage!r}: its app clients would return to a "
                    f"developer's machine. Give the URLs (-c {key}=https://...,https://...); only "
                    f"{', '.join(sorted(DEVELOPMENT_STAGES))} may use the defaults"
                )
            continue
        values[name] = redirect_urls(key, raw)
    prefix = node.try_get_context("authDomainPrefix")
    if prefix is not None:
        values["domain_prefix"] = domain_prefix(str(prefix))
    email_from = str(node.try_get_context("authEmailFrom") or "") or None
    if email_from is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email_from):
        raise ValueError(f"authEmailFrom={email_from!r} is not an e-mail address")
    values["email_from"] = email_from
    return AuthSettings(**values)


def redirect_urls(key: str, raw: Any) -> tuple[str, ...]:
    """Redirect URLs as Cognito takes them: absolute, no fragment, https (http for localhost only)
    or an app's own scheme (`orders://callback`)."""
    urls = [u.strip() for u in raw.split(",")] if isinstance(raw, str) else [str(u).strip() for u in raw]
    urls = [u for u in urls if u]
    if not urls:
        raise ValueError(f"{key} must name at least one URL")
    for url in urls:
        parts = urlsplit(url)
        if not parts.scheme or not (parts.netloc or parts.path) or parts.fragment or "#" in url:
            raise ValueError(f"{key}: {url!r} is not an absolute URL without a fragment")
        if parts.scheme == "http" and parts.hostname != "localhost":
            raise ValueError(f"{key}: {url!r} uses http, which Cognito allows for localhost only")
        if parts.scheme in ("javascript", "data", "file"):
            raise ValueError(f"{key}: {url!r} cannot be a redirect")
    return tuple(urls)


def domain_prefix(prefix: str) -> str:
    if not _DOMAIN_PREFIX.fullmatch(prefix) or any(word in prefix for word in _RESERVED_IN_DOMAIN_PREFIX):
        raise ValueError(
            f"authDomainPrefix={prefix!r}: 1 to 63 lower-case letters, digits and hyphens, not starting or "
            f"ending with one, without {', '.join(_RESERVED_IN_DOMAIN_PREFIX)}"
        )
    return prefix


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
