"""Errors of the event store, raised by every adapter alike."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of the event store's errors."""


class ConcurrencyError(EventStoreError):
    """Someone else appended to the stream since `expected_version` was read."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(
            f"stream {stream_id!r} has moved past version {expected_version}: reload and decide again"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version


class CommitTooLarge(EventStoreError):
    """The commit would not fit in one DynamoDB item; nothing was written.

    `size` is the item's size as we estimate it, `limit` our limit. The estimate is usually
    over the limit; when DynamoDB refuses an item we estimated under it, `message` says so.
    """

    def __init__(self, stream_id: str, size: int, limit: int, *, message: str | None = None) -> None:
        super().__init__(
            message
            or f"the events of this command take {size} bytes, over the {limit}-byte limit of one commit"
        )
        self.stream_id = stream_id
        self.size = size
        self.limit = limit


class InvalidCommit(EventStoreError):
    """A commit the store refuses on its face: no events, bad version, float money."""
