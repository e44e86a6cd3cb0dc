"""moto in-process over HTTP, with DynamoDB's conditional writes made atomic."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.dynamodb.models import DynamoDBBackend

from orders_local import moto_server
from orders_local.moto_server import (
    DYNAMODB_WRITE_METHODS,
    dynamodb_write_lock_installed,
    install_dynamodb_write_lock,
    start_moto,
)

WRITERS = 8
ROUNDS = 15


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    install_dynamodb_write_lock()
    server, url = start_moto(0)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def dynamodb(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=WRITERS * 2, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def table(dynamodb: Any) -> str:
    name = "moto-server-race"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    return name


def test_server_answers_as_soon_as_start_returns(endpoint_url: str) -> None:
    # Given a server started on a port chosen by the OS
    # When / Then it already serves HTTP (start_moto waited for it) on a real port
    assert not endpoint_url.endswith(":0")
    with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=2) as reply:
        assert reply.status == 200


def test_installing_the_lock_twice_wraps_once() -> None:
    # Given the lock is installed (again)
    install_dynamodb_write_lock()
    install_dynamodb_write_lock()

    # Then each write method is wrapped exactly once around moto's own method
    assert dynamodb_write_lock_installed()
    for name in DYNAMODB_WRITE_METHODS:
        wrapper = getattr(DynamoDBBackend, name)
        assert not getattr(wrapper.__wrapped__, "__orders_local_write_lock__", False), name


def test_writes_through_the_server_take_the_lock(dynamodb: Any, table: str) -> None:
    # Given the test holds the process-wide write lock
    finished = threading.Event()

    def write() -> None:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "blocked"}})
        finished.set()

    with moto_server._WRITE_LOCK:
        writer = threading.Thread(target=write)
        writer.start()
        # When a put_item arrives at the server meanwhile
        # Then it waits for the lock
        assert not finished.wait(0.3)

    # And completes once the lock is released
    assert finished.wait(5)
    writer.join()


def test_racing_conditional_puts_have_exactly_one_winner_per_key(dynamodb: Any, table: str) -> None:
    # Given several writers released together, each round, on the same new key
    barrier = threading.Barrier(WRITERS)

    def try_create(key: str) -> bool:
        barrier.wait()
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"pk": {"S": key}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        for round_number in range(ROUNDS):
            key = f"round-{round_number}"
            # When they all try to create it with attribute_not_exists
            winners = list(pool.map(try_create, [key] * WRITERS))

            # Then exactly one succeeds, as on DynamoDB
            assert winners.count(True) == 1, f"{key}: {winners.count(True)} winners"

    assert time.monotonic() - started < 5


def _client(service: Any, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_light_queue_sends_keep_what_queues_answer(endpoint_url: str) -> None:
    moto_server.install_light_queue_sends()
    moto_server.install_light_queue_sends()  # twice changes nothing
    sqs = _client("sqs", endpoint_url)
    standard = sqs.create_queue(QueueName="light-standard")["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=standard, MessageBody=f"m{n}")
    # Outside a send the attributes are whole: the backlog is counted.
    counted = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["ApproximateNumberOfMessages"])
    assert counted["Attributes"]["ApproximateNumberOfMessages"] == "5"
    # A FIFO queue's content-based de-duplication, read during a send, still works.
    fifo = sqs.create_queue(
        QueueName="light.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    fifo_count = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["ApproximateNumberOfMessages"])
    assert fifo_count["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_cached_event_paths_still_deliver_each_event_to_its_rule_targets(endpoint_url: str) -> None:
    moto_server.install_cached_event_paths()
    moto_server.install_cached_event_paths()
    events, sqs = _client("events", endpoint_url), _client("sqs", endpoint_url)
    queue = sqs.create_queue(QueueName="cached-paths")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="cached-paths", EventPattern='{"source": ["orders"]}')
    events.put_targets(Rule="cached-paths", Targets=[{"Id": "q", "Arn": arn}])
    details = [f'{{"n": {n}}}' for n in range(3)]
    events.put_events(Entries=[{"Source": "orders", "DetailType": "T", "Detail": d} for d in details])
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["detail"]["n"] for m in received) == [0, 1, 2]


def test_light_stream_reads_answer_what_dynamodb_streams_sends(endpoint_url: str) -> None:
    moto_server.install_light_stream_reads()
    moto_server.install_light_stream_reads()
    dynamodb, streams = _client("dynamodb", endpoint_url), _client("dynamodbstreams", endpoint_url)
    description = dynamodb.create_table(
        TableName="light-stream",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    stream = description["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    first: dict[str, Any] = {
        "pk": {"S": "a"},
        "amount": {"N": "12.50"},
        "blob": {"B": b"\x00\xffbytes"},
        "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"BOOL": True}, {"NULL": True}]}}},
        "tags": {"SS": ["red", "blue"]},
    }
    second = {**first, "amount": {"N": "13"}}
    before = time.time()
    dynamodb.put_item(TableName="light-stream", Item=first)
    dynamodb.put_item(TableName="light-stream", Item=second)
    dynamodb.delete_item(TableName="light-stream", Key={"pk": {"S": "a"}})

    answer = streams.get_records(ShardIterator=iterator, Limit=2)
    records = answer["Records"]
    following = streams.get_records(ShardIterator=answer["NextShardIterator"])
    rest = following["Records"]
    assert [r["eventName"] for r in records + rest] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = (r["dynamodb"] for r in records + rest)
    assert insert["NewImage"]["blob"] == {"B": b"\x00\xffbytes"}  # base64 on the wire, bytes to boto3
    assert insert["NewImage"]["nested"] == first["nested"]
    assert sorted(insert["NewImage"]["tags"]["SS"]) == ["blue", "red"]
    assert "OldImage" not in insert
    assert (modify["OldImage"]["amount"], modify["NewImage"]["amount"]) == ({"N": "12.50"}, {"N": "13"})
    assert remove["Keys"] == {"pk": {"S": "a"}} and "NewImage" not in remove
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records + rest]
    assert sequence == sorted(sequence) and len(set(sequence)) == 3
    created = insert["ApproximateCreationDateTime"].timestamp()  # epoch seconds, parsed by botocore
    assert before - 5 <= created <= time.time() + 5
    assert streams.get_records(ShardIterator=following["NextShardIterator"])["Records"] == []


def test_cached_service_lookup_still_finds_every_service(endpoint_url: str) -> None:
    from moto import backends

    moto_server.install_cached_service_lookup()
    moto_server.install_cached_service_lookup()
    assert "dynamodb" in backends.list_of_moto_modules()
    assert "dynamodbstreams" in backends.list_of_moto_modules()
    for service, call in (("sqs", "list_queues"), ("events", "list_event_buses"), ("s3", "list_buckets")):
        assert getattr(_client(service, endpoint_url), call)()["ResponseMetadata"]["HTTPStatusCode"] == 200
