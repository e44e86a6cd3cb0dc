"""The local stream poller delivers DynamoDB stream records as Lambda's event source mapping would."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    InMemoryCheckpointStore,
    PollerSettings,
    StreamPoller,
    checkpoint_table_request,
    sqs_on_failure,
)

REGION = "us-east-1"

Respond = Callable[[list[str]], Any]


class Crash(BaseException):
    """The process dies mid-invocation: not an error Lambda could report, nothing gets checkpointed."""


class Projection:
    """A stand-in handler: records every batch it sees, answers what ``respond`` decides."""

    def __init__(self, respond: Respond | None = None) -> None:
        self.respond: Respond = respond or (lambda keys: None)
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.succeeded: list[str] = []
        # Successes ("ok:<key>") and whatever a test adds (say, on_failure calls), in the order they happened.
        self.timeline: list[str] = []
        self.sequence_numbers: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        keys = [record["dynamodb"]["Keys"]["pk"]["S"] for record in event["Records"]]
        with self._lock:
            self.batches.append(keys)
            self.events.append(event)
            self.contexts.append(context)
            for key, record in zip(keys, event["Records"], strict=True):
                self.sequence_numbers[key] = record["dynamodb"]["SequenceNumber"]
        response = self.respond(keys)
        if not (response or {}).get("batchItemFailures"):
            with self._lock:
                self.succeeded.extend(keys)
                self.timeline.extend(f"ok:{key}" for key in keys)
        return response


def fail_on(poison: str) -> Respond:
    def respond(keys: list[str]) -> Any:
        if poison in keys:
            raise ValueError(f"cannot project {poison}")
        return None

    return respond


@pytest.fixture
def streams(moto_session: None) -> Any:
    return boto3.client("dynamodbstreams", region_name=REGION)


@pytest.fixture
def table(dynamodb: Any) -> tuple[str, str]:
    name = f"poller-{uuid.uuid4().hex[:8]}"
    created = dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    return name, created["TableDescription"]["LatestStreamArn"]


def write(dynamodb: Any, table: tuple[str, str], *keys: str) -> None:
    for key in keys:
        dynamodb.put_item(TableName=table[0], Item={"pk": {"S": key}, "n": {"N": str(len(key))}})


def keys(count: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def poller_for(
    streams: Any,
    table: tuple[str, str],
    handler: Any,
    *,
    checkpoints: Any = None,
    on_failure: Any = None,
    name: str | None = None,
    **settings: Any,
) -> StreamPoller:
    return StreamPoller(
        name or f"projection-{table[0]}",
        streams_client=streams,
        stream_arn=table[1],
        handler=handler,
        checkpoints=checkpoints if checkpoints is not None else InMemoryCheckpointStore(),
        on_failure=on_failure,
        settings=PollerSettings(**{"poll_interval_seconds": 0.02, **settings}),
        region=REGION,
    )


def test_records_have_the_shape_lambda_delivers(dynamodb: Any, streams: Any, table: tuple[str, str]) -> None:
    # Given an item with string, number and binary attributes written to a NEW_IMAGE stream
    dynamodb.put_item(
        TableName=table[0], Item={"pk": {"S": "o-1"}, "total": {"N": "12.50"}, "blob": {"B": b"\x00\xff"}}
    )
    projection = Projection()
    poller = poller_for(streams, table, projection)

    # When the poller delivers it
    poller.drain()

    # Then the handler got one Lambda-shaped record whose images are DynamoDB JSON
    (event,) = projection.events
    (record,) = event["Records"]
    assert record["eventSourceARN"] == table[1]
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventVersion"] == "1.1"
    assert record["awsRegion"] == REGION
    assert record["eventName"] == "INSERT"
    stream_record = record["dynamodb"]
    created = stream_record["ApproximateCreationDateTime"]
    assert isinstance(created, int) and abs(created - time.time()) < 60
    assert stream_record["Keys"] == {"pk": {"S": "o-1"}}
    assert stream_record["NewImage"] == {
        "pk": {"S": "o-1"},
        "total": {"N": "12.50"},
        "blob": {"B": base64.b64encode(b"\x00\xff").decode()},
    }
    assert "OldImage" not in stream_record
    assert stream_record["StreamViewType"] == "NEW_IMAGE"
    assert isinstance(stream_record["SequenceNumber"], str) and isinstance(stream_record["SizeBytes"], int)
    # ... the event survives Lambda's JSON round trip unchanged
    assert json.loads(json.dumps(event)) == event
    # ... and the context is a Lambda context for a function named after the poller
    context = projection.contexts[0]
    assert context.function_name == poller.name
    assert context.invoked_function_arn.endswith(f":function:{poller.name}")
    assert context.get_remaining_time_in_millis() > 0


def test_batches_respect_batch_size_and_stream_order(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given seven records and a batch size of three
    write(dynamodb, table, *keys(7))
    projection = Projection()
    poller = poller_for(streams, table, projection, batch_size=3)

    # When one poll runs, then a second
    handled = poller.poll_once()
    handled_again = poller.poll_once()

    # Then the first poll delivered everything in order, in batches of at most three, and the second nothing
    assert handled == 7 and handled_again == 0
    assert projection.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]


def test_latest_starting_position_skips_records_written_before(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given two records already in the stream and a poller that starts at LATEST
    write(dynamodb, table, "old-1", "old-2")
    projection = Projection()
    poller = poller_for(streams, table, projection, starting_position="LATEST")
    assert poller.poll_once() == 0

    # When a record is written after the poller positioned itself
    write(dynamodb, table, "new-1")
    poller.drain()

    # Then only that record is delivered
    assert projection.batches == [["new-1"]]


def test_partial_failure_resumes_from_the_lowest_reported_record(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given a handler that, on its first call, reports r3 and r2 (in that order) as failed
    write(dynamodb, table, *keys(5))
    calls = 0

    def respond(batch: list[str]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            failed = [projection.sequence_numbers["r3"], projection.sequence_numbers["r2"]]
            return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
        return {"batchItemFailures": []}

    projection = Projection(respond)
    checkpoints = InMemoryCheckpointStore()
    failures: list[dict[str, Any]] = []
    poller = poller_for(
        streams, table, projection, checkpoints=checkpoints, on_failure=failures.append, batch_size=5
    )

    # When the poller delivers the batch
    poller.drain()

    # Then the retry starts at r2: r0 and r1 are not delivered again, r2 and everything after it are
    assert projection.batches == [["r0", "r1", "r2", "r3", "r4"], ["r2", "r3", "r4"]]
    assert failures == []
    # ... and the checkpoint is the last record of the stream
    shard_id = streams.describe_stream(StreamArn=table[1])["StreamDescription"]["Shards"][0]["ShardId"]
    assert checkpoints.get(poller.name, shard_id) == projection.sequence_numbers["r4"]


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["none", "empty-object", "empty-list", "null-list"],
)
def test_responses_that_mean_complete_success(
    dynamodb: Any, streams: Any, table: tuple[str, str], response: Any
) -> None:
    # Given a handler that answers with one of the documented "all succeeded" responses
    write(dynamodb, table, *keys(3))
    projection = Projection(lambda batch: response)
    failures: list[dict[str, Any]] = []
    poller = poller_for(streams, table, projection, on_failure=failures.append, maximum_retry_attempts=0)

    # When the batch is delivered
    poller.drain()

    # Then it is delivered once and nothing is retried or discarded
    assert projection.batches == [["r0", "r1", "r2"]]
    assert failures == []


@pytest.mark.parametrize(
    "failure",
    [
        {"itemIdentifier": "not-a-sequence-number"},
        {"itemId": "x"},
        {"itemIdentifier": None},
        {"itemIdentifier": ""},
    ],
    ids=["unknown-identifier", "missing-key", "null-identifier", "empty-identifier"],
)
def test_malformed_batch_item_failures_fail_the_whole_batch(
    dynamodb: Any, streams: Any, table: tuple[str, str], failure: dict[str, Any]
) -> None:
    # Given a handler whose partial-failure answer is malformed, with no retries and no bisecting
    write(dynamodb, table, *keys(3))
    projection = Projection(lambda batch: {"batchItemFailures": [failure]})
    failures: list[dict[str, Any]] = []
    poller = poller_for(
        streams,
        table,
        projection,
        on_failure=failures.append,
        maximum_retry_attempts=0,
        bisect_batch_on_function_error=False,
    )

    # When the batch is delivered
    poller.drain()

    # Then the whole batch counts as failed: all three records go to on_failure, as no function error
    (message,) = failures
    info = message["DDBStreamBatchInfo"]
    assert info["batchSize"] == 3
    assert info["startSequenceNumber"] == projection.sequence_numbers["r0"]
    assert info["endSequenceNumber"] == projection.sequence_numbers["r2"]
    assert message["responseContext"]["functionError"] is None


def test_bisect_isolates_a_poison_record_and_delivers_every_other_one(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given eight records of which r5 always makes the handler raise
    write(dynamodb, table, *keys(8))
    projection = Projection(fail_on("r5"))
    failures: list[dict[str, Any]] = []

    def on_failure(message: dict[str, Any]) -> None:
        projection.timeline.append("failed:" + message["DDBStreamBatchInfo"]["startSequenceNumber"])
        failures.append(message)

    poller = poller_for(
        streams, table, projection, on_failure=on_failure, batch_size=8, maximum_retry_attempts=2
    )

    # When the poller delivers them with bisecting on
    poller.drain()

    # Then exactly r5 goes to on_failure, with the on-failure record Lambda writes
    (message,) = failures
    seq_r5 = projection.sequence_numbers["r5"]
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seq_r5, seq_r5, 1)
    assert info["streamArn"] == table[1]
    assert info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["functionArn"].endswith(f":function:{poller.name}")
    assert message["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert message["version"] == "1.0"
    # ... it was in the batches of 8, 4, 2 and 1 that failed, then in two retries of itself
    assert message["requestContext"]["approximateInvokeCount"] == 6
    assert [b for b in projection.batches if b == ["r5"]] == [["r5"]] * 3
    # ... every other record succeeded exactly once, in order, and r5 was given up before r6 was delivered
    assert projection.succeeded == ["r0", "r1", "r2", "r3", "r4", "r6", "r7"]
    assert projection.timeline == [*(f"ok:r{i}" for i in range(5)), f"failed:{seq_r5}", "ok:r6", "ok:r7"]


def test_exhausted_retries_call_on_failure_once_and_move_on(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given a handler that raises on every batch, two retries allowed, no bisecting
    write(dynamodb, table, *keys(3))
    projection = Projection(fail_on("r0"))
    failures: list[dict[str, Any]] = []
    poller = poller_for(
        streams,
        table,
        projection,
        on_failure=failures.append,
        maximum_retry_attempts=2,
        bisect_batch_on_function_error=False,
    )

    # When the batch is delivered
    poller.drain()

    # Then the whole batch was invoked three times (one try, two retries), then sent to on_failure once
    assert projection.batches == [["r0", "r1", "r2"]] * 3
    (message,) = failures
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["DDBStreamBatchInfo"]["batchSize"] == 3
    assert message["DDBStreamBatchInfo"]["endSequenceNumber"] == projection.sequence_numbers["r2"]

    # When a new record arrives later
    write(dynamodb, table, "r3")
    poller.drain()

    # Then only it is delivered: the discarded records are behind the checkpoint
    assert projection.batches[3:] == [["r3"]]
    assert len(failures) == 1


def test_new_poller_resumes_after_the_dynamodb_checkpoint(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given a checkpoint table and a poller that handled r0-r2, then crashed while handling r3-r4
    checkpoint_table = f"checkpoints-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**checkpoint_table_request(checkpoint_table))
    store = DynamoDBCheckpointStore(dynamodb, checkpoint_table)
    write(dynamodb, table, *keys(5))

    def crash_on_r3(batch: list[str]) -> Any:
        if "r3" in batch:
            raise Crash
        return None

    first = Projection(crash_on_r3)
    name = f"projection-{table[0]}"
    with pytest.raises(Crash):
        poller_for(streams, table, first, checkpoints=store, name=name, batch_size=3).drain()
    assert first.succeeded == ["r0", "r1", "r2"]

    # When a new poller with the same name and store starts, and r5 is written
    second = Projection()
    write(dynamodb, table, "r5")
    poller_for(streams, table, second, checkpoints=store, name=name, batch_size=3).drain()

    # Then it redelivers only what was past the checkpoint (at least once), never r0-r2
    assert second.batches == [["r3", "r4", "r5"]]
    shard_id = streams.describe_stream(StreamArn=table[1])["StreamDescription"]["Shards"][0]["ShardId"]
    item = dynamodb.get_item(
        TableName=checkpoint_table, Key={"poller": {"S": name}, "shard_id": {"S": shard_id}}
    )["Item"]
    assert item["sequence_number"]["S"] == second.sequence_numbers["r5"]


def test_sqs_on_failure_sends_the_record_to_the_queue(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given a destination queue and a handler that always raises
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    write(dynamodb, table, "r0")
    poller = poller_for(
        streams,
        table,
        Projection(fail_on("r0")),
        on_failure=sqs_on_failure(sqs, queue_url),
        maximum_retry_attempts=0,
    )

    # When the record's retries are used up
    poller.drain()

    # Then the queue holds the on-failure record as JSON
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["DDBStreamBatchInfo"]["streamArn"] == table[1]
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def poller_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stream-poller-") and t.is_alive()]


def test_background_thread_delivers_records_written_after_start(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given a running poller
    projection = Projection()
    poller = poller_for(streams, table, projection)
    poller.start()
    try:
        # When records are written after it started
        write(dynamodb, table, *keys(3))

        # Then the thread delivers them
        assert wait_until(lambda: projection.succeeded == ["r0", "r1", "r2"])
    finally:
        poller.stop()

    # ... and once stopped, its thread is gone and nothing more is delivered
    assert poller_threads() == []
    write(dynamodb, table, "late")
    time.sleep(0.1)
    assert "late" not in projection.succeeded


def test_background_thread_survives_a_failing_on_failure(
    dynamodb: Any, streams: Any, table: tuple[str, str]
) -> None:
    # Given a batch [r0, poison] and an on_failure destination that is down the first time
    sent: list[dict[str, Any]] = []

    def flaky_destination(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 1:
            raise ConnectionError("destination unavailable")

    projection = Projection(fail_on("poison"))
    poller = poller_for(
        streams,
        table,
        projection,
        on_failure=flaky_destination,
        batch_size=2,
        maximum_retry_attempts=0,
    )
    write(dynamodb, table, "r0", "poison", "r1")

    # When the thread runs
    poller.start()
    try:
        # Then it logs the failure, re-reads from the checkpoint (after r0, which bisecting got
        # through), and gets everything through without delivering r0 twice
        assert wait_until(lambda: projection.succeeded == ["r0", "r1"])
        assert len(sent) == 2
        assert poller_threads() != []
    finally:
        poller.stop()


@pytest.mark.parametrize(
    ("bisect", "batches", "discarded"),
    [
        (True, [["r0", "r1", "r2", "r3"], ["r1", "r2", "r3"], ["r2", "r3"], ["r3"]], []),
        (False, [["r0", "r1", "r2", "r3"]], ["r1", "r2", "r3"]),
    ],
    ids=["bisect-on", "bisect-off"],
)
def test_partial_progress_spends_a_retry_only_without_bisect(
    dynamodb: Any,
    streams: Any,
    table: tuple[str, str],
    bisect: bool,
    batches: list[list[str]],
    discarded: list[str],
) -> None:
    # Given a handler that fails the second record of any batch longer than one (so each call makes
    # progress), and no retries allowed
    write(dynamodb, table, *keys(4))

    def respond(batch: list[str]) -> Any:
        if len(batch) == 1:
            return None
        return {"batchItemFailures": [{"itemIdentifier": projection.sequence_numbers[batch[1]]}]}

    projection = Projection(respond)
    failures: list[dict[str, Any]] = []
    poller = poller_for(
        streams,
        table,
        projection,
        on_failure=failures.append,
        maximum_retry_attempts=0,
        bisect_batch_on_function_error=bisect,
    )

    # When the batch is delivered
    poller.drain()

    # Then with bisect on, each partial answer that made progress is a split, not a retry, and every
    # record gets through; with bisect off, the first partial answer used up the only attempt
    assert projection.batches == batches
    ranges = [
        (
            int(m["DDBStreamBatchInfo"]["startSequenceNumber"]),
            int(m["DDBStreamBatchInfo"]["endSequenceNumber"]),
        )
        for m in failures
    ]
    assert [
        key
        for key, seq in projection.sequence_numbers.items()
        if any(first <= int(seq) <= last for first, last in ranges)
    ] == discarded


@pytest.mark.parametrize(
    "settings",
    [{"batch_size": 0}, {"batch_size": 1001}, {"maximum_retry_attempts": -2}, {"starting_position": "AT"}],
)
def test_settings_outside_what_lambda_accepts_are_refused(settings: dict[str, Any]) -> None:
    # Given / When / Then settings the ESM API would reject are refused up front
    with pytest.raises(ValueError):
        PollerSettings(**settings)
