"""The events table read directly: every commit, whatever the API says about it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from orders_core.envelope import EventEnvelope, envelopes_of
from orders_core.projections.live import MARKER_STREAM_PREFIX
from orders_core.store.codec import Item, item_to_commit
from orders_core.tables import EVENTS

EVENTS_TABLE = EVENTS.local_name("orders")  # the name `orders serve` gives it


@dataclass(frozen=True)
class StoredCommit:
    stream_id: str
    first_version: int
    event_count: int
    command_id: str

    @property
    def last_version(self) -> int:
        return self.first_version + self.event_count - 1


def scan_items(client: Any, table: str = EVENTS_TABLE, **request: Any) -> list[dict[str, Any]]:
    """Every item, page by page: one Scan page stops at 1 MB, so one call is not the table."""
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True, **request):
        items.extend(page["Items"])
    return items


def scan_commits(client: Any, table: str = EVENTS_TABLE) -> list[StoredCommit]:
    """Keys and ids of every commit (not the events themselves: smaller pages)."""
    items = scan_items(
        client,
        table,
        ProjectionExpression="stream_id, #v, event_count, command_id",
        ExpressionAttributeNames={"#v": "version"},
    )
    return [
        StoredCommit(
            stream_id=item["stream_id"]["S"],
            first_version=int(item["version"]["N"]),
            event_count=int(item["event_count"]["N"]),
            command_id=item.get("command_id", {}).get("S", ""),
        )
        for item in items
    ]


def count_commits(client: Any, table: str = EVENTS_TABLE, *, rebuild_markers: bool = False) -> int:
    """The table's commits, without rebuild markers unless asked for.

    A rebuild writes its marker commit when its export is done, whenever that is: on a server
    that several modules share, one module's rebuild (the fuzzer's or the authorization matrix's
    `POST /admin/rebuilds`) would otherwise count as another module's request writing something.
    """
    scan: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "Select": "COUNT"}
    if not rebuild_markers:
        scan["FilterExpression"] = "NOT begins_with(stream_id, :marker)"
        scan["ExpressionAttributeValues"] = {":marker": {"S": MARKER_STREAM_PREFIX}}
    total = 0
    for page in client.get_paginator("scan").paginate(**scan):
        total += int(page["Count"])
    return total


def full_log(client: Any, table: str = EVENTS_TABLE) -> list[EventEnvelope]:
    """Every event of every stream, each stream in version order."""
    commits = [item_to_commit(cast(Item, item)) for item in scan_items(client, table)]
    commits.sort(key=lambda c: (c.stream_id, c.first_version))
    return envelopes_of(commits)


@dataclass(frozen=True)
class StreamCheck:
    streams: int
    commits: int
    events: int
    gaps: list[str]  # a stream whose next commit does not start right after the previous one
    repeated: list[str]  # a version held by two commits, or a commit starting below 1

    @property
    def clean(self) -> bool:
        return not self.gaps and not self.repeated


def check_streams(commits: Iterable[StoredCommit]) -> StreamCheck:
    """Versions of each stream must run 1, 2, 3, ... with every version held by exactly one commit."""
    by_stream: dict[str, list[StoredCommit]] = defaultdict(list)
    for commit in commits:
        by_stream[commit.stream_id].append(commit)
    gaps: list[str] = []
    repeated: list[str] = []
    total_commits = total_events = 0
    for stream_id, stream in by_stream.items():
        stream.sort(key=lambda c: c.first_version)
        expected_next = 1
        for commit in stream:
            total_commits += 1
            total_events += commit.event_count
            if commit.first_version < expected_next:
                repeated.append(f"{stream_id}@{commit.first_version} overlaps up to {expected_next - 1}")
            elif commit.first_version > expected_next:
                gaps.append(f"{stream_id}: versions {expected_next}..{commit.first_version - 1} missing")
            expected_next = max(expected_next, commit.last_version + 1)
    return StreamCheck(len(by_stream), total_commits, total_events, gaps, repeated)
