"""DynamoDB Streams records of the events table, decoded into commits (an adapter: it knows
the stream's record shape and the commit item's format; projections only see commits)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orders_core.envelope import Commit
from orders_core.store.codec import item_to_commit


def commit_from_stream_record(record: Mapping[str, Any]) -> Commit | None:
    """The commit a DynamoDB stream record carries; None for records that add no commit."""
    if record.get("eventName") != "INSERT":
        return None  # commits are never modified or deleted; nothing to project
    image = record.get("dynamodb", {}).get("NewImage")
    if not image:
        raise ValueError("stream record without NewImage: the stream must use NEW_IMAGE")
    return item_to_commit(image)
