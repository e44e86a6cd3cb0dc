"""The events table's export to S3, read back as commits (an adapter: it knows DynamoDB's
export format, gzip JSON Lines of {"Item": <DynamoDB JSON>}, and the commit item's format)."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from orders_core.envelope import Commit
from orders_core.store.codec import item_to_commit

Item = dict[str, Any]


def is_data_file(key: str) -> bool:
    # AWS writes data/<id>.json.gz beside manifest files; moto writes data/<id>.gz only.
    return "/data/" in key and key.endswith(".gz")


def read_export_file(body: bytes) -> Iterator[Item]:
    """Items of one DynamoDB-JSON export file (gzip, one {"Item": {...}} per line)."""
    return read_export_stream(io.BytesIO(body))


def read_export_stream(stream: IO[bytes]) -> Iterator[Item]:
    """The same, read from a stream a line at a time: memory does not grow with the file."""
    with gzip.open(stream, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)["Item"]


def stream_of(item: Item) -> str:
    return str(item["stream_id"]["S"])


def event_count(item: Item) -> int:
    return int(item.get("event_count", {}).get("N", "1"))


def commit_of(item: Item) -> Commit:
    return item_to_commit(item)
