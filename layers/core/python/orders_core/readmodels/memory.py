"""In-memory read store: the fake for unit tests, with the same conditional rules."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from orders_core.readmodels.port import (
    DELETE_PAGE_ITEMS,
    MAX_ATOMIC_ROWS,
    Key,
    Number,
    Row,
    StateWrite,
    SummaryDelta,
    VersionConflict,
    decode_cursor,
    decode_key_cursor,
    encode_cursor,
    encode_key_cursor,
)


class InMemoryReadStore:
    def __init__(self) -> None:
        self._rows: dict[Key, Row] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Row]:
        with self._lock:
            return {key: copy.deepcopy(self._rows[key]) for key in keys if key in self._rows}

    def put_next_version(self, key: Key, row: Row, *, version: int, expected: int | None) -> None:
        with self._lock:
            current = self._rows.get(key)
            current_version = None if current is None else current["version"]
            if current_version != expected:
                raise VersionConflict(key, expected)
            self._rows[key] = {**copy.deepcopy(row), "pk": key[0], "sk": key[1], "version": version}

    def put_if_newer(self, key: Key, row: Row, *, version: int) -> bool:
        with self._lock:
            current = self._rows.get(key)
            if current is not None and current["version"] >= version:
                return False
            self._rows[key] = {**copy.deepcopy(row), "pk": key[0], "sk": key[1], "version": version}
            return True

    def add_contribution(
        self,
        key: Key,
        *,
        sources: Sequence[str],
        counters: Mapping[str, Number],
        fields: Mapping[str, Any],
    ) -> bool:
        with self._lock:
            row = self._rows.setdefault(key, {"pk": key[0], "sk": key[1]})
            applied: set[str] = row.setdefault("applied", set())
            if applied & set(sources):
                return False
            applied.update(sources)
            for name, amount in counters.items():
                row[name] = row.get(name, 0) + amount
            row.update(copy.deepcopy(dict(fields)))
            return True

    def apply_atomically(self, states: Sequence[StateWrite], deltas: Sequence[SummaryDelta]) -> list[Key]:
        _check_atomic_keys([state.key for state in states] + [delta.key for delta in deltas])
        with self._lock:
            # Every condition first, against the rows as they are: one failure writes nothing.
            failed = [state.key for state in states if not self._at_expected(state)]
            failed += [delta.key for delta in deltas if not self._holds(delta)]
            if failed:
                return failed
            for state in states:
                self._rows[state.key] = {
                    **copy.deepcopy(state.row),
                    "pk": state.key[0],
                    "sk": state.key[1],
                    "version": state.version,
                }
            for delta in deltas:
                if not (delta.add or delta.set or delta.remove):
                    continue  # only a condition: DynamoDB checks it and creates no row
                row = self._rows.setdefault(delta.key, {"pk": delta.key[0], "sk": delta.key[1]})
                for name, amount in delta.add.items():
                    row[name] = row.get(name, 0) + amount
                row.update(copy.deepcopy(dict(delta.set)))
                for name in delta.remove:
                    row.pop(name, None)
            return []

    def _at_expected(self, state: StateWrite) -> bool:
        # A row a delta created has no version: it is neither absent nor at any version.
        row = self._rows.get(state.key)
        if row is None:
            return state.expected is None
        return state.expected is not None and row.get("version") == state.expected

    def _holds(self, delta: SummaryDelta) -> bool:
        if delta.only_if_not_after is None:
            return True
        name, value = delta.only_if_not_after
        stored = self._rows.get(delta.key, {}).get(name)
        return stored is None or str(stored) <= value

    def delete_if(self, key: Key, *, counter: str, equals: Number) -> bool:
        with self._lock:
            row = self._rows.get(key)
            if row is None or row.get(counter) != equals:
                return False
            del self._rows[key]
            return True

    def query_partition(self, pk: str) -> list[Row]:
        with self._lock:
            rows = [copy.deepcopy(row) for key, row in self._rows.items() if key[0] == pk]
        return sorted(rows, key=lambda row: str(row["sk"]))

    def query_index(
        self, index_pk: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Row], str | None]:
        with self._lock:
            rows = [copy.deepcopy(row) for row in self._rows.values() if row.get("gsi1pk") == index_pk]
        rows.sort(key=_index_position, reverse=True)
        if cursor is not None:
            after = decode_cursor(cursor)
            rows = [row for row in rows if _index_position(row) < after]
        page = rows[:limit]
        return page, encode_cursor(page[-1]) if len(rows) > limit else None

    def delete_partition_prefix_page(
        self, prefix: str, *, cursor: str | None = None, limit: int = DELETE_PAGE_ITEMS
    ) -> tuple[int, str | None]:
        if limit < 1:
            raise ValueError("a page evaluates at least one row")
        after = decode_key_cursor(cursor) if cursor is not None else None
        with self._lock:
            # Key order stands in for DynamoDB's scan order: stable, and resumable from a key
            # that has been deleted since.
            remaining = sorted(key for key in self._rows if after is None or key > after)
            evaluated = remaining[:limit]
            doomed = [key for key in evaluated if key[0].startswith(prefix)]
            for key in doomed:
                del self._rows[key]
        return len(doomed), encode_key_cursor(evaluated[-1]) if len(remaining) > limit else None


def _check_atomic_keys(keys: Sequence[Key]) -> None:
    # DynamoDB's limits on a transaction, so the fake refuses what the real store would.
    if len(keys) > MAX_ATOMIC_ROWS:
        raise ValueError(f"{len(keys)} rows in one atomic write, at most {MAX_ATOMIC_ROWS}")
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"rows written twice in one atomic write: {duplicates}")


def _index_position(row: Row) -> tuple[str, str, str]:
    return (str(row["gsi1sk"]), str(row["pk"]), str(row["sk"]))
