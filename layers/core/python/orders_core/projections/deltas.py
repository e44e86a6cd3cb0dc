"""Cross-stream read models kept by deltas: cost flat in the size of what they summarize.

A summary (a day's sales, a product's stock) is the sum of what its *sources* (the orders and
product streams that name it) contribute. Each source keeps its own state in a row of its own:
the commit versions it has folded in, and whatever the read model needs to know about it (an
order's lines, whether it was cancelled). A batch folds each source's new commits into that state,
and what the source contributes to each summary before and after gives the *delta* to add there.

The source rows and the deltas they cause are written in one transaction, each source row only
if it is still at the version it was read at (`ReadStore.apply_atomically`). A redelivered commit
is already in its source's state and adds nothing; two writers racing on one source (the stream
and a rebuild, a replay) cannot both pass the version check; a crash leaves all of a transaction
or none of it. No summary is ever recomputed from its partition: a batch reads only its sources'
rows (none at all when this process wrote them last: they are cached, the version check catches
a stale copy) and adds to a handful of summary rows.

A summary is split over `shards` rows (partition keys `<generation>#<summary>#<k>`) that readers
add up: each transaction adds to one shard, chosen by its first source, so concurrent batches
from different stream shards rarely contend for one item, and a hot day's writes spread over
several partitions' throughput.

Two things are not sums, for read models of one shard (a customer's summary): attributes a
source *owns* (an open order's entry: set while it holds, removed after), and the *latest* of the
sources by a key (the customer's last order), set only if no newer one is stored (a condition on
the summary row; a transaction that loses re-reads it).
"""

from __future__ import annotations

import random
import time
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orders_core.envelope import Commit
from orders_core.projections.base import ORDER_PREFIX, Fact, facts, fail_all, group_by
from orders_core.readmodels.port import (
    MAX_ATOMIC_ROWS,
    Key,
    Number,
    ReadStore,
    ReadStoreError,
    StateWrite,
    SummaryDelta,
)

SOURCE_SK = "state"
SHARD_SK = "summary"
REVISION = "revision"
# Source rows kept in memory per read model and generation: a hit saves the batch's one read.
SOURCE_CACHE_SIZE = 10_000
# Rounds of re-reading what moved under us (a source's row, a newest-wins slot) before the batch
# is delivered again instead; between rounds, a short random pause lets the other writer finish.
CONFLICT_ROUNDS = 6
CONFLICT_PAUSE_SECONDS = 0.02

Shares = dict[str, dict[str, Number]]
Owned = dict[str, dict[str, Any]]
Latest = dict[str, tuple[str, dict[str, Any]]]
LATEST_KEY, LATEST = "latest_key", "latest"


@dataclass(frozen=True)
class SourceState:
    """A source as a read model remembers it: the commits folded in and what they amount to."""

    applied: frozenset[int]
    data: Mapping[str, Any]

    @property
    def version(self) -> int | None:
        return len(self.applied) or None


EMPTY = SourceState(frozenset(), {})


@dataclass
class Plan:
    """One source's new state and the deltas it makes, with the commits that caused them."""

    source: str
    before: SourceState
    after: SourceState
    members: list[tuple[int, Commit]]


class SourceConflict(ReadStoreError):
    """A source's row kept moving between our read and our write: the batch is delivered again."""

    def __init__(self, source: str) -> None:
        super().__init__("apply_atomically", "ConditionalCheckFailed")
        self.source = source


