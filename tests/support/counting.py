"""Counts the requests a boto3 client sends, by operation: the figure the AWS bill counts."""

from __future__ import annotations

from collections import Counter
from typing import Any


class RequestCounter:
    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def reset(self) -> None:
        self.calls.clear()


def scan_all(client: Any, **request: Any) -> list[dict[str, Any]]:
    """Every item a Scan returns, across pages (a page stops at 1 MB read, before any filter)."""
    return [item for page in client.get_paginator("scan").paginate(**request) for item in page["Items"]]
