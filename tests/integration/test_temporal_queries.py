"""GET /orders/{id}?as_of=… and ?at_version=…: the order as it was, folded from the event store (moto),
with and without snapshots, compared with an independent fold of the log (tests/support/oracle)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from orders_core import composition
from orders_core.application import CommandService
from orders_core.domain.orders import ORDER, AddItem, OrderLine, ShipOrder
from orders_core.envelope import CommitMetadata, EventEnvelope, NewEvent, envelopes_of
from orders_core.queries.temporal import TemporalOrders, parse_instant
from orders_core.snapshots.dynamodb import DynamoDBSnapshotStore
from orders_core.snapshots.memory import InMemorySnapshotStore
from orders_core.snapshots.port import SnapshotStoreError
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.store.memory import InMemoryEventStore
from orders_core.tables import ALL_TABLES, EVENTS, SNAPSHOTS
from query_api import handler as queries
from tests.support import oracle
from tests.support.apigw import FakeLambdaContext, http_event
from tests.support.orders import context, place_order

EVERY = 4  # snapshots at versions 5 and 9 of the history below


def at(second: int, micro: int = 0) -> str:
    return f"2026-11-26T10:00:{second:02d}.{micro:06d}Z"


@dataclass
class History:
    order_id: str
    log: list[EventEnvelope]

    def view_at_version(self, version: int) -> dict[str, Any]:
        return oracle.order_views([e for e in self.log if e.version <= version])[self.order_id]

    def view_as_of(self, instant: str) -> dict[str, Any] | None:
        return oracle.order_views([e for e in self.log if e.recorded_at <= instant]).get(self.order_id)


def write_history(store: Any, snapshots: Any) -> History:
    """Placed at :01 (v1-3), items at :02 (v4-5), :03 (v6-7), :04 (v8-9), shipped at :05 (v10)."""
    order_id = str(uuid.uuid4())
    service = CommandService(store, snapshots=snapshots, snapshot_every={"order": EVERY})
    service.execute(ORDER, order_id, place_order(order_id), context(recorded_at=at(1)), expect_new=True)
    for second, sku in ((2, "sku-a"), (3, "sku-b"), (4, "sku-c")):
        line = OrderLine(sku, second, Decimal(f"{second}.25"))
        service.execute(ORDER, order_id, AddItem(order_id, "alice", line), context(recorded_at=at(second)))
    service.execute(ORDER, order_id, ShipOrder(order_id, "TRK-9"), context(recorded_at=at(5)))
    return History(order_id, envelopes_of(store.read_commits(ORDER.stream_id(order_id))))


@pytest.fixture(params=[True, False], ids=["with-snapshots", "without-snapshots"])
def history(
    request: pytest.FixtureRequest, dynamodb: Any, events_table: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[History]:
    for spec in ALL_TABLES:
        monkeypatch.setenv(spec.env_var, f"unused-{spec.key}")  # these tests read no view
    monkeypatch.setenv(EVENTS.env_var, events_table)
    snapshots = None
    if request.param:
        snapshots_table = request.getfixturevalue("snapshots_table")
        monkeypatch.setenv(SNAPSHOTS.env_var, snapshots_table)
        snapshots = DynamoDBSnapshotStore(dynamodb, snapshots_table)
    else:
        monkeypatch.delenv(SNAPSHOTS.env_var)
    composition.use(None)
    written = write_history(DynamoDBEventStore(dynamodb, events_table), snapshots)
    if snapshots is not None:
        stored = snapshots.latest(ORDER.stream_id(written.order_id))
        assert stored is not None and stored.version == 9
    yield written
    composition.use(None)


def get(path: str, query: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    response = queries.lambda_handler(http_event("GET", path, query=query, **kwargs), FakeLambdaContext())
    return response["statusCode"], response["headers"], json.loads(response["body"])


@pytest.mark.parametrize("version", range(1, 11))
def test_the_order_at_each_version(history: History, version: int) -> None:
    status, headers, body = get(f"/orders/{history.order_id}", {"at_version": str(version)})

    assert status == 200, body
    recorded_at = body.pop("as_of")
    assert body == history.view_at_version(version)
    assert body["version"] == version and headers["ETag"] == f'"{version}"'
    assert recorded_at == next(e.recorded_at for e in history.log if e.version == version)


@pytest.mark.parametrize(
    ("instant", "version"),
    [
        (at(1), 3),  # the instant of the first commit: it counts
        (at(1, 500_000), 3),
        (at(2), 5),  # a snapshot was taken at this commit (version 5)
        (at(3, 999_999), 7),
        (at(4), 9),
        (at(5), 10),
        ("2031-01-01T00:00:00Z", 10),  # the future: the order as it is
    ],
)
def test_the_order_as_of_several_instants(history: History, instant: str, version: int) -> None:
    status, _, body = get(f"/orders/{history.order_id}", {"as_of": instant})

    assert status == 200, body
    as_of = body.pop("as_of")
    assert as_of == parse_instant(instant).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert body == history.view_as_of(as_of)
    assert body["version"] == version


def test_before_the_order_existed_it_is_not_found(history: History) -> None:
    status, _, body = get(f"/orders/{history.order_id}", {"as_of": at(0, 999_999)})
    assert status == 404 and body["title"] == "Not found"


def test_offsets_are_honoured_and_a_decoded_plus_is_read_as_one(history: History) -> None:
    # 11:00:03+01:00 is 10:00:03Z; an unencoded "+" arrives as a space
    for text in (
        "2026-11-26T11:00:03+01:00",
        "2026-11-26T11:00:03 01:00",
        "2026-11-26t05:00:03.000000-05:00",
    ):
        status, _, body = get(f"/orders/{history.order_id}", {"as_of": text})
        assert (status, body["version"], body["as_of"]) == (200, 7, at(3)), text


def test_a_version_the_order_has_not_reached_is_not_found_and_says_so_only_to_the_owner(
    history: History,
) -> None:
    status, _, body = get(f"/orders/{history.order_id}", {"at_version": "11"})
    assert status == 404 and "is at version 10" in body["detail"]

    status, _, body = get(f"/orders/{history.order_id}", {"at_version": "11"}, user="mallory")
    assert status == 404 and "version 10" not in body["detail"]


def test_another_customers_order_is_not_found_at_any_point_but_an_operator_sees_it(history: History) -> None:
    for query in ({"at_version": "3"}, {"as_of": at(5)}):
        assert get(f"/orders/{history.order_id}", query, user="mallory")[0] == 404
        status, _, body = get(f"/orders/{history.order_id}", query, user="op", operator=True)
        assert status == 200 and body["customer_id"] == "alice"
    assert get(f"/orders/{uuid.uuid4()}", {"at_version": "1"})[0] == 404


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"as_of": "yesterday"}, ["as_of"]),
        ({"as_of": "2026-11-26T10:00:03"}, ["as_of"]),  # no offset: which 10 o'clock?
        ({"as_of": "2026-11-26"}, ["as_of"]),
        ({"as_of": "2026-13-26T10:00:03Z"}, ["as_of"]),
        ({"as_of": "2026-11-26T10:00:03+25:00"}, ["as_of"]),
        ({"at_version": "0"}, ["at_version"]),
        ({"at_version": "three"}, ["at_version"]),
        ({"as_of": at(3), "at_version": "3"}, ["as_of", "at_version"]),
        ({"as_of": at(3), "min_version": "3"}, ["min_version"]),
    ],
    ids=[
        "word",
        "no-offset",
        "date-only",
        "month-13",
        "offset-25h",
        "version-0",
        "version-word",
        "both",
        "with-min-version",
    ],
)
def test_malformed_points_in_time_get_422_naming_the_field(
    history: History, query: dict[str, str], fields: list[str]
) -> None:
    status, headers, body = get(f"/orders/{history.order_id}", query)
    assert status == 422, body
    assert headers["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in body["errors"]] == fields


# -- what the reads cost, and that snapshots are what they start from ----------------------------


class RecordingStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[int, int | None, str | None, int]] = []

    def read_commits(
        self,
        stream_id: str,
        after_version: int = 0,
        *,
        up_to_version: int | None = None,
        recorded_until: str | None = None,
    ) -> list[Any]:
        commits = super().read_commits(
            stream_id, after_version, up_to_version=up_to_version, recorded_until=recorded_until
        )
        self.reads.append((after_version, up_to_version, recorded_until, len(commits)))
        return commits


def test_reads_start_at_the_snapshot_and_stop_at_the_point_asked_for() -> None:
    events, snapshots = RecordingStore(), InMemorySnapshotStore()
    history = write_history(events, snapshots)
    temporal = TemporalOrders(events, snapshots)
    events.reads.clear()

    assert temporal.at_version(history.order_id, 10) is not None
    assert temporal.at_version(history.order_id, 6) is not None
    assert temporal.at_version(history.order_id, 2) is not None
    found = temporal.as_of(history.order_id, parse_instant(at(4, 500_000)))
    assert found is not None and found.view.version == 9

    assert events.reads == [
        (9, 10, None, 1),  # from the snapshot at 9: only the shipping commit
        (5, 6, None, 1),  # from the snapshot at 5: the commit holding 6-7, folded up to 6
        (0, 2, None, 1),  # no snapshot at or before 2: the first commit, folded up to 2
        (9, None, at(4, 500_000), 0),  # the snapshot at 9 was recorded at :04; nothing after it qualifies
    ]


def test_temporal_reads_on_dynamodb_take_two_requests_whatever_the_point(
    dynamodb: Any, events_table: str, snapshots_table: str
) -> None:
    from tests.support.counting import RequestCounter

    store = DynamoDBEventStore(dynamodb, events_table)
    snapshots = DynamoDBSnapshotStore(dynamodb, snapshots_table)
    history = write_history(store, snapshots)
    counter = RequestCounter(dynamodb)
    temporal = TemporalOrders(store, snapshots)

    for version in (2, 6, 10):
        counter.reset()
        assert temporal.at_version(history.order_id, version) is not None
        assert dict(counter.calls) == {"Query": 2}
    counter.reset()
    assert temporal.as_of(history.order_id, parse_instant(at(3))) is not None
    assert dict(counter.calls) == {"Query": 2}


def test_old_event_versions_are_upcast_in_temporal_queries() -> None:
    # Given an order whose items were stored as ItemAdded v1 and v2
    events = InMemoryEventStore()
    order_id = str(uuid.uuid4())
    CommandService(events).execute(
        ORDER, order_id, place_order(order_id), context(recorded_at=at(1)), expect_new=True
    )
    stream = ORDER.stream_id(order_id)
    v1 = {"order_id": order_id, "product_id": "sku-v1", "quantity": 2, "unit_price": "1.50"}
    events.append(stream, 3, [NewEvent("ItemAdded", v1, 1)], CommitMetadata("a", "c", "a", "alice", at(2)))
    v2 = {**v1, "product_id": "sku-v2", "line_total": "3.00"}
    events.append(stream, 4, [NewEvent("ItemAdded", v2, 2)], CommitMetadata("b", "c", "b", "alice", at(3)))

    # Then the order at each point shows them
    temporal = TemporalOrders(events)
    then = temporal.as_of(order_id, parse_instant(at(2)))
    now = temporal.at_version(order_id, 5)
    assert then is not None and [i.product_id for i in then.view.items] == ["sku-0", "sku-v1"]
    assert now is not None and now.view.to_json()["total_amount"] == str(Decimal("9.99") + Decimal("6.00"))


def test_an_unreadable_or_foreign_snapshot_changes_no_answer() -> None:
    class Unreachable(InMemorySnapshotStore):
        def latest(self, stream_id: str, *, at_or_before_version: int | None = None) -> Any:
            raise SnapshotStoreError("throttled")

        def latest_recorded_by(self, stream_id: str, recorded_at: str) -> Any:
            raise SnapshotStoreError("throttled")

    events, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    history = write_history(events, snapshots)
    stream = ORDER.stream_id(history.order_id)
    # A snapshot from code with another state shape, whose state would be wrong if it were used
    newest = snapshots.latest(stream)
    assert newest is not None
    snapshots.save(replace(newest, state_schema_version=99, state={**newest.state, "lines": []}))

    for store in (Unreachable(), snapshots, None):
        temporal = TemporalOrders(events, store)
        then = temporal.at_version(history.order_id, 9)
        as_of = temporal.as_of(history.order_id, parse_instant(at(4)))
        assert then is not None and then.view.to_json() == history.view_at_version(9)
        assert as_of is not None and as_of.view.to_json() == history.view_as_of(at(4))


def test_an_instant_outside_the_representable_range_is_refused_as_bad_input() -> None:
    # Valid by RFC 3339 (and by the OpenAPI pattern) but before year 1 once moved to UTC.
    with pytest.raises(ValueError, match="not a valid date-time"):
        parse_instant("0001-01-01T00:00:00+23:59")
