"""DynamoDB tables: alarms on throttled requests and on DynamoDB's own errors, per table, summed
over the operations the service sends (TABLE_OPERATIONS)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.monitoring.common import Concern, Thresholds, pascal_case, table_operations_metric


class TablesMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        tables: Mapping[str, dynamodb.ITable],
    ) -> None:
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        for name, table in tables.items():
            self.add_alarm(
                f"{pascal_case(name)}TableThrottles",
                table_operations_metric(table, "ThrottledRequests"),
                threshold=thresholds.table_throttles,
                problem=f"DynamoDB throttled requests to table {name} (on-demand: a traffic spike "
                "above twice the previous peak, a hot partition, or the table's maximum throughput)",
            )
            self.add_alarm(
                f"{pascal_case(name)}TableSystemErrors",
                table_operations_metric(table, "SystemErrors"),
                threshold=thresholds.table_system_errors,
                problem=f"DynamoDB answered requests to table {name} with internal errors (HTTP 500)",
            )

    def widgets(self) -> list[cw.IWidget]:
        # No row of their own: each table's alarms, in the overview's alarm status, say which table.
        return []
