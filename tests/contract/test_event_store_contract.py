"""One contract, every event store: the in-memory fake and DynamoDB (on moto) must agree."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from orders_core.envelope import Commit, CommitMetadata, NewEvent, envelopes_of
from orders_core.errors import CommitTooLarge, ConcurrencyError, EventStoreError, InvalidCommit
from orders_core.store import codec
from orders_core.store import dynamodb as dynamodb_store
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.store.memory import InMemoryEventStore
from orders_core.store.port import EventStore
from orders_local.moto_server import install_dynamodb_write_lock


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore()
    dynamodb: Any = request.getfixturevalue("dynamodb")
    # moto checks conditions without a lock; DynamoDB does not let two writers win, so neither may moto.
    install_dynamodb_write_lock()
    return DynamoDBEventStore(dynamodb, request.getfixturevalue("events_table"))


def meta(command_id: str = "cmd-1", recorded_at: str = "2026-11-26T10:00:00.000000Z") -> CommitMetadata:
    return CommitMetadata(
        command_id=command_id,
        correlation_id=f"corr-{command_id}",
        causation_id=f"cause-{command_id}",
        actor="alice",
        recorded_at=recorded_at,
        command_fingerprint=f"fp-{command_id}",
    )


def events(*names: str, **data: Any) -> list[NewEvent]:
    return [NewEvent(type=name, data={"n": index, **data}) for index, name in enumerate(names)]


def test_a_new_stream_starts_at_version_one_and_reads_back_in_order(store: EventStore) -> None:
    # Given an empty stream, when a commit of three events is appended
    commit = store.append("order-1", 0, events("A", "B", "C"), meta())

    # Then the events hold versions 1..3 in the order given, with the commit's metadata
    assert (commit.first_version, commit.last_version) == (1, 3)
    read = envelopes_of(store.read_commits("order-1"))
    assert [(e.version, e.type) for e in read] == [(1, "A"), (2, "B"), (3, "C")]
    assert {(e.command_id, e.correlation_id, e.causation_id, e.actor) for e in read} == {
        ("cmd-1", "corr-cmd-1", "cause-cmd-1", "alice")
    }
    assert len({e.event_id for e in read}) == 3


def test_a_second_writer_at_the_same_version_is_rejected_and_writes_nothing(store: EventStore) -> None:
    # Given a stream at version 1
    store.append("order-1", 0, events("A"), meta("first"))

    # When two writers both append from version 1, the second loses
    store.append("order-1", 1, events("B"), meta("second"))
    with pytest.raises(ConcurrencyError):
        store.append("order-1", 1, events("C", "D", "E"), meta("third"))

    # Then none of the losing commit's events were stored: the commit is all or nothing
    read = envelopes_of(store.read_commits("order-1"))
    assert [(e.version, e.type, e.command_id) for e in read] == [(1, "A", "first"), (2, "B", "second")]


def test_a_stale_writer_behind_a_multi_event_commit_is_rejected(store: EventStore) -> None:
    # Given a three-event commit at versions 1..3
    store.append("order-1", 0, events("A", "B", "C"), meta("first"))

    # When a writer that never saw it appends as if the stream were new
    with pytest.raises(ConcurrencyError):
        store.append("order-1", 0, events("X"), meta("stale"))

    # Then the stream is unchanged
    assert [e.type for e in envelopes_of(store.read_commits("order-1"))] == ["A", "B", "C"]


def test_reads_from_a_version_start_at_the_right_commit(store: EventStore) -> None:
    # Given commits at versions 1..3, 4..5 and 6
    store.append("order-1", 0, events("A", "B", "C"), meta("c1"))
    store.append("order-1", 3, events("D", "E"), meta("c2"))
    store.append("order-1", 5, events("F"), meta("c3"))

    # Then reading after a version returns only later commits
    assert [c.first_version for c in store.read_commits("order-1", after_version=3)] == [4, 6]
    assert store.read_commits("order-1", after_version=6) == []
    # And reading from a version inside a commit includes the commit that holds it
    assert [c.first_version for c in store.read_commits_covering("order-1", 5)] == [4, 6]
    assert [c.first_version for c in store.read_commits_covering("order-1", 4)] == [4, 6]
    assert [c.first_version for c in store.read_commits_covering("order-1", 1)] == [1, 4, 6]
    assert store.read_commits_covering("order-1", 7) == []


def test_of_concurrent_appends_at_the_same_expected_version_exactly_one_wins(store: EventStore) -> None:
    # Given a stream at version 2, and eight writers that all read it there
    store.append("order-1", 0, events("A", "B"), meta("first"))
    writers = 8
    start = threading.Barrier(writers)
    won: list[Commit] = []
    lost: list[int] = []
    record = threading.Lock()

    def writer(number: int) -> None:
        start.wait()
        try:
            commit = store.append("order-1", 2, events(*["X"] * (number % 3 + 1)), meta(f"w{number}"))
        except ConcurrencyError:
            with record:
                lost.append(number)
        else:
            with record:
                won.append(commit)

    # When they all append at once, with commits of different lengths
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly one wins, and the stream holds its commit and no other's
    assert (len(won), len(lost)) == (1, writers - 1)
    (winner,) = won
    assert [(c.first_version, c.metadata.command_id) for c in store.read_commits("order-1")] == [
        (1, "first"),
        (3, winner.metadata.command_id),
    ]


def test_an_append_where_a_commit_already_starts_is_refused(store: EventStore) -> None:
    # Given commits at versions 1..2, 3 and 4..6
    store.append("order-1", 0, events("A", "B"), meta("c1"))
    store.append("order-1", 2, events("C"), meta("c2"))
    store.append("order-1", 3, events("D", "E", "F"), meta("c3"))

    # When writers append at each version that ends a commit but the last, the commit after it wins
    for stale in (0, 2, 3):
        with pytest.raises(ConcurrencyError) as refused:
            store.append("order-1", stale, events("X"), meta(f"stale-{stale}"))
        assert (refused.value.stream_id, refused.value.expected_version) == ("order-1", stale)

    # Then the stream is unchanged, and the writer at its end is accepted
    assert [c.first_version for c in store.read_commits("order-1")] == [1, 3, 4]
    assert store.append("order-1", 6, events("G"), meta("next")).first_version == 7


def test_only_the_key_is_checked_so_callers_pass_a_version_that_ends_a_commit(store: EventStore) -> None:
    # The port's documented rule, the same on every store: DynamoDB checks one conditional put
    # on (stream_id, expected_version + 1) and nothing else, so the fake does the same.
    # Given a commit at versions 1..2
    store.append("order-1", 0, events("A", "B"), meta("c1"))

    # When a caller appends at a version inside it, and another past the stream's end
    inside = store.append("order-1", 1, events("X"), meta("inside"))
    beyond = store.append("order-1", 5, events("Y"), meta("beyond"))

    # Then both are stored as given: one overlapping the commit, one after a gap
    assert (inside.first_version, beyond.first_version) == (2, 6)
    assert [(c.first_version, c.metadata.command_id) for c in store.read_commits("order-1")] == [
        (1, "c1"),
        (2, "inside"),
        (6, "beyond"),
    ]
    stored = store.read_commit("order-1", 2)
    assert stored is not None and stored.metadata.command_id == "inside"
    # And every store reads such a stream alike
    assert [c.first_version for c in store.read_commits_covering("order-1", 2)] == [2, 6]
    assert [c.first_version for c in store.read_commits_covering("order-1", 1)] == [1, 2, 6]
    assert [c.first_version for c in store.read_commits_covering("order-1", 4)] == [6]
    assert [c.first_version for c in store.read_commits("order-1", after_version=1, up_to_version=5)] == [2]


def test_streams_are_independent(store: EventStore) -> None:
    store.append("order-1", 0, events("A"), meta("a"))
    store.append("order-2", 0, events("B"), meta("b"))
    store.append("order-1", 1, events("C"), meta("c"))

    assert [e.type for e in envelopes_of(store.read_commits("order-1"))] == ["A", "C"]
    assert [e.type for e in envelopes_of(store.read_commits("order-2"))] == ["B"]
    assert store.read_commits("order-3") == []


def test_an_oversized_commit_is_rejected_with_a_clear_error_and_nothing_written(store: EventStore) -> None:
    # Given a commit whose events exceed one item (multi-byte text counts in UTF-8 bytes)
    huge = [
        NewEvent(type="A", data={"text": "é" * 150_000}),
        NewEvent(type="B", data={"text": "x" * 150_000}),
    ]

    # When it is appended, the store refuses it and says why
    with pytest.raises(CommitTooLarge) as refused:
        store.append("order-1", 0, huge, meta())
    assert refused.value.size > refused.value.limit
    assert "limit" in str(refused.value)

    # Then nothing was written and the version is still free
    assert store.read_commits("order-1") == []
    store.append("order-1", 0, events("A"), meta("after"))
    assert [c.first_version for c in store.read_commits("order-1")] == [1]


def test_a_commit_just_under_the_limit_is_stored_whole(store: EventStore) -> None:
    big = [NewEvent(type="A", data={"text": "x" * 390_000})]
    store.append("order-1", 0, big, meta())
    (commit,) = store.read_commits("order-1")
    assert len(commit.events[0].data["text"]) == 390_000


def test_long_streams_read_back_completely_across_pages(store: EventStore) -> None:
    # Given more data than one DynamoDB query page (1 MB) holds
    for index in range(5):
        store.append(
            "order-1",
            index,
            [NewEvent(type="Big", data={"text": "y" * 300_000, "i": index})],
            meta(f"c{index}"),
        )

    # Then every commit is read, in order
    assert [c.events[0].data["i"] for c in store.read_commits("order-1")] == [0, 1, 2, 3, 4]


def test_floats_and_empty_commits_are_refused(store: EventStore) -> None:
    with pytest.raises(InvalidCommit, match="float"):
        store.append("order-1", 0, [NewEvent(type="A", data={"price": 12.5})], meta())
    with pytest.raises(InvalidCommit):
        store.append("order-1", 0, [], meta())
    assert store.read_commits("order-1") == []


def test_a_stream_id_dynamodb_cannot_key_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidCommit, match="stream id"):
        store.append("", 0, events("A"), meta())
    with pytest.raises(InvalidCommit, match="stream id"):
        store.append("o" * (codec.MAX_STREAM_ID_BYTES + 1), 0, events("A"), meta())
    with pytest.raises(InvalidCommit, match="versions end"):
        store.append("order-1", codec.MAX_VERSION, events("A"), meta())
    assert store.read_commits("order-1") == []


def test_data_round_trips_exactly(store: EventStore) -> None:
    data = {"price": "12.50", "qty": 3, "name": "naïve ☕ 数据", "nested": {"list": [1, "2", None, True]}}
    store.append("order-1", 0, [NewEvent(type="A", data=data, schema_version=2)], meta())
    (event,) = envelopes_of(store.read_commits("order-1"))
    assert dict(event.data) == data
    assert event.schema_version == 2
    assert event.recorded_at == "2026-11-26T10:00:00.000000Z"


def test_one_commit_is_read_by_its_first_version(store: EventStore) -> None:
    store.append("order-1", 0, events("A", "B"), meta("c1"))
    store.append("order-1", 2, events("C"), meta("c2"))

    first = store.read_commit("order-1", 1)
    assert first is not None and [e.type for e in first.events] == ["A", "B"]
    assert store.read_commit("order-1", 2) is None  # inside a commit, not its start
    assert store.read_commit("order-2", 1) is None


def test_reads_can_stop_at_a_version_or_at_an_instant(store: EventStore) -> None:
    # Given commits at versions 1-3, 4-5 and 6, recorded at :01, :02 and :02 again (times never go back)
    store.append("order-1", 0, events("A", "B", "C"), meta("c1", "2026-11-26T10:00:01.000000Z"))
    store.append("order-1", 3, events("D", "E"), meta("c2", "2026-11-26T10:00:02.000000Z"))
    store.append("order-1", 5, events("F"), meta("c3", "2026-11-26T10:00:02.000000Z"))

    def firsts(**bounds: Any) -> list[int]:
        return [c.first_version for c in store.read_commits("order-1", **bounds)]

    # Commits that start at or before the bound; the last one may run past it
    assert firsts(up_to_version=4) == [1, 4]
    assert firsts(up_to_version=5) == [1, 4]
    assert firsts(after_version=3, up_to_version=6) == [4, 6]
    assert firsts(after_version=3, up_to_version=3) == []
    # Commits recorded at or before the instant
    assert firsts(recorded_until="2026-11-26T10:00:01.999999Z") == [1]
    assert firsts(recorded_until="2026-11-26T10:00:02.000000Z") == [1, 4, 6]
    assert firsts(after_version=1, recorded_until="2026-11-26T10:00:00.000000Z") == []
    assert firsts(after_version=3, up_to_version=5, recorded_until="2026-11-26T10:00:09.000000Z") == [4]


def test_a_read_bounded_by_an_instant_stops_paging_at_the_first_later_commit(store: EventStore) -> None:
    # Given more than a page (1 MB) of commits, one per second
    for index in range(5):
        at = f"2026-11-26T10:00:0{index}.000000Z"
        store.append(
            "order-1", index, [NewEvent(type="Big", data={"text": "y" * 300_000})], meta(f"c{index}", at)
        )

    # Then a bound early in the stream returns only what precedes it, a late one everything
    assert [
        c.first_version for c in store.read_commits("order-1", recorded_until="2026-11-26T10:00:01.000000Z")
    ] == [
        1,
        2,
    ]
    assert len(store.read_commits("order-1", recorded_until="2026-11-26T10:00:09.000000Z")) == 5


# --- DynamoDB only: errors are classified by their code, never by their message ------------------


def test_an_item_dynamodb_finds_too_large_after_our_estimate_is_commit_too_large_saying_so(
    dynamodb: Any, events_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a size estimate 10 kB short, which lets through an item DynamoDB (moto: 405,000 bytes) refuses
    real_size = codec.item_size

    def undercounted(item: codec.Item) -> int:
        return real_size(item) - 10_000

    monkeypatch.setattr(codec, "item_size", undercounted)
    monkeypatch.setattr(dynamodb_store, "item_size", undercounted)
    store = DynamoDBEventStore(dynamodb, events_table)

    # When such a commit is appended
    with pytest.raises(CommitTooLarge) as refused:
        store.append("order-1", 0, [NewEvent(type="A", data={"text": "x" * 406_000})], meta())

    # Then the error says DynamoDB refused it and gives our estimate, which was under our limit
    too_large = refused.value
    assert too_large.size < too_large.limit == codec.MAX_COMMIT_BYTES
    assert "DynamoDB refused" in str(too_large) and f"{too_large.size} bytes" in str(too_large)
    assert "over the" not in str(too_large)
    assert store.read_commits("order-1") == []


def _stubbed_store() -> tuple[DynamoDBEventStore, Stubber]:
    client: Any = boto3.client("dynamodb", region_name="us-east-1")
    return DynamoDBEventStore(client, "events"), Stubber(client)


@pytest.mark.parametrize(
    "message", ["Item size has exceeded the maximum allowed size", "a message worded any other way"]
)
def test_a_validation_exception_on_put_is_commit_too_large_whatever_its_message(message: str) -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error("put_item", "ValidationException", message, 400)
    with stubber, pytest.raises(CommitTooLarge, match="DynamoDB refused") as refused:
        store.append("order-1", 0, events("A"), meta())
    assert refused.value.limit == codec.MAX_COMMIT_BYTES
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ItemCollectionSizeLimitExceededException"]
)
def test_other_errors_on_put_are_event_store_errors_even_when_the_message_mentions_size(code: str) -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error("put_item", code, "request size or item size is the problem", 400)
    with stubber, pytest.raises(EventStoreError, match=code) as refused:
        store.append("order-1", 0, events("A"), meta())
    assert not isinstance(refused.value, CommitTooLarge | ConcurrencyError)


def test_a_failed_condition_on_put_is_a_concurrency_error() -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error("put_item", "ConditionalCheckFailedException", "The conditional request failed")
    with stubber, pytest.raises(ConcurrencyError):
        store.append("order-1", 4, events("A"), meta())
