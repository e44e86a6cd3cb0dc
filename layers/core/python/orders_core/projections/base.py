"""What every projection shares: a commit's events as facts, grouping a batch, reporting failures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from orders_core.domain.events import DomainEvent
from orders_core.domain.inventory import PRODUCT
from orders_core.domain.orders import ORDER
from orders_core.envelope import Commit, EventEnvelope

ORDER_PREFIX = ORDER.stream_prefix
PRODUCT_PREFIX = PRODUCT.stream_prefix


@dataclass(frozen=True)
class Fact:
    """One stored event with its envelope and its domain meaning."""

    envelope: EventEnvelope
    event: DomainEvent


def facts(commit: Commit) -> list[Fact]:
    aggregate = ORDER if commit.stream_id.startswith(ORDER_PREFIX) else PRODUCT
    return [
        Fact(envelope, aggregate.events.load(envelope.type, envelope.data, envelope.schema_version))
        for envelope in commit.envelopes()
    ]


class Projection(Protocol):
    name: str

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        """Apply a batch; answer the positions of the commits that failed, with their error."""
        ...


def group_by(
    commits: Sequence[Commit], key: Callable[[Commit], str | None]
) -> dict[str, list[tuple[int, Commit]]]:
    groups: dict[str, list[tuple[int, Commit]]] = defaultdict(list)
    for position, commit in enumerate(commits):
        group = key(commit)
        if group is not None:
            groups[group].append((position, commit))
    return groups


def fail_all(failures: dict[int, Exception], members: Iterable[tuple[int, Commit]], error: Exception) -> None:
    for position, _ in members:
        failures.setdefault(position, error)
