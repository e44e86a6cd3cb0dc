"""One reader for every read model: a read model that fails parks what it failed on, the others
stay exact and advance; after the fix, a replay makes the failed one exact too."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_core.envelope import Commit, envelopes_of
from orders_core.projections.base import Projection
from orders_core.projections.control import ControlStore
from orders_core.projections.fanout import Projector, replay
from orders_core.projections.live import LiveProjection
from orders_core.projections.parking import ParkingLot
from orders_core.projections.registry import NAMES, registration
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from tests.property.test_projections_property import actions, placements, run_history
from tests.support import oracle
from tests.support.delivery import deliver, stream_records
from tests.support.faults import FlakyReadStore

EXPECTED: dict[str, Callable[[Any], dict[str, Any]]] = {
    "customer_orders": oracle.order_views,
    "sales_analytics": oracle.daily_sales,
    "inventory": oracle.inventory,
    "customer_summary": oracle.customer_summaries,
    "product_sales": oracle.product_sales,
}


class Bug(Exception):
    """What a read model's code does on the commits it cannot handle yet."""


class BuggyProjection:
    """A projection that fails on chosen commits (and, like real code, on its stream from there
    on in the same batch) until the bug is fixed."""

    def __init__(self, inner: Projection, poisoned: set[tuple[str, int]]) -> None:
        self.name = inner.name
        self._inner = inner
        self.poisoned = poisoned

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        # Like real code, which folds each stream in version order: from its first poisoned
        # commit in the batch on (a duplicate may come later in the batch than its successors).
        first_poisoned: dict[str, int] = {}
        for commit in commits:
            if (commit.stream_id, commit.first_version) in self.poisoned:
                known = first_poisoned.get(commit.stream_id, commit.first_version)
                first_poisoned[commit.stream_id] = min(known, commit.first_version)
        failures: dict[int, Exception] = {}
        passed: list[tuple[int, Commit]] = []
        for position, commit in enumerate(commits):
            if commit.first_version >= first_poisoned.get(commit.stream_id, commit.first_version + 1):
                failures[position] = Bug(f"cannot handle {commit.stream_id}@{commit.first_version}")
            else:
                passed.append((position, commit))
        inner = self._inner.process([commit for _, commit in passed])
        failures.update({passed[index][0]: error for index, error in inner.items()})
        return failures


def _interleaved(streams: list[list[Commit]], rng: random.Random) -> list[Commit]:
    """Streams interleave in any order; each stream's commits keep theirs (one shard per key)."""
    pending = [list(stream) for stream in streams if stream]
    merged = []
    while pending:
        stream = rng.choice(pending)
        merged.append(stream.pop(0))
        if not stream:
            pending.remove(stream)
    return merged


def _read_model(view: Any, name: str, entity: str) -> dict[str, Any] | None:
    if name == "customer_orders":
        found = view.get(entity)
        return found.to_json() if found else None
    row = view.get(entity)
    return {k: v for k, v in row.items() if k != "revision"} if row else None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.builds(lambda first, rest: first + rest, placements, st.lists(actions, max_size=25)),
    gaps=st.lists(st.integers(1, 240), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    buggy=st.sampled_from(NAMES),
    poison_share=st.floats(0.05, 0.5),
)
def test_one_read_model_failing_parks_its_commits_and_the_others_stay_exact(
    history: list[tuple[Any, ...]], gaps: list[int], seed: int, buggy: str, poison_share: float
) -> None:
    rng = random.Random(seed)
    events: InMemoryEventStore = run_history(history, gaps)
    commits = _interleaved([events.read_commits(stream) for stream in events.stream_ids()], rng)
    records = stream_records(commits)
    log = [e for stream in events.stream_ids() for e in envelopes_of(events.read_commits(stream))]
    # Given a bug in one read model that fails on some commits
    poisoned = {(c.stream_id, c.first_version) for c in commits if rng.random() < poison_share}
    tables = {name: InMemoryReadStore() for name in NAMES}
    bugs: dict[str, BuggyProjection] = {}

    def build(name: str, generation: int) -> Projection:
        projection = registration(name).build(tables[name], events, generation)
        if name == buggy:
            bugs.setdefault(name, BuggyProjection(projection, poisoned))
            bugs[name]._inner = projection
            return bugs[name]
        return projection

    # and a control table that itself fails now and then (parking must survive it)
    control = FlakyReadStore(InMemoryReadStore(), rng, probability=0.05)
    lives = [LiveProjection(name, ControlStore(control), build) for name in NAMES]
    parking = ParkingLot(control)
    projector = Projector(lives, parking, now=lambda: "2026-11-29T00:00:00.000000Z")

    # When the stream is delivered (with duplicates, replays and retries) through one reader
    deliver(records, projector, rng)
    control.probability = 0.0

    # Then every other read model equals a clean fold of the log
    for name in NAMES:
        if name == buggy:
            continue
        view = registration(name).build(tables[name], events, 1)
        for entity, expected in EXPECTED[name](log).items():
            assert _read_model(view, name, entity) == expected, (name, entity)
    # and the buggy one parked exactly the streams it failed on, from the failing commit on
    parked = {p.stream_id: p for p in parking.parked(buggy)}
    failing_streams = {stream for stream, _ in poisoned}
    assert set(parked) == failing_streams
    for stream_id, entry in parked.items():
        first_bad = min(v for s, v in poisoned if s == stream_id)
        later = [c.first_version for c in events.read_commits(stream_id) if c.first_version >= first_bad]
        assert list(entry.versions) == later, entry
    assert all(parking.parked(name) == [] for name in NAMES if name != buggy)

    # When the bug is fixed and the parked commits are replayed
    poisoned.clear()
    outcomes = replay(
        lives[NAMES.index(buggy)], parking, lambda s, v: events.read_commits(s, after_version=v - 1)
    )

    # Then nothing is parked and the buggy read model is exact too
    assert all(outcome.replayed for outcome in outcomes)
    assert parking.parked(buggy) == []
    view = registration(buggy).build(tables[buggy], events, 1)
    for entity, expected in EXPECTED[buggy](log).items():
        assert _read_model(view, buggy, entity) == expected, (buggy, entity)
