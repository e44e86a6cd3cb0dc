"""DynamoDB event store: one item per commit, written with one conditional PutItem."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from orders_core.envelope import Commit, CommitMetadata, NewEvent
from orders_core.errors import CommitTooLarge, ConcurrencyError, EventStoreError
from orders_core.store.codec import MAX_COMMIT_BYTES, Item, commit_to_item, item_size, item_to_commit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class DynamoDBEventStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> Commit:
        commit = Commit(stream_id, expected_version + 1, tuple(events), metadata)
        item = commit_to_item(commit)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(version)",
            )
        except ClientError as exc:
            # Classified by error code only: messages are for people and change without notice.
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise ConcurrencyError(stream_id, expected_version) from exc
            if code == "ValidationException":
                # The request is ours and constant but for the item, and commit_to_item has already
                # refused every item DynamoDB would find invalid on its face (empty or oversized
                # key, a version out of range, no events, too large by our estimate). What a
                # well-formed commit can still meet is the size check at the edge of our estimate
                # ("Item size has exceeded the maximum allowed size"): DynamoDB counts the item
                # as larger than we did.
                size = item_size(item)
                raise CommitTooLarge(
                    stream_id,
                    size,
                    MAX_COMMIT_BYTES,
                    message=(
                        f"DynamoDB refused the item of this commit as too large; our estimate of "
                        f"its size was {size} bytes, under the {MAX_COMMIT_BYTES}-byte limit of one commit"
                    ),
                ) from exc
            raise EventStoreError(f"could not append to {stream_id!r}: {code}") from exc
        return commit

    def read_commits(
        self,
        stream_id: str,
        after_version: int = 0,
        *,
        up_to_version: int | None = None,
        recorded_until: str | None = None,
    ) -> list[Commit]:
        if up_to_version is None:
            return self._query(
                stream_id, "version > :v", after_version, forward=True, recorded_until=recorded_until
            )
        if up_to_version <= after_version:
            return []
        # BETWEEN is inclusive: commits that start after `after_version` and at or before the bound.
        return self._query(
            stream_id,
            "version BETWEEN :v AND :upper",
            after_version + 1,
            forward=True,
            upper=up_to_version,
            recorded_until=recorded_until,
        )

    def read_commit(self, stream_id: str, first_version: int) -> Commit | None:
        try:
            reply = self._client.get_item(
                TableName=self._table,
                Key={"stream_id": {"S": stream_id}, "version": {"N": str(first_version)}},
                ConsistentRead=True,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise EventStoreError(f"could not read {stream_id!r}: {code}") from exc
        item = reply.get("Item")
        return item_to_commit(cast("Item", item)) if item else None

    def read_commits_covering(self, stream_id: str, from_version: int) -> list[Commit]:
        later = self._query(stream_id, "version >= :v", from_version, forward=True)
        if from_version <= 1 or (later and later[0].first_version == from_version):
            return later
        # `from_version` may sit inside an earlier commit: fetch that one commit too.
        earlier = self._query(stream_id, "version < :v", from_version, forward=False, limit=1)
        if earlier and earlier[0].last_version >= from_version:
            return earlier + later
        return later

    def _query(
        self,
        stream_id: str,
        condition: str,
        version: int,
        *,
        forward: bool,
        limit: int | None = None,
        upper: int | None = None,
        recorded_until: str | None = None,
    ) -> list[Commit]:
        values: dict[str, Any] = {":s": {"S": stream_id}, ":v": {"N": str(version)}}
        if upper is not None:
            values[":upper"] = {"N": str(upper)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"stream_id = :s AND {condition}",
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
            "ConsistentRead": True,
        }
        if limit is not None:
            request["Limit"] = limit
        commits: list[Commit] = []
        while True:
            try:
                page = self._client.query(**request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                raise EventStoreError(f"could not read {stream_id!r}: {code}") from exc
            for item in page.get("Items", []):
                commit = item_to_commit(cast("Item", item))
                if recorded_until is not None and commit.metadata.recorded_at > recorded_until:
                    return commits  # times never go backwards in a stream: nothing later qualifies
                commits.append(commit)
            last_key = page.get("LastEvaluatedKey")
            if not last_key or (limit is not None and len(commits) >= limit):
                return commits
            request["ExclusiveStartKey"] = last_key
