"""Table definitions shared by the CDK stack and the local run, so both build the same keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

KeyType = Literal["S", "N"]


@dataclass(frozen=True)
class TableSpec:
    # Stable identifier: CDK construct id, environment variable prefix, local table name.
    key: str
    partition_key: tuple[str, KeyType]
    sort_key: tuple[str, KeyType] | None = None
    stream: bool = False

    @property
    def env_var(self) -> str:
        return f"{self.key.upper()}_TABLE"

    def local_name(self, prefix: str = "orders") -> str:
        return f"{prefix}-{self.key.replace('_', '-')}"

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """Arguments for boto3's create_table, as the stack would build the table."""
        keys = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        request: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in keys],
            "KeySchema": [
                {"AttributeName": name, "KeyType": role}
                for (name, _), role in zip(keys, ("HASH", "RANGE"), strict=False)
            ],
        }
        if self.stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        return request


EVENTS = TableSpec(key="events", partition_key=("stream_id", "S"), sort_key=("version", "N"), stream=True)

ALL_TABLES: tuple[TableSpec, ...] = (EVENTS,)
