"""DynamoDB read store: conditional writes that make redelivered stream records harmless."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from orders_core.readmodels.port import (
    DELETE_PAGE_ITEMS,
    MAX_ATOMIC_ROWS,
    Key,
    Number,
    ReadStoreError,
    Row,
    StateWrite,
    SummaryDelta,
    VersionConflict,
    decode_cursor,
    decode_key_cursor,
    encode_cursor,
    encode_key_cursor,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        ConditionCheckTypeDef,
        PutTypeDef,
        TransactWriteItemTypeDef,
        UpdateTypeDef,
    )

INDEX_NAME = "by_customer"
_BATCH_GET_LIMIT = 100
_BATCH_WRITE_LIMIT = 25
# Deletes DynamoDB leaves unprocessed (throttled) are asked for again this many times in all,
# after a jittered pause that doubles from 50 ms up to 2 s.
_UNPROCESSED_ATTEMPTS = 8
_UNPROCESSED_PAUSE = 0.05
_UNPROCESSED_PAUSE_CAP = 2.0
# A transaction cancelled only because another one held its items is tried this many times in all,
# pausing a jittered 10 ms to 80 ms (more each time) between tries.
_TRANSACTION_ATTEMPTS = 5
_CONFLICT_PAUSE_SECONDS = (0.010, 0.080)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in row.items()}


def _to_row(item: Mapping[str, Any]) -> Row:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """No botocore error leaves this adapter: each becomes a ReadStoreError with its code."""
    try:
        yield
    except ClientError as exc:
        raise ReadStoreError(operation, _code(exc)) from exc
    except BotoCoreError as exc:  # no answer at all: a timeout, a closed connection
        raise ReadStoreError(operation, type(exc).__name__) from exc


def _bind(
    prefix: str, items: Mapping[str, Any], separator: str, names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    """`#<prefix>N<separator>:<prefix>N` for each item, its name and value bound to placeholders
    (names like `qty:sku-1` are not valid in an expression)."""
    terms = []
    for index, (name, value) in enumerate(items.items()):
        names[f"#{prefix}{index}"] = name
        values[f":{prefix}{index}"] = _serializer.serialize(value)
        terms.append(f"#{prefix}{index}{separator}:{prefix}{index}")
    return terms


def _condition_held(operation: str, write: Callable[[], object]) -> bool:
    """Run a conditional write: False when its condition failed, a ReadStoreError on any other
    botocore error (as `_translated`)."""
    try:
        with _translated(operation):
            write()
    except ReadStoreError as error:
        if error.code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _key(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}


def _version_condition(expected: int | None) -> tuple[str, dict[str, Any]]:
    """The condition of a versioned write, the stored row is at `expected` (None: absent), and
    the values it uses (none for absence: DynamoDB refuses an empty map)."""
    if expected is None:
        return "attribute_not_exists(pk)", {}
    return "version = :expected", {":expected": {"N": str(expected)}}


def _check_atomic_keys(keys: Sequence[Key]) -> None:
    # Refused here rather than by DynamoDB, whose ValidationException names no key.
    if len(keys) > MAX_ATOMIC_ROWS:
        raise ValueError(f"{len(keys)} rows in one atomic write, at most {MAX_ATOMIC_ROWS}")
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"rows written twice in one atomic write: {duplicates}")


def _cancellation_codes(exc: ClientError) -> list[str]:
    """One code per transaction action, in order ("None" for those that would have succeeded)."""
    return [str(reason.get("Code", "")) for reason in exc.response.get("CancellationReasons", [])]


def _conflict_pause(attempt: int) -> float:
    low, high = _CONFLICT_PAUSE_SECONDS
    return random.uniform(low, min(high, low * 2**attempt))


class DynamoDBReadStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Row]:
        rows: dict[Key, Row] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                self._table: {
                    "Keys": [
                        {"pk": {"S": pk}, "sk": {"S": sk}}
                        for pk, sk in unique[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            while pending:
                with _translated("get_many"):
                    reply = self._client.batch_get_item(RequestItems=pending)
                for item in reply.get("Responses", {}).get(self._table, []):
                    row = _to_row(item)
                    rows[(row["pk"], row["sk"])] = row
                pending = dict(reply.get("UnprocessedKeys") or {})
        return rows

    def put_next_version(self, key: Key, row: Row, *, version: int, expected: int | None) -> None:
        condition, values = _version_condition(expected)
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": _to_item({**row, "pk": key[0], "sk": key[1], "version": version}),
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        if not _condition_held("put_next_version", lambda: self._client.put_item(**request)):
            raise VersionConflict(key, expected)

    def put_if_newer(self, key: Key, row: Row, *, version: int) -> bool:
        item = _to_item({**row, "pk": key[0], "sk": key[1], "version": version})
        return _condition_held(
            "put_if_newer",
            lambda: self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR version < :version",
                ExpressionAttributeValues={":version": {"N": str(version)}},
            ),
        )

    def add_contribution(
        self,
        key: Key,
        *,
        sources: Sequence[str],
        counters: Mapping[str, Number],
        fields: Mapping[str, Any],
    ) -> bool:
        names: dict[str, str] = {"#applied": "applied"}
        values: dict[str, Any] = {":sources": {"SS": list(sources)}}
        adds = ["#applied :sources", *_bind("c", counters, " ", names, values)]
        sets = _bind("f", fields, " = ", names, values)
        guards = []
        for index, source in enumerate(sources):
            values[f":s{index}"] = {"S": source}
            guards.append(f"NOT contains(#applied, :s{index})")
        expression = "ADD " + ", ".join(adds) + (" SET " + ", ".join(sets) if sets else "")
        return _condition_held(
            "add_contribution",
            lambda: self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(guards),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            ),
        )

    def apply_atomically(self, states: Sequence[StateWrite], deltas: Sequence[SummaryDelta]) -> list[Key]:
        _check_atomic_keys([state.key for state in states] + [delta.key for delta in deltas])
        keys: list[Key] = []
        actions: list[TransactWriteItemTypeDef] = []
        for state in states:
            keys.append(state.key)
            actions.append(self._state_action(state))
        for delta in deltas:
            action = self._delta_action(delta)
            if action is not None:
                keys.append(delta.key)
                actions.append(action)
        if not actions:
            return []
        for attempt in range(_TRANSACTION_ATTEMPTS):
            if attempt:
                time.sleep(_conflict_pause(attempt))
            codes = self._transact(actions)
            if codes is None:
                return []
            failed = [key for key, code in zip(keys, codes, strict=False) if code == "ConditionalCheckFailed"]
            if failed:
                return failed
        raise ReadStoreError("apply_atomically", "TransactionConflict")

    def _transact(self, actions: Sequence[TransactWriteItemTypeDef]) -> list[str] | None:
        """Run the transaction: None if it was applied; the reason codes if it was cancelled for a
        failed condition or only because another transaction or write held one of its items. Any
        other failure (a throttle, a bad request) is a ReadStoreError."""
        try:
            with _translated("apply_atomically"):
                self._client.transact_write_items(TransactItems=actions)
        except ReadStoreError as error:
            cause = error.__cause__
            if error.code != "TransactionCanceledException" or not isinstance(cause, ClientError):
                raise
            codes = _cancellation_codes(cause)
            if "ConditionalCheckFailed" in codes:
                return codes
            if "TransactionConflict" in codes and set(codes) <= {"None", "TransactionConflict"}:
                return codes
            raise
        return None

    def _state_action(self, state: StateWrite) -> TransactWriteItemTypeDef:
        row = {**state.row, "pk": state.key[0], "sk": state.key[1], "version": state.version}
        condition, values = _version_condition(state.expected)
        put: PutTypeDef = {"TableName": self._table, "Item": _to_item(row), "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _delta_action(self, delta: SummaryDelta) -> TransactWriteItemTypeDef | None:
        """The Update a delta makes; a ConditionCheck when it changes nothing but has a condition
        (DynamoDB refuses an Update without a clause); None when it has neither."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses = []
        adds = _bind("a", delta.add, " ", names, values)
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        sets = _bind("s", delta.set, " = ", names, values)
        if sets:
            clauses.append("SET " + ", ".join(sets))
        removes = []
        for index, name in enumerate(delta.remove):
            names[f"#r{index}"] = name
            removes.append(f"#r{index}")
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        condition = None
        if delta.only_if_not_after is not None:
            name, value = delta.only_if_not_after
            names["#if"] = name
            condition = "attribute_not_exists(#if) OR #if <= :if"
            values[":if"] = {"S": value}
        if not clauses:
            if condition is None:
                return None
            check: ConditionCheckTypeDef = {
                "TableName": self._table,
                "Key": _key(delta.key),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
            }
            if values:
                check["ExpressionAttributeValues"] = values
            return {"ConditionCheck": check}
        update: UpdateTypeDef = {
            "TableName": self._table,
            "Key": _key(delta.key),
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": names,
        }
        if condition is not None:
            update["ConditionExpression"] = condition
        # DynamoDB refuses an empty map of values (a delta that only removes).
        if values:
            update["ExpressionAttributeValues"] = values
        return {"Update": update}

    def delete_if(self, key: Key, *, counter: str, equals: Number) -> bool:
        return _condition_held(
            "delete_if",
            lambda: self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                ConditionExpression="#counter = :equals",
                ExpressionAttributeNames={"#counter": counter},
                ExpressionAttributeValues={":equals": _serializer.serialize(equals)},
            ),
        )

    def query_partition(self, pk: str) -> list[Row]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        rows: list[Row] = []
        while True:
            with _translated("query_partition"):
                page = self._client.query(**request)
            rows.extend(_to_row(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return rows
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def query_index(
        self, index_pk: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Row], str | None]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX_NAME,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": index_pk}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            gsi1sk, pk, sk = decode_cursor(cursor)
            # The partition comes from the caller's own query, never from the cursor.
            request["ExclusiveStartKey"] = {
                "gsi1pk": {"S": index_pk},
                "gsi1sk": {"S": gsi1sk},
                "pk": {"S": pk},
                "sk": {"S": sk},
            }
        with _translated("query_index"):
            page = self._client.query(**request)
        rows = [_to_row(item) for item in page.get("Items", [])]
        return rows, encode_cursor(rows[-1]) if page.get("LastEvaluatedKey") and rows else None

    def delete_partition_prefix_page(
        self, prefix: str, *, cursor: str | None = None, limit: int = DELETE_PAGE_ITEMS
    ) -> tuple[int, str | None]:
        if limit < 1:
            raise ValueError("a page evaluates at least one row")
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": prefix}},
            "ProjectionExpression": "pk, sk",
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = _key(decode_key_cursor(cursor))
        with _translated("delete_partition_prefix_page"):
            page = self._client.scan(**request)
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in page.get("Items", [])]
        for start in range(0, len(keys), _BATCH_WRITE_LIMIT):
            self._delete_batch(keys[start : start + _BATCH_WRITE_LIMIT])
        last = page.get("LastEvaluatedKey")
        return len(keys), encode_key_cursor((last["pk"]["S"], last["sk"]["S"])) if last else None

    def _delete_batch(self, keys: Sequence[Mapping[str, Any]]) -> None:
        operation = "delete_partition_prefix_page"
        pending: dict[str, Any] = {self._table: [{"DeleteRequest": {"Key": key}} for key in keys]}
        for attempt in range(_UNPROCESSED_ATTEMPTS):
            if attempt:
                # What DynamoDB left unprocessed was throttled: back off before asking again.
                time.sleep(random.uniform(0, min(_UNPROCESSED_PAUSE_CAP, _UNPROCESSED_PAUSE * 2**attempt)))
            with _translated(operation):
                reply = self._client.batch_write_item(RequestItems=pending)
            pending = dict(reply.get("UnprocessedItems") or {})
            if not pending:
                return
        raise ReadStoreError(operation, "UnprocessedItems")
