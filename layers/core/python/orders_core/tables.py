"""Table definitions shared by the CDK stack and the local run, so both build the same keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

KeyType = Literal["S", "N"]
# What a stream record carries: the item after the write, or before and after (a reader that
# must tell a rewrite of the same version from a new one compares the two).
StreamView = Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES"]


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: tuple[str, KeyType]
    sort_key: tuple[str, KeyType]


@dataclass(frozen=True)
class TableSpec:
    # Stable identifier: CDK construct id, environment variable prefix, local table name.
    key: str
    partition_key: tuple[str, KeyType]
    sort_key: tuple[str, KeyType] | None = None
    stream: bool = False
    stream_view: StreamView = "NEW_IMAGE"
    indexes: tuple[IndexSpec, ...] = ()
    # The attribute DynamoDB's TTL reads (epoch seconds). TTL deletes lazily, days late at worst:
    # readers of such a table skip expired items themselves.
    ttl_attribute: str | None = None

    @property
    def env_var(self) -> str:
        return f"{self.key.upper()}_TABLE"

    def local_name(self, prefix: str = "orders") -> str:
        return f"{prefix}-{self.key.replace('_', '-')}"

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """Arguments for boto3's create_table, as the stack would build the table."""
        keys = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        attributes = dict(keys)
        for index in self.indexes:
            attributes.update([index.partition_key, index.sort_key])
        request: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
            "KeySchema": _key_schema(keys),
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema([index.partition_key, index.sort_key]),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        if self.stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view}
        return request


def _key_schema(keys: list[tuple[str, KeyType]]) -> list[dict[str, str]]:
    return [
        {"AttributeName": name, "KeyType": role}
        for (name, _), role in zip(keys, ("HASH", "RANGE"), strict=False)
    ]


EVENTS = TableSpec(key="events", partition_key=("stream_id", "S"), sort_key=("version", "N"), stream=True)

# Aggregate snapshots, one item per (stream, version); `by_time` finds the latest one recorded
# by a given time (temporal queries). Written by the command function, read by command and query.
SNAPSHOTS = TableSpec(
    key="snapshots",
    partition_key=("stream_id", "S"),
    sort_key=("version", "N"),
    indexes=(IndexSpec("by_time", ("stream_id", "S"), ("recorded_at", "S")),),
)


# Read models share one key shape: pk = "<generation>#<entity>", sk = row kind. Generations let a
# rebuild write a fresh copy beside the one readers use (blue/green).
# The order view and inventory stream their changes (old and new images) to the live notifier
# (ADR 14): a push then never arrives before the view shows it. One reader per table.
CUSTOMER_ORDERS = TableSpec(
    key="customer_orders",
    partition_key=("pk", "S"),
    sort_key=("sk", "S"),
    stream=True,
    stream_view="NEW_AND_OLD_IMAGES",
    indexes=(IndexSpec("by_customer", ("gsi1pk", "S"), ("gsi1sk", "S")),),
)
SALES_ANALYTICS = TableSpec(key="sales_analytics", partition_key=("pk", "S"), sort_key=("sk", "S"))
INVENTORY = TableSpec(
    key="inventory",
    partition_key=("pk", "S"),
    sort_key=("sk", "S"),
    stream=True,
    stream_view="NEW_AND_OLD_IMAGES",
)

CUSTOMER_SUMMARY = TableSpec(key="customer_summary", partition_key=("pk", "S"), sort_key=("sk", "S"))
PRODUCT_SALES = TableSpec(key="product_sales", partition_key=("pk", "S"), sort_key=("sk", "S"))

READ_MODEL_TABLES: tuple[TableSpec, ...] = (
    CUSTOMER_ORDERS,
    SALES_ANALYTICS,
    INVENTORY,
    CUSTOMER_SUMMARY,
    PRODUCT_SALES,
)

# Active generation of each read model, and the record of every rebuild run.
PROJECTIONS_CONTROL = TableSpec(key="projections_control", partition_key=("pk", "S"), sort_key=("sk", "S"))

# Live updates (ADR 14): who is connected (an item per connection under its subject, its groups
# and its own id) and the inventory alerts raised. Connections live at most 2 h (API Gateway's
# limit): `expires_at` lets DynamoDB's TTL drop those whose $disconnect never came.
LIVE_CONNECTIONS = TableSpec(
    key="live_connections", partition_key=("pk", "S"), sort_key=("sk", "S"), ttl_attribute="expires_at"
)

ALL_TABLES: tuple[TableSpec, ...] = (
    EVENTS,
    *READ_MODEL_TABLES,
    PROJECTIONS_CONTROL,
    SNAPSHOTS,
    LIVE_CONNECTIONS,
)
