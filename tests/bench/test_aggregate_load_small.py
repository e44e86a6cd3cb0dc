"""The aggregate-load benchmark in its small mode: loading with snapshots stays within a few requests
however long the stream, and reads less than folding the whole log. Counts, not times."""

from __future__ import annotations

from typing import Any

from bench.aggregate_load import (
    NAIVE,
    NEWEST,
    NONE,
    OLDER,
    SMALL_SIZES,
    SNAPSHOT_EVERY,
    Measurement,
    run,
    table,
)


def test_a_cold_load_with_snapshots_takes_a_bounded_number_of_requests(dynamodb: Any) -> None:
    results = {(m.events, m.snapshots): m for m in run(SMALL_SIZES, repeat=1)}
    longest = max(SMALL_SIZES)
    assert longest > 2 * SNAPSHOT_EVERY  # long enough for snapshots to matter

    with_snapshots = [m for m in results.values() if m.snapshots in (NEWEST, OLDER)]
    assert {(m.events, m.snapshots) for m in with_snapshots} >= {(longest, NEWEST), (longest, OLDER)}
    for measured in with_snapshots:
        # One Query for the snapshot, one for the events after it
        assert measured.total_requests <= 3
        assert set(measured.requests) == {"Query"}
        assert measured.events_folded < 2 * SNAPSHOT_EVERY  # at most an interval (+ one commit) after it

    # The snapshot is what makes the difference: fewer events folded and fewer bytes read
    without = results[(longest, NONE)]
    assert without.events_folded == longest and without.snapshot_version == 0
    newest, older = results[(longest, NEWEST)], results[(longest, OLDER)]
    assert 0 < older.snapshot_version < newest.snapshot_version
    assert newest.bytes_read < without.bytes_read / 2
    assert newest.bytes_read < older.bytes_read < without.bytes_read
    # A short order has no snapshot yet: the extra request finds none and costs no bytes
    short_with, short_without = results[(min(SMALL_SIZES), NEWEST)], results[(min(SMALL_SIZES), NONE)]
    assert short_with.snapshot_version == 0 and short_with.bytes_read == short_without.bytes_read

    # The naive store (an item per event) reads more than our commits, and the limit (one read of
    # the state) less than any load that folds events
    naive = results[(longest, NAIVE)]
    assert naive.events_folded == longest and naive.bytes_read > without.bytes_read
    assert naive.read_units >= without.read_units > newest.read_units >= newest.limit_read_units
    assert 0 < newest.state_bytes < newest.bytes_read


def test_the_table_shows_every_measurement() -> None:
    rows = [
        Measurement(10, NONE, {"Query": 1}, 1, 3_920, 4.9, 0, 10),
        Measurement(10_000, OLDER, {"Query": 2}, 2, 120_000, 30.0, 9_901, 99),
    ]
    text = table(rows)
    assert "| 10 | no | 1 (1 Query) | 3,920 | event 1 (10 events) | 4.9 ms |" in text
    assert (
        "| 10,000 | one interval older | 2 (2 Query) | 120,000 | snapshot at 9,901 (99 events) | 30.0 ms |"
        in text
    )
