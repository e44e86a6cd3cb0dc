"""The snapshot store port: the latest state of an aggregate at some version, to fold from.

A snapshot is an optimisation, never the truth: any snapshot may be missing, stale or of
another state schema, and the reader then folds the events instead. That is why saving is a
plain overwrite (a snapshot at version v is the same whoever writes it) and why reads of the
time index may lag (they only choose where folding starts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class SnapshotStoreError(Exception):
    """A snapshot could not be read or written."""


class SnapshotTooLarge(SnapshotStoreError):
    """The snapshot would not fit in one DynamoDB item; nothing was written."""

    def __init__(self, stream_id: str, size: int, limit: int) -> None:
        super().__init__(f"the snapshot of {stream_id} takes {size} bytes, over the {limit}-byte item limit")
        self.stream_id = stream_id
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state after every event up to `version` of its stream."""

    stream_id: str
    version: int
    # Which aggregate type wrote it, and the version of its state's shape: a reader with
    # another shape ignores the snapshot instead of misreading it.
    aggregate: str
    state_schema_version: int
    state: Mapping[str, Any]
    # The command service's idempotency memory, oldest first:
    # [command_id, fingerprint, first_version, last_version, correlation_id].
    recent_commands: Sequence[Sequence[Any]]
    # recorded_at of the stream's first commit and of the last commit folded in.
    first_recorded_at: str
    last_recorded_at: str


class SnapshotStore(Protocol):
    def save(self, snapshot: Snapshot) -> None:
        """Store the snapshot (replacing one at the same version). SnapshotTooLarge if it cannot fit."""
        ...

    def latest(self, stream_id: str, *, at_or_before_version: int | None = None) -> Snapshot | None:
        """The snapshot with the highest version (at most `at_or_before_version`), if any."""
        ...

    def latest_recorded_by(self, stream_id: str, recorded_at: str) -> Snapshot | None:
        """A snapshot whose last folded commit was recorded at or before `recorded_at`, the
        latest such one as far as the store knows (an index may lag a just-written one)."""
        ...
