"""The live updates' ports: who is connected, which alerts are raised, and pushing a message.

`ConnectionStore` finds the connections of a subject (a customer) or of a group (the operators).
A connection lives at most `CONNECTION_LIFETIME_SECONDS` (API Gateway closes it then): its items
carry `expires_at`, DynamoDB's TTL removes those whose $disconnect never came, and since TTL
deletes lazily (within days), readers skip expired connections themselves.

`AlertMarkers` remembers whether an alert (a product running low) holds, as of which revision of
what it is about, and which trigger raised it: so that concurrent or repeated deliveries of
changes raise each alert once per time it starts to hold, and a redelivery of the change that
raised it pushes it again (at least once) rather than never.

`Pusher` sends one message to one connection; a connection that is gone says so.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# API Gateway's maximum connection duration for WebSocket APIs (not adjustable).
CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60


class LiveStoreError(Exception):
    """The store could not do what was asked (throttled, unreachable, denied); `code` says why."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"live store {operation} failed: {code or 'unknown error'}")
        self.operation = operation
        self.code = code


@dataclass(frozen=True)
class Connection:
    connection_id: str
    subject: str
    groups: frozenset[str]
    expires_at: int  # epoch seconds

    @property
    def opened_at(self) -> int:
        return self.expires_at - CONNECTION_LIFETIME_SECONDS


@dataclass(frozen=True)
class Reachable:
    """A connection as a subject's or a group's lookup finds it."""

    connection_id: str
    expires_at: int

    @property
    def opened_at(self) -> int:
        return self.expires_at - CONNECTION_LIFETIME_SECONDS


class ConnectionStore(Protocol):
    def add(self, connection: Connection) -> None:
        """Remember the connection under its subject and each of its groups."""
        ...

    def remove(self, connection_id: str) -> None:
        """Forget the connection wherever it is remembered; nothing if it is unknown."""
        ...

    def of_subject(self, subject: str, *, now: int) -> Sequence[Reachable]:
        """The subject's connections that have not expired by `now`, by id."""
        ...

    def of_group(self, group: str, *, now: int) -> Sequence[Reachable]:
        """The connections of the group's members that have not expired by `now`, by id."""
        ...


class AlertMarkers(Protocol):
    def record(self, alert: str, *, holds: bool, revision: int, trigger: str) -> bool:
        """Record whether `alert` holds as of `revision` of what it is about (ignored when a newer
        revision is recorded). True when `trigger` is the one that raised the alert: this call, or
        an earlier one with the same trigger, found it not holding and made it hold, and it still
        holds. So an alert is pushed once per time it starts to hold, and again only by a
        redelivery of the change that raised it."""
        ...


class PushOutcome(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # the connection is closed: forget it


class PushFailed(Exception):
    """The message may not have been delivered (throttled, unreachable): try again later."""


class Pusher(Protocol):
    def push(self, connection_id: str, message: bytes) -> PushOutcome:
        """Send one text message to one connection."""
        ...
