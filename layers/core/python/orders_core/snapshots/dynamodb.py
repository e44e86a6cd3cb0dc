"""DynamoDB snapshot store: one item per (stream, version); a `by_time` index for temporal reads.

Every read is a single request: a Query for the newest item of the stream (optionally at or
below a version, or, on the index, at or before a time) with `Limit 1`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from orders_core.snapshots.codec import item_to_snapshot, snapshot_to_item
from orders_core.snapshots.port import Snapshot, SnapshotStoreError
from orders_core.store.codec import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BY_TIME_INDEX = "by_time"


class DynamoDBSnapshotStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def save(self, snapshot: Snapshot) -> None:
        item = snapshot_to_item(snapshot)
        try:
            # Unconditional: a snapshot at version v is the same state whoever computes it.
            self._client.put_item(TableName=self._table, Item=item)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise SnapshotStoreError(
                f"could not save the snapshot of {snapshot.stream_id!r}: {code}"
            ) from exc

    def latest(self, stream_id: str, *, at_or_before_version: int | None = None) -> Snapshot | None:
        condition = "stream_id = :s"
        values: dict[str, Any] = {":s": {"S": stream_id}}
        if at_or_before_version is not None:
            condition += " AND version <= :v"
            values[":v"] = {"N": str(at_or_before_version)}
        return self._newest(
            stream_id, KeyConditionExpression=condition, ExpressionAttributeValues=values, ConsistentRead=True
        )

    def latest_recorded_by(self, stream_id: str, recorded_at: str) -> Snapshot | None:
        # Index reads are eventually consistent; a snapshot missing from the index only means
        # folding starts from an older one.
        return self._newest(
            stream_id,
            IndexName=BY_TIME_INDEX,
            KeyConditionExpression="stream_id = :s AND recorded_at <= :t",
            ExpressionAttributeValues={":s": {"S": stream_id}, ":t": {"S": recorded_at}},
        )

    def _newest(self, stream_id: str, **query: Any) -> Snapshot | None:
        try:
            reply = self._client.query(TableName=self._table, ScanIndexForward=False, Limit=1, **query)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise SnapshotStoreError(f"could not read the snapshots of {stream_id!r}: {code}") from exc
        items = reply.get("Items", [])
        return item_to_snapshot(cast("Item", items[0])) if items else None
