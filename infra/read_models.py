"""Read-model tables (one per projection, rebuildable from the events table at any time) and the
projections' control table (which generation of each read model readers use; rebuild runs)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.dynamodb import table_from_spec
from infra.nag import acknowledge
from orders_core.tables import PROJECTIONS_CONTROL, READ_MODEL_TABLES, TableSpec


class ReadModels(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.specs: tuple[TableSpec, ...] = READ_MODEL_TABLES
        self._tables: dict[str, dynamodb.Table] = {}
        for spec in READ_MODEL_TABLES:
            table = table_from_spec(
                self,
                _construct_id(spec),
                spec,
                # Derived data: the rebuild workflow recreates any read model from the events table,
                # so neither retention on deletion nor point-in-time recovery buys anything.
                removal_policy=RemovalPolicy.DESTROY,
                point_in_time_recovery=False,
            )
            acknowledge(
                table,
                "AwsSolutions-DDB3",
                "Read models are projections of the events table (which has PITR) and are rebuilt "
                "from it by the rebuild workflow; a backup of derived data adds cost, not recovery.",
            )
            self._tables[spec.key] = table
        # Not derived: the active generation of each read model cannot be recomputed (a lost row
        # sends readers back to generation 1, which a rebuild may have retired), and the rebuild
        # runs are the operators' record. Point-in-time recovery protects both (the table is tiny).
        # It goes with the stack: it describes the read-model tables, which go with the stack too.
        self.control: dynamodb.Table = table_from_spec(
            self,
            _construct_id(PROJECTIONS_CONTROL),
            PROJECTIONS_CONTROL,
            removal_policy=RemovalPolicy.DESTROY,
            point_in_time_recovery=True,
        )

    def table(self, spec: TableSpec) -> dynamodb.Table:
        return self._tables[spec.key]

    @property
    def read_tables(self) -> dict[TableSpec, dynamodb.Table]:
        return {spec: self._tables[spec.key] for spec in self.specs}

    @property
    def tables(self) -> dict[TableSpec, dynamodb.Table]:
        return {**self.read_tables, PROJECTIONS_CONTROL: self.control}


def _construct_id(spec: TableSpec) -> str:
    return "".join(part.capitalize() for part in spec.key.split("_"))
