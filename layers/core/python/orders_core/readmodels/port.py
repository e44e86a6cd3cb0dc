"""The read-model store port: the few conditional writes that make projections exact.

Rows live under a (pk, sk) key. Four write rules cover every projection:
- `put_next_version`: a per-stream row moves only from version `expected` to `version`;
- `put_if_newer`: a row derived from others is replaced only by a newer derivation;
- `add_contribution`: commutative counters, applied at most once per source id;
- `apply_atomically`: source rows, each moved only from the version it was read at, together
  with the deltas they make to summary rows, all or nothing (a DynamoDB transaction);
and `delete_if` removes a row only if nobody added to it since it was read;
`delete_partition_prefix_page` deletes a generation nobody reads, one bounded page at a time.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

Key = tuple[str, str]
Row = dict[str, Any]
Number = int | Decimal


class VersionConflict(Exception):
    """The row is not at the version the writer expected."""

    def __init__(self, key: Key, expected: int | None) -> None:
        super().__init__(f"row {key} is not at version {expected}")
        self.key = key
        self.expected = expected


class ReadStoreError(Exception):
    """The store could not do what was asked (throttled, unreachable, denied, a bad request).

    Failed conditions are not errors: they are VersionConflict or a False result. `code` is the
    backend's error code (DynamoDB's `Error.Code`), for logs and retry decisions.
    """

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"read store {operation} failed: {code or 'unknown error'}")
        self.operation = operation
        self.code = code


MAX_ATOMIC_ROWS = 100  # DynamoDB's TransactWriteItems limit: 100 actions on distinct items


@dataclass(frozen=True)
class StateWrite:
    """Replace the row at `key` with `row` at `version`, only if it is still at `expected`
    (None: the row must not exist)."""

    key: Key
    row: Row
    version: int
    expected: int | None


@dataclass(frozen=True)
class SummaryDelta:
    """Change a summary row in place: add to counters (absent counts as 0), set and remove
    attributes. With `only_if_not_after=(name, value)`, only if the row's string attribute `name`
    is absent or not after `value` (<=): a newest-wins slot written only by as new a writer."""

    key: Key
    add: Mapping[str, Number] = field(default_factory=dict)
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: Sequence[str] = ()
    only_if_not_after: tuple[str, str] | None = None


class InvalidCursor(ValueError):
    """A pagination cursor this store did not hand out."""


def encode_cursor(row: Row) -> str:
    """An opaque cursor naming the last row of a page; it never carries the partition itself."""
    position = [str(row["gsi1sk"]), str(row["pk"]), str(row["sk"])]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc
    if not (isinstance(position, list) and len(position) == 3 and all(isinstance(p, str) for p in position)):
        raise InvalidCursor("cursor is not one this API returned")
    return position[0], position[1], position[2]


# Items a deletion page evaluates (DynamoDB's Scan `Limit`, counted before the filter): a page
# ends within about 1 MB read, whatever the table holds, and a caller can stop between pages.
DELETE_PAGE_ITEMS = 1_000


def encode_key_cursor(key: Key) -> str:
    """An opaque cursor naming the last (pk, sk) a scan evaluated."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str) -> Key:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not one this store returned") from exc
    if not (isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position)):
        raise InvalidCursor("cursor is not one this store returned")
    return position[0], position[1]


class ReadStore(Protocol):
    def get_many(self, keys: Sequence[Key]) -> dict[Key, Row]:
        """Rows that exist among `keys` (strongly consistent)."""
        ...

    def put_next_version(self, key: Key, row: Row, *, version: int, expected: int | None) -> None:
        """Write `row` at `version` if the stored row is at `expected` (None: absent)."""
        ...

    def put_if_newer(self, key: Key, row: Row, *, version: int) -> bool:
        """Write `row` unless the stored row's version is >= `version`; True if written."""
        ...

    def add_contribution(
        self,
        key: Key,
        *,
        sources: Sequence[str],
        counters: Mapping[str, Number],
        fields: Mapping[str, Any],
    ) -> bool:
        """Atomically add `counters`, set `fields` and record `sources` as applied, unless any
        of `sources` was applied before (then change nothing and return False)."""
        ...

    def apply_atomically(self, states: Sequence[StateWrite], deltas: Sequence[SummaryDelta]) -> list[Key]:
        """Write every state row and apply every delta, or nothing. Answers the keys whose
        condition failed (then nothing was written); an empty list when all was applied.

        At most MAX_ATOMIC_ROWS rows in all, each key once (else ValueError). Attribute names
        may hold any character (`qty:sku-1`)."""
        ...

    def delete_if(self, key: Key, *, counter: str, equals: Number) -> bool:
        """Delete the row if its `counter` is `equals` (nothing was added since it was read);
        True if deleted, False if the row moved on or is gone."""
        ...

    def query_partition(self, pk: str) -> list[Row]:
        """Every row under `pk`, strongly consistent."""
        ...

    def query_index(
        self, index_pk: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Row], str | None]:
        """Rows whose `gsi1pk` is `index_pk`, by descending `gsi1sk`, a page at a time."""
        ...

    def delete_partition_prefix_page(
        self, prefix: str, *, cursor: str | None = None, limit: int = DELETE_PAGE_ITEMS
    ) -> tuple[int, str | None]:
        """Retire or abandon a generation a page at a time: evaluate the next `limit` rows of the
        table after `cursor` (None: from the start), delete those whose pk starts with `prefix`.
        Answers how many were deleted and the cursor to go on from, None when the table has no
        more rows. A page may delete none and still have more; repeating a page deletes nothing
        twice. Rows written behind the cursor are not seen."""
        ...
