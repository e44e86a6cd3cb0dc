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

        `expected_version` is the stream's last version as the caller read it (0 for a new
        stream). Raises ConcurrencyError when another commit holds that place, CommitTooLarge
        when the commit exceeds one item, InvalidCommit for a malformed commit.
        """
        ...

    def read_commits(self, stream_id: str, after_version: int = 0) -> list[Commit]:
        """Commits whose first version is greater than `after_version`, in version order."""
        ...

    def read_commit(self, stream_id: str, first_version: int) -> Commit | None:
        """The commit that starts at `first_version`, if there is one."""
        ...

    def read_commits_covering(self, stream_id: str, from_version: int) -> list[Commit]:
        """Commits holding versions >= `from_version`, including the one that holds
        `from_version` itself even when it starts earlier."""
        ...
