"""A local stand-in for Lambda's DynamoDB Streams event source mapping (ESM).

moto's own event source mappings do not fit: they run the function through moto's Lambda, which
needs Docker; they invoke it synchronously inside the write that produced the stream record; and
they ignore what it returns, ``batchItemFailures`` included, so there are no retries, bisection or
on-failure destination. So the local run polls the stream itself and invokes the projection handlers
the way Lambda would, failure semantics included.

What it reproduces, per shard and in sequence-number order:

* **Event shape.** ``{"Records": [...]}`` with ``eventSourceARN``, ``eventSource``, ``awsRegion``,
  ``eventVersion`` and ``dynamodb.ApproximateCreationDateTime`` as epoch seconds; images stay
  DynamoDB JSON (binary values base64-encoded, as in Lambda's JSON payload).
* **ReportBatchItemFailures.** The records before the lowest reported ``itemIdentifier`` are done;
  the batch is retried from that record. ``None``, ``{}`` and an empty or null list mean success.
  A malformed answer (unknown, null, empty or missing identifier, a list that is not a list, a
  response that is not an object) fails the whole batch.
* **Retries.** A failed batch is retried up to ``maximum_retry_attempts`` times (-1: until it
  succeeds, which blocks the shard as on AWS); then ``on_failure`` gets Lambda's on-failure record
  for DynamoDB streams and the poller moves past the records.
* **BisectBatchOnFunctionError.** The Lambda developer guide says "Splitting batches doesn't consume
  the retry quota". So a failed batch of two or more records is split in two at once, without
  spending a retry, and each half is delivered to completion, the first half first; halves inherit
  the retries already spent on the records. Only a batch that cannot be split (one record) spends
  retries, which isolates a poison record and sends exactly it to ``on_failure``.
* **Choices where the documentation is silent:**
  - A malformed ``batchItemFailures`` answer is bisected like a raised exception (both are "the
    batch failed"); ``responseContext.functionError`` is ``"Unhandled"`` only when the handler raised.
  - A partial answer is retried from the reported record, never bisected (the guide: with both
    settings on, "the batch is split at the returned sequence number"). With bisect on, a partial
    answer that made progress is such a split and spends no retry; one that made no progress
    (the first record failed), or any partial answer with bisect off, spends one retry.
  - ``approximateInvokeCount`` counts every invocation that contained the discarded records,
    those of the batches they were bisected from included; ``batchSize`` is the discarded count.
  - A response that cannot be serialised as JSON is a function error, as Lambda's runtime makes it.
  - Retries are immediate unless ``retry_delay_seconds`` is set (AWS backs off; tests want speed).
* **Checkpoints.** After every success or discard the last handled sequence number is stored per
  (poller, shard); a new poller with the same store resumes after it. Records past the checkpoint
  are delivered again after a crash: at least once, as on AWS. If ``on_failure`` or the store
  raises, nothing further is checkpointed and the shard is read again from the last checkpoint.

Not modelled: MaximumRecordAgeInSeconds, batching windows, tumbling windows, filters,
ParallelizationFactor. A batch is one GetRecords page, so ``batch_size`` is at most 1,000.
moto gives every table's stream the same shard id: use a poller name per table.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import ClientError

from orders_local.lambda_events import DEFAULT_ACCOUNT_ID, FakeLambdaContext

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodbstreams.client import DynamoDBStreamsClient
    from mypy_boto3_sqs.client import SQSClient

logger = logging.getLogger("orders_local.stream_poller")

StreamHandler = Callable[[dict[str, Any], Any], Any]
OnFailure = Callable[[dict[str, Any]], None]

FUNCTION_TIMEOUT_SECONDS = 60.0
# A shard split shows up in DescribeStream only; re-reading it now and then is how Lambda finds children.
SHARD_REFRESH_SECONDS = 10.0
MAX_ERROR_BACKOFF_SECONDS = 5.0
GET_RECORDS_LIMIT = 1000


# -- checkpoints ------------------------------------------------------------------------------------


class CheckpointStore(Protocol):
    """Where a poller remembers the last sequence number it is done with, per shard."""

    def get(self, poller_name: str, shard_id: str) -> str | None: ...

    def put(self, poller_name: str, shard_id: str, sequence_number: str) -> None: ...


class InMemoryCheckpointStore:
    """Checkpoints that live as long as the process (a poller restarted in-process resumes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._positions: dict[tuple[str, str], str] = {}

    def get(self, poller_name: str, shard_id: str) -> str | None:
        with self._lock:
            return self._positions.get((poller_name, shard_id))

    def put(self, poller_name: str, shard_id: str, sequence_number: str) -> None:
        with self._lock:
            self._positions[(poller_name, shard_id)] = sequence_number


def checkpoint_table_request(table_name: str) -> dict[str, Any]:
    """boto3 ``create_table`` arguments for a :class:`DynamoDBCheckpointStore` table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "poller", "AttributeType": "S"},
            {"AttributeName": "shard_id", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "poller", "KeyType": "HASH"},
            {"AttributeName": "shard_id", "KeyType": "RANGE"},
        ],
    }


def prepare_reader(
    dynamodb: DynamoDBClient, sqs: SQSClient, checkpoint_table: str, failure_queue: str
) -> str:
    """Create what a stream reader keeps outside itself, if missing: its checkpoint table (an
    external endpoint may have kept it: the reader then resumes from its checkpoints) and its
    on-failure queue. Returns the queue's URL."""
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(**checkpoint_table_request(checkpoint_table))
    return sqs.create_queue(QueueName=failure_queue)["QueueUrl"]


class DynamoDBCheckpointStore:
    """Checkpoints in a DynamoDB table (see :func:`checkpoint_table_request`), surviving restarts."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def get(self, poller_name: str, shard_id: str) -> str | None:
        # Consistent: a poller restarted right after a put must not resume from an older position.
        item = self._client.get_item(
            TableName=self._table_name, Key=self._key(poller_name, shard_id), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return item["sequence_number"]["S"]

    def put(self, poller_name: str, shard_id: str, sequence_number: str) -> None:
        # Sequence numbers are stored as strings: they can exceed the 38 digits of DynamoDB's N type.
        self._client.put_item(
            TableName=self._table_name,
            Item={
                **self._key(poller_name, shard_id),
                "sequence_number": {"S": sequence_number},
                "updated_at": {"S": _iso_now()},
            },
        )

    @staticmethod
    def _key(poller_name: str, shard_id: str) -> dict[str, Any]:
        return {"poller": {"S": poller_name}, "shard_id": {"S": shard_id}}


def sqs_on_failure(sqs_client: SQSClient, queue_url: str) -> OnFailure:
    """An ``on_failure`` that sends the on-failure record to an SQS queue, as an SQS destination does."""

    def send(message: dict[str, Any]) -> None:
        sqs_client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))

    return send


# -- settings and per-shard state -------------------------------------------------------------------


@dataclass(frozen=True)
class PollerSettings:
    """The event source mapping's settings (names follow CreateEventSourceMapping)."""

    batch_size: int = 100
    maximum_retry_attempts: int = 3
    bisect_batch_on_function_error: bool = True
    report_batch_item_failures: bool = True
    poll_interval_seconds: float = 0.2
    # An empty poll stretches the wait up to this (x1.5 each time), so an idle stream costs
    # next to nothing; the first records bring the wait back to poll_interval_seconds.
    idle_poll_max_seconds: float = 0.2
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    retry_delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= GET_RECORDS_LIMIT:
            raise ValueError(f"batch_size must be 1-{GET_RECORDS_LIMIT} (one GetRecords page per batch)")
        if not -1 <= self.maximum_retry_attempts <= 10_000:
            raise ValueError("maximum_retry_attempts must be -1 (infinite) to 10,000")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("starting_position must be TRIM_HORIZON or LATEST")
        if self.poll_interval_seconds <= 0 or self.retry_delay_seconds < 0:
            raise ValueError("poll_interval_seconds must be > 0 and retry_delay_seconds >= 0")
        if self.idle_poll_max_seconds < self.poll_interval_seconds:
            raise ValueError("idle_poll_max_seconds must be >= poll_interval_seconds")


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    # Where to start when there is no checkpoint: the mapping's starting position for the shards
    # that existed when it started, TRIM_HORIZON for shards that appear later (children of splits).
    start_position: str
    iterator: str | None = None
    finished: bool = False  # closed and read to its end


@dataclass(frozen=True)
class _Outcome:
    kind: Literal["ok", "partial", "failed"]
    request_id: str
    retry_from: int = 0  # for "partial": index of the first record to retry
    function_error: str | None = None


class _Stopping(Exception):
    """stop() was called while a batch was being retried: leave it for the next poller."""


# -- the poller -------------------------------------------------------------------------------------


class StreamPoller:
    """Polls one DynamoDB stream and invokes ``handler`` with batches as Lambda's ESM would.

    Use :meth:`poll_once` or :meth:`drain` to drive it from a test, or :meth:`start`/:meth:`stop`
    for a background daemon thread. Both may be mixed: polling is serialised by a lock.
    """

    def __init__(
        self,
        name: str,
        *,
        streams_client: DynamoDBStreamsClient,
        stream_arn: str,
        handler: StreamHandler,
        checkpoints: CheckpointStore,
        on_failure: OnFailure | None = None,
        settings: PollerSettings | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.name = name
        self._streams = streams_client
        self._stream_arn = stream_arn
        self._handler = handler
        self._checkpoints = checkpoints
        self._on_failure = on_failure
        self._settings = settings or PollerSettings()
        self._region = region
        arn_parts = stream_arn.split(":")
        account_id = arn_parts[4] if len(arn_parts) > 5 and arn_parts[4] else DEFAULT_ACCOUNT_ID
        self._function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"

        self._poll_lock = threading.Lock()
        self._shards: dict[str, _Shard] = {}
        self._described = False
        self._last_described = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- driving it ---------------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Read every ready shard to its current end and deliver what was there.

        Returns how many records were handled (succeeded or sent to ``on_failure``). Errors other
        than the handler's (the stream API, the checkpoint store, ``on_failure``) propagate; the
        affected shard is re-read from its checkpoint on the next poll.
        """
        with self._poll_lock:
            self._refresh_shards()
            handled = 0
            for shard in self._ready_shards():
                handled += self._poll_shard(shard)
            return handled

    def drain(self, timeout: float = 10.0) -> None:
        """Poll until a poll finds nothing new (for tests); TimeoutError if records keep coming."""
        deadline = time.monotonic() + timeout
        while self.poll_once():
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream poller {self.name!r} still had records after {timeout} s")

    def start(self) -> None:
        """Poll in a background daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"stream poller {self.name!r} is already running")
        self._stopping.clear()
        # Position the iterators now, so that a LATEST mapping sees every record written after start().
        try:
            with self._poll_lock:
                self._refresh_shards()
                for shard in self._ready_shards():
                    if shard.iterator is None:
                        shard.iterator = self._new_iterator(shard)
        except Exception:
            logger.exception(
                "stream poller %s could not read its stream yet; the thread will retry", self.name
            )
        self._thread = threading.Thread(target=self._run, name=f"stream-poller-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it; a batch being retried is left for the next poller."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "stream poller %s did not stop within %s s (handler still running?)", self.name, timeout
            )
            return
        self._thread = None
        self._stopping.clear()

    def _run(self) -> None:
        interval = self._settings.poll_interval_seconds
        delay = interval
        while not self._stopping.is_set():
            try:
                handled = self.poll_once()
                delay = interval if handled else min(delay * 1.5, self._settings.idle_poll_max_seconds)
            except Exception:
                # The thread is the only consumer of the stream: it must outlive any fault.
                logger.exception("stream poller %s failed; retrying in %.1f s", self.name, delay)
                delay = min(delay * 2, MAX_ERROR_BACKOFF_SECONDS)
            self._stopping.wait(delay)

    # -- shards -------------------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        due = time.monotonic() - self._last_described >= SHARD_REFRESH_SECONDS
        if self._described and not due and any(not s.finished for s in self._shards.values()):
            return
        listed: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamArn": self._stream_arn}
        while True:
            description = self._streams.describe_stream(**request)["StreamDescription"]
            listed.extend(dict(shard) for shard in description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            request["ExclusiveStartShardId"] = last
        start_position = "TRIM_HORIZON" if self._described else self._settings.starting_position
        current: dict[str, _Shard] = {}
        for entry in sorted(listed, key=lambda s: int(s["SequenceNumberRange"]["StartingSequenceNumber"])):
            shard_id = entry["ShardId"]
            current[shard_id] = self._shards.get(shard_id) or _Shard(
                shard_id, entry.get("ParentShardId"), start_position
            )
        # Shards past the stream's retention disappear from the listing; forget them too.
        self._shards = current
        self._described = True
        self._last_described = time.monotonic()

    def _ready_shards(self) -> list[_Shard]:
        # Lambda finishes a parent shard before reading its children, to keep each key's order.
        ready = []
        for shard in self._shards.values():
            parent = self._shards.get(shard.parent_id) if shard.parent_id else None
            if not shard.finished and (parent is None or parent.finished):
                ready.append(shard)
        return ready

    def _new_iterator(self, shard: _Shard) -> str:
        checkpoint = self._checkpoints.get(self.name, shard.shard_id)
        request: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": shard.shard_id}
        if checkpoint is not None:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=checkpoint)
        else:
            request["ShardIteratorType"] = shard.start_position
        return self._streams.get_shard_iterator(**request)["ShardIterator"]

    def _poll_shard(self, shard: _Shard) -> int:
        handled = 0
        while not self._stopping.is_set():
            if shard.iterator is None:
                shard.iterator = self._new_iterator(shard)
            try:
                page = self._streams.get_records(
                    ShardIterator=shard.iterator, Limit=self._settings.batch_size
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                    shard.iterator = None
                    raise
                shard.iterator = None  # iterators live 15 minutes; a fresh one from the checkpoint
                continue
            records = [self._lambda_record(raw) for raw in page.get("Records", [])]
            next_iterator = page.get("NextShardIterator")
            if records:
                try:
                    self._deliver(shard.shard_id, records)
                except _Stopping:
                    shard.iterator = None
                    return handled
                except BaseException:
                    shard.iterator = None  # re-read from the checkpoint: nothing after it is lost
                    raise
                handled += len(records)
            shard.iterator = next_iterator
            if next_iterator is None:
                shard.finished = True
                logger.info("stream poller %s finished closed shard %s", self.name, shard.shard_id)
                return handled
            if not records:
                return handled
        return handled

    # -- delivery -----------------------------------------------------------------------------------

    def _deliver(
        self, shard_id: str, batch: list[dict[str, Any]], invokes: int = 0, retries: int = 0
    ) -> None:
        """Deliver ``batch`` until each of its records has succeeded or gone to ``on_failure``.

        ``invokes`` and ``retries`` are what the records already went through in the batch they
        were bisected from (see the module docstring for how retries are counted).
        """
        settings = self._settings
        while True:
            outcome = self._invoke(batch)
            invokes += 1
            if outcome.kind == "ok":
                self._checkpoint(shard_id, batch[-1])
                return
            if outcome.kind == "partial":
                done, batch = batch[: outcome.retry_from], batch[outcome.retry_from :]
                if done:
                    self._checkpoint(shard_id, done[-1])
                    if settings.bisect_batch_on_function_error:
                        continue
            elif settings.bisect_batch_on_function_error and len(batch) > 1:
                middle = len(batch) // 2
                logger.info("stream poller %s bisects a failed batch of %d records", self.name, len(batch))
                self._deliver(shard_id, batch[:middle], invokes, retries)
                self._deliver(shard_id, batch[middle:], invokes, retries)
                return
            if 0 <= settings.maximum_retry_attempts <= retries:
                self._discard(shard_id, batch, invokes, outcome)
                return
            retries += 1
            if self._stopping.wait(settings.retry_delay_seconds):
                raise _Stopping

    def _invoke(self, batch: list[dict[str, Any]]) -> _Outcome:
        request_id = str(uuid.uuid4())
        context = FakeLambdaContext(
            function_name=self.name,
            aws_request_id=request_id,
            invoked_function_arn=self._function_arn,
            log_group_name=f"/aws/lambda/{self.name}",
            deadline=time.monotonic() + FUNCTION_TIMEOUT_SECONDS,
        )
        # A copy per invocation: Lambda hands over a fresh event, so a handler that mutates it
        # must not change what a retry sees.
        event = {"Records": copy.deepcopy(batch)}
        try:
            response = json.loads(json.dumps(self._handler(event, context)))
        except Exception:
            logger.exception("stream poller %s: handler raised on %d records", self.name, len(batch))
            return _Outcome("failed", request_id, function_error="Unhandled")
        if not self._settings.report_batch_item_failures:
            return _Outcome("ok", request_id)
        return self._read_response(response, batch, request_id)

    def _read_response(self, response: Any, batch: list[dict[str, Any]], request_id: str) -> _Outcome:
        if response is None:
            return _Outcome("ok", request_id)
        if not isinstance(response, dict):
            return self._malformed(response, request_id)
        failures = response.get("batchItemFailures")
        if failures is None or failures == []:
            return _Outcome("ok", request_id)
        if not isinstance(failures, list):
            return self._malformed(response, request_id)
        positions = {record["dynamodb"]["SequenceNumber"]: index for index, record in enumerate(batch)}
        indexes: list[int] = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in positions:
                return self._malformed(response, request_id)
            indexes.append(positions[identifier])
        # Records are in sequence order, so the lowest sequence number is the lowest index.
        retry_from = min(indexes)
        logger.info(
            "stream poller %s: %d of %d records reported failed, retrying from %s",
            self.name,
            len(indexes),
            len(batch),
            batch[retry_from]["dynamodb"]["SequenceNumber"],
        )
        return _Outcome("partial", request_id, retry_from=retry_from)

    def _malformed(self, response: Any, request_id: str) -> _Outcome:
        logger.warning("stream poller %s: malformed batchItemFailures response %r", self.name, response)
        return _Outcome("failed", request_id)

    def _discard(self, shard_id: str, batch: list[dict[str, Any]], invokes: int, outcome: _Outcome) -> None:
        message = self._failure_message(shard_id, batch, invokes, outcome)
        info = message["DDBStreamBatchInfo"]
        if self._on_failure is None:
            logger.error(
                "stream poller %s discards records %s-%s of %s after %d invocations (no on_failure)",
                self.name,
                info["startSequenceNumber"],
                info["endSequenceNumber"],
                shard_id,
                invokes,
            )
        else:
            logger.warning(
                "stream poller %s sends records %s-%s of %s to on_failure after %d invocations",
                self.name,
                info["startSequenceNumber"],
                info["endSequenceNumber"],
                shard_id,
                invokes,
            )
            self._on_failure(message)
        self._checkpoint(shard_id, batch[-1])

    def _failure_message(
        self, shard_id: str, batch: list[dict[str, Any]], invokes: int, outcome: _Outcome
    ) -> dict[str, Any]:
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        return {
            "requestContext": {
                "requestId": outcome.request_id,
                "functionArn": self._function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invokes,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": outcome.function_error,
            },
            "version": "1.0",
            "timestamp": _iso_now(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso_seconds(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso_seconds(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch),
                "streamArn": self._stream_arn,
            },
        }

    def _checkpoint(self, shard_id: str, record: dict[str, Any]) -> None:
        self._checkpoints.put(self.name, shard_id, record["dynamodb"]["SequenceNumber"])

    def _lambda_record(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """boto3's stream record as Lambda's JSON event carries it."""
        stream_record = dict(raw["dynamodb"])
        created = stream_record.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            # Lambda sends epoch seconds; DynamoDB rounds the time down to the second anyway.
            stream_record["ApproximateCreationDateTime"] = int(created.timestamp())
        record: dict[str, Any] = {key: _json_value(value) for key, value in raw.items() if key != "dynamodb"}
        record.update(
            eventVersion="1.1",
            eventSource="aws:dynamodb",
            awsRegion=self._region,
            dynamodb=_json_value(stream_record),
            eventSourceARN=self._stream_arn,
        )
        return record


def _json_value(value: Any) -> Any:
    # boto3 decodes B and BS attribute values to bytes; Lambda's JSON event keeps them base64.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_value(item) for item in value]
    return value


def _iso_seconds(epoch_seconds: Any) -> str | None:
    if not isinstance(epoch_seconds, int | float):
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