class DeltaSummaries:
    """The machinery; a read model says what its sources are, how events change a source's state
    (`fold`, independent of the order commits arrive in) and what a state contributes
    (`shares`), and how summed counters read (`present`)."""

    name: str
    shards: int = 1

    def __init__(self, store: ReadStore, generation: int = 1, *, cache_size: int = SOURCE_CACHE_SIZE) -> None:
        model = type(self)
        self._has_latest = model.latest is not DeltaSummaries.latest
        if self.shards > 1 and (self._has_latest or model.owned is not DeltaSummaries.owned):
            raise TypeError(f"{self.name}: owned and latest attributes need a summary of one shard")
        self._store = store
        self._generation = generation
        self._cache: OrderedDict[str, SourceState] = OrderedDict()
        self._cache_size = cache_size
        # The latest key each summary holds, as last read or written here (latest() models only).
        self._latest_keys: OrderedDict[str, str | None] = OrderedDict()

    # -- what a read model defines ---------------------------------------------------------------

    def source_of(self, commit: Commit) -> str | None:
        """The source a commit belongs to (its stream), or None if the read model ignores it: by
        default, the order streams."""
        return commit.stream_id if commit.stream_id.startswith(ORDER_PREFIX) else None

    def fold(self, data: dict[str, Any], fact: Fact) -> None:
        """Change a source's state by one event (in place). Commits of a source may arrive in any
        order (a parked commit is replayed after later ones), so the result must not depend on it."""
        raise NotImplementedError

    def shares(self, data: Mapping[str, Any]) -> Shares:
        """What a source in this state adds to each summary it names. Once named, a summary stays
        named (perhaps with nothing to add), so that its revision never goes back."""
        raise NotImplementedError

    def present(self, entity: str, counters: Mapping[str, Decimal]) -> dict[str, Any]:
        """A summary as readers see it, from its counters summed over its shards."""
        raise NotImplementedError

    def owned(self, data: Mapping[str, Any]) -> Owned:
        """Attributes only this source writes on a summary (one-shard models): set or removed."""
        return {}

    def latest(self, data: Mapping[str, Any]) -> Latest:
        """This source as a candidate for a summary's newest-wins slot: (its key, its value)."""
        return {}

    def present_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """What readers see of the owned attributes and the newest-wins slot (LATEST)."""
        return {}

    # -- keys ------------------------------------------------------------------------------------

    def _source_key(self, source: str) -> Key:
        return (f"{self._generation}#source#{source}", SOURCE_SK)

    def _shard_key(self, entity: str, shard: int) -> Key:
        # The shard is part of the partition key: each shard row is its own partition key, so a hot
        # summary's writes hash to different partitions (items under one key share one partition).
        return (f"{self._generation}#{entity}#{shard}", SHARD_SK)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, entity: str) -> dict[str, Any] | None:
        keys = [self._shard_key(entity, shard) for shard in range(self.shards)]
        rows = self._store.get_many(keys).values()
        if not rows:
            return None
        counters: dict[str, Decimal] = defaultdict(Decimal)
        fields: dict[str, Any] = {}
        for row in rows:
            for name, value in row.items():
                if name in ("pk", "sk"):
                    continue
                if isinstance(value, int | Decimal) and not isinstance(value, bool):
                    counters[name] += Decimal(value)
                else:
                    fields[name] = value
        revision = int(counters.pop(REVISION, Decimal(0)))
        return {**self.present(entity, counters), **self.present_fields(fields), "revision": revision}

    def _load(
        self, sources: Iterable[str], *, fresh: bool = False, starting: Iterable[str] = ()
    ) -> dict[str, SourceState]:
        """Each source's state: cached, else read. A source whose first commit is in the batch
        (`starting`) is taken to be new without a read; if it is not (a redelivery), its row's
        version check fails and it is read then."""
        states: dict[str, SourceState] = {}
        missing: list[str] = []
        new = set(starting)
        for source in sources:
            cached = None if fresh else self._cache.get(source)
            if cached is not None:
                states[source] = cached
            elif source in new and not fresh:
                states[source] = EMPTY
            else:
                missing.append(source)
        if missing:
            rows = self._store.get_many([self._source_key(source) for source in missing])
            for source in missing:
                row = rows.get(self._source_key(source))
                states[source] = (
                    EMPTY
                    if row is None
                    else SourceState(frozenset(int(v) for v in row["applied"]), dict(row["state"]))
                )
        return states

    def _remember(self, source: str, state: SourceState) -> None:
        self._cache[source] = state
        self._cache.move_to_end(source)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- writing ---------------------------------------------------------------------------------

    def _plan(
        self,
        source: str,
        state: SourceState,
        members: list[tuple[int, Commit]],
        failures: dict[int, Exception],
    ) -> Plan | None:
        """Fold the source's new commits in version order. If the read model's code fails on one,
        that commit and the source's later ones fail (they wait behind it); earlier ones go on."""
        data: dict[str, Any] = _copy(state.data)
        applied = set(state.applied)
        ordered = sorted(members, key=lambda member: member[1].first_version)
        for index, (_, commit) in enumerate(ordered):
            if commit.first_version in applied:
                continue  # a redelivery: already in the source's state
            before = _copy(data)
            try:
                for fact in facts(commit):
                    self.fold(data, fact)
            except Exception as error:
                fail_all(failures, ordered[index:], error)
                data, ordered = before, ordered[:index]
                break
            if data != before:
                applied.add(commit.first_version)
        if len(applied) == len(state.applied):
            return None
        return Plan(source, state, SourceState(frozenset(applied), data), ordered)

    def _with_revision(self, state: SourceState) -> Shares:
        shares = self.shares(state.data) if state.applied else {}
        return {entity: {**counters, REVISION: len(state.applied)} for entity, counters in shares.items()}

    def _deltas(self, plan: Plan) -> Shares:
        before, after = self._with_revision(plan.before), self._with_revision(plan.after)
        deltas: Shares = {}
        for entity in before.keys() | after.keys():
            old, new = before.get(entity, {}), after.get(entity, {})
            change = {name: new.get(name, 0) - old.get(name, 0) for name in old.keys() | new.keys()}
            change = {name: amount for name, amount in change.items() if amount != 0}
            if change:
                deltas[entity] = change
        return deltas

    def _write(self, plans: Sequence[Plan]) -> list[Key]:
        """One transaction: every plan's source row and the sum of their deltas per summary."""
        shard = zlib.crc32(plans[0].source.encode()) % self.shards
        summed: dict[str, dict[str, Number]] = defaultdict(dict)
        sets: dict[str, dict[str, Any]] = defaultdict(dict)
        removes: dict[str, set[str]] = defaultdict(set)
        for plan in plans:
            for entity, change in self._deltas(plan).items():
                for name, amount in change.items():
                    summed[entity][name] = summed[entity].get(name, 0) + amount
            before, after = self.owned(plan.before.data), self.owned(plan.after.data)
            for entity in before.keys() | after.keys():
                old, new = before.get(entity, {}), after.get(entity, {})
                sets[entity].update({name: value for name, value in new.items() if old.get(name) != value})
                removes[entity].update(name for name in old if name not in new)
        conditions = self._latest_updates(plans, sets)
        states = [
            StateWrite(
                self._source_key(plan.source),
                {"applied": sorted(plan.after.applied), "state": _copy(plan.after.data)},
                version=len(plan.after.applied),
                expected=plan.before.version,
            )
            for plan in plans
        ]
        deltas = [
            SummaryDelta(
                self._shard_key(entity, shard),
                add=summed.get(entity, {}),
                set=sets.get(entity, {}),
                remove=sorted(removes.get(entity, ())),
                only_if_not_after=(LATEST_KEY, conditions[entity]) if entity in conditions else None,
            )
            for entity in summed.keys() | sets.keys() | removes.keys()
        ]
        failed = self._store.apply_atomically(states, deltas)
        for entity in conditions:
            if self._shard_key(entity, shard) in failed:
                self._latest_keys.pop(entity, None)
            elif not failed and LATEST_KEY in sets.get(entity, {}):
                self._remember_latest(entity, sets[entity][LATEST_KEY])
        return failed

    def _latest_updates(self, plans: Sequence[Plan], sets: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Set each summary's newest-wins slot where a plan's source is at least as new as the
        stored one (as last seen here); answers the key each such write sets."""
        candidates: dict[str, tuple[str, dict[str, Any]]] = {}
        for plan in plans:
            for entity, (key, value) in self.latest(plan.after.data).items():
                if entity not in candidates or key > candidates[entity][0]:
                    candidates[entity] = (key, value)
        if not candidates:
            return {}
        self._read_latest(candidates)
        conditions: dict[str, str] = {}
        for entity, (key, value) in candidates.items():
            stored = self._latest_keys[entity]
            if stored is None or key >= stored:
                # Written only if nothing newer is stored by then (another writer may have been
                # quicker: the transaction fails, the row is re-read, and we are no longer newest).
                sets[entity].update({LATEST_KEY: key, LATEST: value})
                conditions[entity] = key
        return conditions

    def _read_latest(self, entities: Iterable[str]) -> None:
        """The newest-wins key of each summary not known here yet, in one read."""
        unknown = [entity for entity in entities if entity not in self._latest_keys]
        if unknown:
            rows = self._store.get_many([self._shard_key(entity, 0) for entity in unknown])
            for entity in unknown:
                self._remember_latest(entity, rows.get(self._shard_key(entity, 0), {}).get(LATEST_KEY))

    def _remember_latest(self, entity: str, key: str | None) -> None:
        self._latest_keys[entity] = key
        self._latest_keys.move_to_end(entity)
        while len(self._latest_keys) > self._cache_size:
            self._latest_keys.popitem(last=False)

    def _transactions(self, plans: Sequence[Plan]) -> list[list[Plan]]:
        """Pack plans into transactions of at most MAX_ATOMIC_ROWS rows (sources + summaries).

        With a newest-wins slot, each summary's sources go in transactions of their own: the
        slot's condition is the one other writers contend for (a rebuild's workers and the stream
        on one customer), and a lost race then retries that summary alone."""
        if not self._has_latest:
            return self._packed(plans)
        by_summary: dict[tuple[str, ...], list[Plan]] = defaultdict(list)
        for plan in plans:
            by_summary[tuple(sorted(self.latest(plan.after.data)))].append(plan)
        return [transaction for group in by_summary.values() for transaction in self._packed(group)]

    def _packed(self, plans: Sequence[Plan]) -> list[list[Plan]]:
        packed: list[list[Plan]] = []
        current: list[Plan] = []
        entities: set[str] = set()
        for plan in plans:
            named = {*self._deltas(plan), *self.owned(plan.after.data), *self.owned(plan.before.data)}
            if current and len(current) + 1 + len(entities | named) > MAX_ATOMIC_ROWS:
                packed.append(current)
                current, entities = [], set()
            current.append(plan)
            entities |= named
        if current:
            packed.append(current)
        return packed

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        failures: dict[int, Exception] = {}
        groups = group_by(commits, self.source_of)
        if not groups:
            return failures
        try:
            starting = [s for s, members in groups.items() if any(c.first_version == 1 for _, c in members)]
            states = self._load(groups, starting=starting)
        except ReadStoreError as error:
            for members in groups.values():
                fail_all(failures, members, error)
            return failures
        pending: dict[str, Plan] = {}
        for source, members in groups.items():
            plan = self._plan(source, states[source], members, failures)
            if plan is not None:
                pending[source] = plan
            else:
                self._remember(source, states[source])
        if self._has_latest and pending:
            try:  # every customer of the batch at once, not one read per transaction
                self._read_latest(
                    {entity for plan in pending.values() for entity in self.latest(plan.after.data)}
                )
            except ReadStoreError as error:
                for plan in pending.values():
                    fail_all(failures, plan.members, error)
                return failures
        for round_number in range(CONFLICT_ROUNDS):
            if not pending:
                break
            conflicted: list[str] = []
            for transaction in self._transactions(list(pending.values())):
                try:
                    failed = set(self._write(transaction))
                except ReadStoreError as error:
                    for plan in transaction:
                        self._cache.pop(plan.source, None)
                        fail_all(failures, plan.members, error)
                        del pending[plan.source]
                    continue
                if not failed:
                    for plan in transaction:
                        self._remember(plan.source, plan.after)
                        del pending[plan.source]
                    continue
                # Nothing of this transaction was written. The sources whose row moved are re-read;
                # a lost newest-wins condition was forgotten above and is re-read with the retry.
                conflicted += [plan.source for plan in transaction if self._source_key(plan.source) in failed]
            if pending and round_number < CONFLICT_ROUNDS - 1:
                time.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS * (round_number + 1)))
            if not conflicted or round_number == CONFLICT_ROUNDS - 1:
                continue
            try:
                fresh = self._load(conflicted, fresh=True)
            except ReadStoreError as error:
                for source in conflicted:
                    fail_all(failures, pending.pop(source).members, error)
                continue
            for source in conflicted:
                plan = self._plan(source, fresh[source], pending.pop(source).members, failures)
                if plan is None:
                    self._remember(source, fresh[source])  # someone else applied them: done
                else:
                    pending[source] = plan
        for plan in pending.values():
            self._cache.pop(plan.source, None)
            fail_all(failures, plan.members, SourceConflict(plan.source))
        return failures


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a state made of dicts, numbers, strings and booleans."""
    return {name: _copy(value) if isinstance(value, Mapping) else value for name, value in data.items()}


def bump(counters: dict[str, Any], name: str, amount: Number) -> None:
    counters[name] = counters.get(name, 0) + amount
