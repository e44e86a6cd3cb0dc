"""Connections and alert markers in one DynamoDB table (`tables.LIVE_CONNECTIONS`, pk/sk strings).

Items:
- `("connection#<id>", "connection")`: the connection's subject, groups and `expires_at`, so that
  $disconnect and pruning find every item of a connection from its id alone;
- `("subject#<subject>", "<id>")` and `("group#<group>", "<id>")`: one Query finds a customer's or
  the operators' connections;
- `("alert#<alert>", "alert")`: whether the alert holds, as of which revision, raised by which
  trigger.

Reads are BatchGetItem and Query (strongly consistent), writes BatchWriteItem and conditional
PutItem: no GetItem or DeleteItem, like every other store here (ADR 6's grants).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from orders_core.live.port import Connection, LiveStoreError, Reachable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

CONNECTION_SK = "connection"
ALERT_SK = "alert"
# Requests DynamoDB left unprocessed (throttled) are sent again this many times in all.
_UNPROCESSED_ATTEMPTS = 5
# Rounds of re-reading an alert marker another writer moved meanwhile.
_MARKER_ROUNDS = 5


def _connection_key(connection_id: str) -> tuple[str, str]:
    return (f"connection#{connection_id}", CONNECTION_SK)


def _subject_pk(subject: str) -> str:
    return f"subject#{subject}"


def _group_pk(group: str) -> str:
    return f"group#{group}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise LiveStoreError(operation, str(exc.response.get("Error", {}).get("Code", ""))) from exc
    except BotoCoreError as exc:
        raise LiveStoreError(operation, type(exc).__name__) from exc


class _Table:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _get(self, operation: str, pk: str, sk: str) -> dict[str, Any] | None:
        with _translated(operation):
            reply = self._client.batch_get_item(
                RequestItems={self._table: {"Keys": [_key(pk, sk)], "ConsistentRead": True}}
            )
            if reply.get("UnprocessedKeys"):
                raise LiveStoreError(operation, "UnprocessedKeys")
        items = reply.get("Responses", {}).get(self._table, [])
        return dict(items[0]) if items else None

    def _write_all(self, operation: str, requests: Sequence[WriteRequestTypeDef]) -> None:
        pending: Sequence[Any] = requests
        for _ in range(_UNPROCESSED_ATTEMPTS):
            with _translated(operation):
                reply = self._client.batch_write_item(RequestItems={self._table: pending})
            pending = reply.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return
        raise LiveStoreError(operation, "UnprocessedItems")

    def _query_reachable(self, operation: str, pk: str, now: int) -> list[Reachable]:
        found: list[Reachable] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            with _translated(operation):
                page = self._client.query(**request)
            # TTL deletes within days, not at expiry: skip what has expired but is still stored.
            for item in page.get("Items", []):
                expires_at = int(item["expires_at"]["N"])
                if expires_at > now:
                    found.append(Reachable(item["sk"]["S"], expires_at))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoDBConnectionStore(_Table):
    def add(self, connection: Connection) -> None:
        expires = {"N": str(connection.expires_at)}
        pk, sk = _connection_key(connection.connection_id)
        own: dict[str, Any] = {**_key(pk, sk), "subject": {"S": connection.subject}, "expires_at": expires}
        if connection.groups:
            own["groups"] = {"SS": sorted(connection.groups)}
        index_pks = [_subject_pk(connection.subject), *(_group_pk(g) for g in sorted(connection.groups))]
        items = [
            own,
            *({**_key(index_pk, connection.connection_id), "expires_at": expires} for index_pk in index_pks),
        ]
        self._write_all("add", [{"PutRequest": {"Item": item}} for item in items])

    def remove(self, connection_id: str) -> None:
        own = self._get("remove", *_connection_key(connection_id))
        if own is None:
            return
        groups = own.get("groups", {}).get("SS", [])
        keys = [
            _connection_key(connection_id),
            (_subject_pk(own["subject"]["S"]), connection_id),
            *((_group_pk(group), connection_id) for group in groups),
        ]
        self._write_all("remove", [{"DeleteRequest": {"Key": _key(pk, sk)}} for pk, sk in keys])

    def of_subject(self, subject: str, *, now: int) -> Sequence[Reachable]:
        return self._query_reachable("of_subject", _subject_pk(subject), now)

    def of_group(self, group: str, *, now: int) -> Sequence[Reachable]:
        return self._query_reachable("of_group", _group_pk(group), now)


class DynamoDBAlertMarkers(_Table):
    def record(self, alert: str, *, holds: bool, revision: int, trigger: str) -> bool:
        pk = f"alert#{alert}"
        for _ in range(_MARKER_ROUNDS):
            stored = self._get("record", pk, ALERT_SK)
            stored_revision = int(stored["revision"]["N"]) if stored else None
            stored_holds = bool(stored and stored["holds"]["BOOL"])
            raised_by = stored.get("raised_by", {}).get("S") if stored else None
            if stored_revision is not None and stored_revision >= revision:
                return stored_holds and raised_by == trigger  # a newer state is recorded already
            kept = raised_by if stored_holds else trigger
            item: dict[str, Any] = {
                **_key(pk, ALERT_SK),
                "holds": {"BOOL": holds},
                "revision": {"N": str(revision)},
            }
            if holds and kept:
                item["raised_by"] = {"S": kept}
            # Written only over the state read: another writer in between means read again.
            if stored_revision is None:
                condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:
                condition = {
                    "ConditionExpression": "revision = :read",
                    "ExpressionAttributeValues": {":read": {"N": str(stored_revision)}},
                }
            try:
                with _translated("record"):
                    self._client.put_item(TableName=self._table, Item=item, **condition)
            except LiveStoreError as error:
                if error.code == "ConditionalCheckFailedException":
                    continue
                raise
            return holds and kept == trigger
        raise LiveStoreError("record", "the alert marker kept moving")
