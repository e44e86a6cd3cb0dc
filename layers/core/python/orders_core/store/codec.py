"""How a commit becomes one DynamoDB item, and back. Shared by every store so that the
size limit and the float check hold the same everywhere.

Item: stream_id (S, hash key), version (N, range key: the commit's FIRST version),
event_count (N), events (S: compact JSON array), recorded_at, command_id, correlation_id,
causation_id, actor, command_fingerprint (S). Keying by the first version makes two writers
from the same expected version collide on one key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from orders_core.envelope import Commit, CommitMetadata, NewEvent
from orders_core.errors import CommitTooLarge, InvalidCommit

# DynamoDB allows 409,600 bytes per item; moto stops at 405,000. Stay under both, with room
# for the attributes DynamoDB counts that we do not (rounding of numbers).
MAX_COMMIT_BYTES = 400_000
# DynamoDB's own bounds on the key: a partition key of 1 to 2048 bytes, numbers of up to 38 digits.
MAX_STREAM_ID_BYTES = 2048
MAX_VERSION = 10**38 - 1

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def _reject_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise InvalidCommit(f"float at {path}: money and quantities are decimal strings or integers")
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _reject_floats(inner, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _reject_floats(inner, f"{path}[{index}]")


def encode_events(events: Sequence[NewEvent]) -> str:
    payload = []
    for index, event in enumerate(events):
        _reject_floats(event.data, f"events[{index}].data")
        payload.append(
            {
                "event_id": event.event_id,
                "type": event.type,
                "schema_version": event.schema_version,
                "data": event.data,
            }
        )
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def decode_events(text: str) -> tuple[NewEvent, ...]:
    return tuple(
        NewEvent(
            type=raw["type"],
            data=raw["data"],
            schema_version=int(raw["schema_version"]),
            event_id=raw["event_id"],
        )
        for raw in json.loads(text)
    )


def commit_to_item(commit: Commit) -> Item:
    if not commit.events:
        raise InvalidCommit("a commit needs at least one event")
    if commit.first_version < 1:
        raise InvalidCommit("versions start at 1")
    if commit.first_version > MAX_VERSION:
        raise InvalidCommit(f"versions end at {MAX_VERSION}")
    if not 1 <= len(commit.stream_id.encode("utf-8")) <= MAX_STREAM_ID_BYTES:
        raise InvalidCommit(f"a stream id is 1 to {MAX_STREAM_ID_BYTES} bytes")
    meta = commit.metadata
    item: Item = {
        "stream_id": {"S": commit.stream_id},
        "version": {"N": str(commit.first_version)},
        "event_count": {"N": str(len(commit.events))},
        "events": {"S": encode_events(commit.events)},
        "recorded_at": {"S": meta.recorded_at},
        "command_id": {"S": meta.command_id},
        "correlation_id": {"S": meta.correlation_id},
        "causation_id": {"S": meta.causation_id},
        "actor": {"S": meta.actor},
    }
    if meta.command_fingerprint:
        item["command_fingerprint"] = {"S": meta.command_fingerprint}
    size = item_size(item)
    if size > MAX_COMMIT_BYTES:
        raise CommitTooLarge(commit.stream_id, size, MAX_COMMIT_BYTES)
    return item


def item_to_commit(item: Mapping[str, AttributeValue]) -> Commit:
    def text(name: str) -> str:
        value = item.get(name)
        return str(value["S"]) if value else ""

    return Commit(
        stream_id=text("stream_id"),
        first_version=int(item["version"]["N"]),
        events=decode_events(text("events")),
        metadata=CommitMetadata(
            command_id=text("command_id"),
            correlation_id=text("correlation_id"),
            causation_id=text("causation_id"),
            actor=text("actor"),
            recorded_at=text("recorded_at"),
            command_fingerprint=text("command_fingerprint"),
        ),
    )


def _value_size(value: AttributeValue) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8"))
    if kind == "N":
        digits = len(str(inner).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    raise ValueError(f"unsupported attribute type {kind}")


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """Bytes DynamoDB counts for an item: attribute names plus values (its published rules)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())
