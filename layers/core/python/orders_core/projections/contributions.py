"""Cross-stream rows (a day's sales, a product's stock) built from per-source contributions.

Each source (an order, a product stream) adds commutative counters to its own contribution
row, applied at most once per commit (the row remembers which commit versions it holds). The
partition's summary is then recomputed from all its contribution rows and stored only if it
reflects more applied commits than the stored one: redeliveries, replays and races between
concurrent batches cannot double or lose anything.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orders_core.envelope import Commit
from orders_core.projections.base import ORDER_PREFIX, Fact, facts, fail_all, group_by
from orders_core.readmodels.port import Key, Number, ReadStore, Row
from orders_core.store.port import EventStore

SUMMARY = "summary"


@dataclass
class Contribution:
    """What some commits of one source add to one partition."""

    counters: dict[str, Number] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def bump(self, name: str, amount: Number) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def add(self, other: Contribution) -> None:
        for name, amount in other.counters.items():
            self.bump(name, amount)
        self.fields.update(other.fields)


def apply_contributions(store: ReadStore, key: Key, by_version: Mapping[int, Contribution]) -> None:
    """Add each commit's contribution to the row at `key`, skipping commits already applied."""
    pending = dict(by_version)
    for _ in range(2):
        if not pending:
            return
        total = Contribution()
        for contribution in pending.values():
            total.add(contribution)
        # Zero amounts are kept: a free item was still sold and still ranks among the day's products.
        sources = [str(version) for version in sorted(pending)]
        if store.add_contribution(key, sources=sources, counters=total.counters, fields=total.fields):
            return
        # Some of these commits were applied before (a redelivery): keep only the others.
        row = store.get_many([key]).get(key, {})
        applied = {int(source) for source in row.get("applied", ())}
        pending = {version: c for version, c in pending.items() if version not in applied}
    if pending:
        raise RuntimeError(f"contribution to {key} could not be applied")


def revision(rows: Sequence[Row]) -> int:
    """Grows with every commit applied to the partition; equal only for identical contents."""
    return sum(len(row.get("applied", ())) for row in rows if row["sk"] != SUMMARY) + sum(
        int(row.get("version", 0)) for row in rows if row["sk"] != SUMMARY and "applied" not in row
    )


def counter_groups(row: Row, prefix: str) -> dict[str, Decimal]:
    """Counters named `<prefix><id>` as {id: amount}."""
    return {name[len(prefix) :]: Decimal(value) for name, value in row.items() if name.startswith(prefix)}


class FirstCommits:
    """An order's first commit (OrderPlaced: its customer, its day) never changes: remember it."""

    def __init__(self, events: EventStore, capacity: int = 10_000) -> None:
        self._events = events
        self._capacity = capacity
        self._known: OrderedDict[str, Commit] = OrderedDict()

    def of(self, stream_id: str, batch: Sequence[Commit]) -> Commit:
        for commit in batch:
            if commit.stream_id == stream_id and commit.first_version == 1:
                return commit
        if stream_id not in self._known:
            first = self._events.read_commit(stream_id, 1)
            if first is None:
                raise LookupError(f"{stream_id} has no first commit")
            self._known[stream_id] = first
            while len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return self._known[stream_id]


class SummarizedPartitions:
    """What the cross-stream read models share: one partition per entity (a day, a product, a
    customer) holding contribution rows, and a summary row recomputed from them."""

    def __init__(self, store: ReadStore, generation: int = 1) -> None:
        self._store = store
        self._generation = generation

    def _partition(self, entity: str) -> str:
        return f"{self._generation}#{entity}"

    def summarize(self, entity: str, rows: Sequence[Row]) -> dict[str, Any]:
        raise NotImplementedError

    def refresh(self, entity: str) -> None:
        rows = self._store.query_partition(self._partition(entity))
        summary = json.dumps(self.summarize(entity, rows))
        self._store.put_if_newer((self._partition(entity), SUMMARY), {"doc": summary}, version=revision(rows))

    def apply_parts(
        self,
        parts: Mapping[tuple[str, str], Mapping[int, Contribution]],
        members: Mapping[tuple[str, str], list[tuple[int, Commit]]],
        failures: dict[int, Exception],
    ) -> dict[str, list[tuple[int, Commit]]]:
        """Apply each (entity, row kind)'s contributions by commit version; the entities touched,
        with the commits that touched them (failed ones are reported in `failures`)."""
        touched: dict[str, list[tuple[int, Commit]]] = {}
        for (entity, row_kind), by_version in parts.items():
            try:
                apply_contributions(self._store, (self._partition(entity), row_kind), by_version)
                touched.setdefault(entity, []).extend(members[(entity, row_kind)])
            except Exception as error:
                fail_all(failures, members[(entity, row_kind)], error)
        return touched

    def refresh_all(
        self, touched: Mapping[str, list[tuple[int, Commit]]], failures: dict[int, Exception]
    ) -> None:
        for entity, who in touched.items():
            try:
                self.refresh(entity)
            except Exception as error:
                fail_all(failures, who, error)

    def get(self, entity: str) -> dict[str, Any] | None:
        key = (self._partition(entity), SUMMARY)
        row = self._store.get_many([key]).get(key)
        return {**json.loads(row["doc"]), "revision": int(row["version"])} if row else None


class OrderContributions(SummarizedPartitions):
    """A cross-stream read model fed by order streams only: each order contributes to the
    partition its first commit names (the day it was placed, its customer)."""

    def __init__(self, store: ReadStore, events: EventStore, generation: int = 1) -> None:
        super().__init__(store, generation)
        self._first_commits = FirstCommits(events)

    def contribution(self, fact: Fact) -> Contribution | None:
        raise NotImplementedError

    def entity_of(self, first_commit: Commit) -> str:
        raise NotImplementedError

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        failures: dict[int, Exception] = {}
        touched: dict[str, list[tuple[int, Commit]]] = {}
        groups = group_by(commits, lambda c: c.stream_id if c.stream_id.startswith(ORDER_PREFIX) else None)
        for stream_id, members in groups.items():
            by_version: dict[int, Contribution] = {}
            for _, commit in members:
                for fact in facts(commit):
                    part = self.contribution(fact)
                    if part is not None:
                        by_version.setdefault(commit.first_version, Contribution()).add(part)
            if not by_version:
                continue
            try:
                entity = self.entity_of(self._first_commits.of(stream_id, [c for _, c in members]))
                key = (self._partition(entity), f"order#{stream_id.removeprefix(ORDER_PREFIX)}")
                apply_contributions(self._store, key, by_version)
                touched.setdefault(entity, []).extend(members)
            except Exception as error:
                fail_all(failures, members, error)
        for entity, members in touched.items():
            try:
                self.refresh(entity)
            except Exception as error:
                fail_all(failures, members, error)
        return failures
