"""Captures what a Powertools Logger writes, as the JSON objects CloudWatch would receive."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger


@contextmanager
def json_lines(logger: Logger) -> Iterator[list[dict[str, Any]]]:
    """The lines `logger` writes while the block runs, formatted by its own formatter (so with the
    keys it carries, such as the correlation id). The list fills when the block ends."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    target = logging.getLogger(logger.name)  # the standard logger Powertools writes through
    target.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        target.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line.strip())


def emf_blobs(printed: str) -> list[dict[str, Any]]:
    """The EMF metric objects among printed lines."""
    blobs = []
    for line in printed.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "_aws" in value:
            blobs.append(value)
    return blobs


def metric_names(blob: dict[str, Any]) -> set[str]:
    return {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
