"""Snapshots of aggregate state, in their own table: the port and its adapters (in-memory, DynamoDB)."""

from orders_core.snapshots.port import Snapshot, SnapshotStore, SnapshotStoreError, SnapshotTooLarge

__all__ = ["Snapshot", "SnapshotStore", "SnapshotStoreError", "SnapshotTooLarge"]
