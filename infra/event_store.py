"""The event store: the events table (the system's source of truth) and the aggregate snapshots."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.dynamodb import table_from_spec
from infra.nag import acknowledge
from orders_core.tables import EVENTS, SNAPSHOTS, TableSpec


class EventStore(Construct):
    """Events table keyed by (stream_id, version), its NEW_IMAGE stream feeding the projections.

    Point-in-time recovery is on (the rebuild workflow exports from it, and it is the only copy of
    the truth); the table survives stack deletion and cannot be deleted by accident.

    The snapshots table holds the latest aggregate states the command function writes beside the
    commits (ADR 7): derived data, so neither retained nor backed up.
    """

    spec: TableSpec = EVENTS

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.events: dynamodb.Table = table_from_spec(
            self,
            "Events",
            EVENTS,
            removal_policy=RemovalPolicy.RETAIN,
            point_in_time_recovery=True,
            deletion_protection=True,
        )
        self.snapshots: dynamodb.Table = table_from_spec(
            self,
            "Snapshots",
            SNAPSHOTS,
            # A snapshot is a fold of the events up to its version: losing the table only makes cold
            # loads read whole streams again, and commands write new snapshots as they go.
            removal_policy=RemovalPolicy.DESTROY,
            point_in_time_recovery=False,
        )
        acknowledge(
            self.snapshots,
            "AwsSolutions-DDB3",
            "Snapshots are folds of the events table (which has PITR): a lost snapshot only makes the "
            "next cold load of that aggregate read its events, and the command function writes new ones.",
        )

    @property
    def tables(self) -> dict[TableSpec, dynamodb.Table]:
        return {EVENTS: self.events, SNAPSHOTS: self.snapshots}
