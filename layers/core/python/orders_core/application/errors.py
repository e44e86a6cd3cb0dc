"""Refusals decided by the application service rather than by the domain's rules."""

from __future__ import annotations


class StaleVersion(Exception):
    """The caller's If-Match version is no longer the aggregate's version."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"the order is at version {actual}, not {expected}: reload it and try again")
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(Exception):
    """A command id that was already used, sent again with a different request."""

    def __init__(self, command_id: str) -> None:
        super().__init__(
            f"command id {command_id!r} was already used for a different request; use a new Idempotency-Key"
        )
        self.command_id = command_id
