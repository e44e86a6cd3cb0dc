"""The application layer: load an aggregate, decide, append; the write side's use cases.

errors   what a command can be refused for beyond the domain's rules (stale If-Match, reused key)
loading  an aggregate folded from its commits or a snapshot, with its recent command ids
cache    the warm function's aggregates, so a steady-state command costs one request
service  CommandService: the one entry point of every command
"""

from orders_core.application.cache import AggregateCache
from orders_core.application.errors import IdempotencyKeyReused, StaleVersion
from orders_core.application.loading import (
    CommandRecord,
    Loaded,
    fold_commits,
    in_current_schema,
    loaded_from_snapshot,
    snapshot_of,
)
from orders_core.application.service import CommandContext, CommandResult, CommandService, WarningLog

__all__ = [
    "AggregateCache",
    "CommandContext",
    "CommandRecord",
    "CommandResult",
    "CommandService",
    "IdempotencyKeyReused",
    "Loaded",
    "StaleVersion",
    "WarningLog",
    "fold_commits",
    "in_current_schema",
    "loaded_from_snapshot",
    "snapshot_of",
]
