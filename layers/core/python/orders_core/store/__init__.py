"""The event store port and its adapters (in-memory, DynamoDB)."""

from orders_core.store.port import EventStore

__all__ = ["EventStore"]
