"""In-memory event store: the fake for unit tests, with the same rules as DynamoDB."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence

from orders_core.envelope import Commit, CommitMetadata, NewEvent
from orders_core.errors import ConcurrencyError
from orders_core.store.codec import commit_to_item, item_to_commit


def _first_version(commit: Commit) -> int:
    return commit.first_version


class InMemoryEventStore:
    def __init__(self) -> None:
        # Per stream, commits in order of first version: the item key in DynamoDB.
        self._streams: dict[str, list[Commit]] = {}
        # The condition check and the write must be one step, as in DynamoDB.
        self._lock = threading.Lock()

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> Commit:
        commit = Commit(stream_id, expected_version + 1, tuple(events), metadata)
        # Round-trip through the item codec: same size limit and float check as DynamoDB,
        # and callers cannot mutate what was stored.
        stored = item_to_commit(commit_to_item(commit))
        with self._lock:
            commits = self._streams.setdefault(stream_id, [])
            # The port's rule, as DynamoDB's conditional put on the key (stream_id, first version):
            # refused exactly when a commit already starts there, nothing else checked.
            index = bisect_left(commits, stored.first_version, key=_first_version)
            if index < len(commits) and commits[index].first_version == stored.first_version:
                raise ConcurrencyError(stream_id, expected_version)
            commits.insert(index, stored)
        return stored

    def read_commits(
        self,
        stream_id: str,
        after_version: int = 0,
        *,
        up_to_version: int | None = None,
        recorded_until: str | None = None,
    ) -> list[Commit]:
        with self._lock:
            commits = list(self._streams.get(stream_id, ()))
        selected = []
        for commit in commits:
            if commit.first_version <= after_version:
                continue
            if up_to_version is not None and commit.first_version > up_to_version:
                break
            if recorded_until is not None and commit.metadata.recorded_at > recorded_until:
                break
            selected.append(commit)
        return selected

    def read_commit(self, stream_id: str, first_version: int) -> Commit | None:
        with self._lock:
            commits = list(self._streams.get(stream_id, ()))
        return next((commit for commit in commits if commit.first_version == first_version), None)

    def read_commits_covering(self, stream_id: str, from_version: int) -> list[Commit]:
        with self._lock:
            commits = list(self._streams.get(stream_id, ()))
        # As the DynamoDB store answers: commits starting at or after `from_version`, and before
        # them the one commit that starts earlier, if it reaches `from_version`.
        index = bisect_left(commits, from_version, key=_first_version)
        later = commits[index:]
        if from_version <= 1 or (later and later[0].first_version == from_version):
            return later
        if index and commits[index - 1].last_version >= from_version:
            return [commits[index - 1], *later]
        return later

    def stream_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._streams)
