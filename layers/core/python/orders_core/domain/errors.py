"""What a command can be refused for. Adapters map each type to a status code."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal decided by the domain."""


class InvalidCommand(DomainError):
    """The command itself is malformed (an empty order, a negative quantity)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RuleViolation(DomainError):
    """The command is well formed but the aggregate's state forbids it."""


class NotFound(DomainError):
    """The aggregate does not exist, or the caller may not know that it does."""
