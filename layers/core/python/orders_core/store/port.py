"""The event store port: what the application needs from any storage of commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orders_core.envelope import Commit, CommitMetadata, NewEvent


class EventStore(Protocol):
    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> Commit:
        """Store `events` as one commit at versions expected_version+1.., all or nothing.

        The caller must pass the stream's last version as it read it (0 for a new stream), which
        always ends a commit; the command service always does.

        The check, made in the same step as the write on every store: ConcurrencyError exactly
        when a commit already starts at expected_version + 1 (commits are keyed by their first
        version). So of two appends at the same expected_version exactly one wins, and a writer
        whose read is stale is refused: the commit appended after the version it read starts
        at that version + 1. Nothing else is checked (DynamoDB cannot in one conditional
        PutItem): an expected_version inside an earlier commit, or past the stream's end, is
        stored as given, overlapping that commit or leaving a gap.

        Raises CommitTooLarge when the commit exceeds one item, InvalidCommit for a malformed
        commit; either way nothing is written.
        """
        ...

    def read_commits(
        self,
        stream_id: str,
        after_version: int = 0,
        *,
        up_to_version: int | None = None,
        recorded_until: str | None = None,
    ) -> list[Commit]:
        """Commits whose first version is greater than `after_version`, in version order.

        `up_to_version` keeps only commits that start at or before it (the last one may run past
        it). `recorded_until` (RFC 3339, as in `recorded_at`) keeps only commits recorded at or
        before it; since times never go backwards within a stream, reading stops at the first
        later commit instead of reading the rest of the stream.
        """
        ...

    def read_commit(self, stream_id: str, first_version: int) -> Commit | None:
        """The commit that starts at `first_version`, if there is one."""
        ...

    def read_commits_covering(self, stream_id: str, from_version: int) -> list[Commit]:
        """Commits holding versions >= `from_version`, including the one that holds
        `from_version` itself even when it starts earlier."""
        ...
