"""Customer order view: one row per order, moved forward only by its next version."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from orders_core.domain.orders import ItemAdded, OrderCancelled, OrderLine, OrderPlaced, OrderShipped
from orders_core.envelope import Commit
from orders_core.projections.base import ORDER_PREFIX, Fact, facts, fail_all, group_by
from orders_core.readmodels.port import ReadStore, Row, VersionConflict
from orders_core.store.port import EventStore

NAME = "customer_orders"
VIEW = "view"
_ATTEMPTS = 3


@dataclass(frozen=True)
class OrderView:
    order_id: str
    customer_id: str
    status: str
    items: tuple[OrderLine, ...]
    tracking_number: str | None
    placed_at: str
    version: int
    # The correlation id of the command whose commit produced `version`, so that a client can match
    # the command it sent (live updates, ADR 14). None for a row written before the view kept it.
    correlation_id: str | None = None

    @property
    def total_amount(self) -> Decimal:
        return sum((line.line_total for line in self.items), Decimal("0.00"))

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "status": self.status,
            "items": [
                {
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "unit_price": str(line.unit_price),
                    "line_total": str(line.line_total),
                }
                for line in self.items
            ],
            "total_amount": str(self.total_amount),
            "tracking_number": self.tracking_number,
            "placed_at": self.placed_at,
            "version": self.version,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderView:
        return cls(
            order_id=data["order_id"],
            customer_id=data["customer_id"],
            status=data["status"],
            items=tuple(
                OrderLine(
                    i["product_id"], int(i["quantity"]), Decimal(i["unit_price"]), Decimal(i["line_total"])
                )
                for i in data["items"]
            ),
            tracking_number=data["tracking_number"],
            placed_at=data["placed_at"],
            version=int(data["version"]),
            correlation_id=data.get("correlation_id"),
        )


def project(view: OrderView | None, fact: Fact) -> OrderView | None:
    """The pure projection: (row, event) -> row."""
    event, version, correlation_id = fact.event, fact.envelope.version, fact.envelope.correlation_id
    if isinstance(event, OrderPlaced):
        lines = tuple(OrderLine(i.product_id, i.quantity, i.unit_price) for i in event.items)
        return OrderView(
            event.order_id,
            event.customer_id,
            "placed",
            lines,
            None,
            fact.envelope.recorded_at,
            version,
            correlation_id,
        )
    if view is None:
        return None  # not reachable from a complete log: every order starts with OrderPlaced
    if isinstance(event, ItemAdded):
        view = replace(
            view,
            items=(
                *view.items,
                OrderLine(event.product_id, event.quantity, event.unit_price, event.line_total),
            ),
        )
    elif isinstance(event, OrderCancelled):
        view = replace(view, status="cancelled")
    elif isinstance(event, OrderShipped):
        view = replace(view, status="shipped", tracking_number=event.tracking_number)
    return replace(view, version=version, correlation_id=correlation_id)


def fold(view: OrderView | None, commits: Sequence[Commit]) -> OrderView | None:
    for commit in commits:
        for fact in facts(commit):
            view = project(view, fact)
    return view


def _contiguous(commits: Sequence[Commit], version: int) -> bool:
    for commit in commits:
        if commit.first_version != version + 1:
            return False
        version = commit.last_version
    return True


class CustomerOrders:
    """Stores the view; reads it for the query API."""

    name = NAME

    def __init__(self, store: ReadStore, events: EventStore, generation: int = 1) -> None:
        self._store = store
        self._events = events
        self._generation = generation

    def _key(self, order_id: str) -> tuple[str, str]:
        return (f"{self._generation}#{order_id}", VIEW)

    def _row(self, view: OrderView) -> Row:
        return {
            "doc": json.dumps(view.to_json()),
            "gsi1pk": f"{self._generation}#{view.customer_id}",
            "gsi1sk": f"{view.placed_at}#{view.order_id}",
        }

    # -- writing -------------------------------------------------------------------------------

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        groups = group_by(commits, lambda c: c.stream_id if c.stream_id.startswith(ORDER_PREFIX) else None)
        keys = [self._key(stream.removeprefix(ORDER_PREFIX)) for stream in groups]
        # New orders have no row yet: skip the read for them.
        known = [
            key for key, members in zip(keys, groups.values(), strict=True) if members[0][1].first_version > 1
        ]
        rows = self._store.get_many(known) if known else {}
        failures: dict[int, Exception] = {}
        for (stream_id, members), key in zip(groups.items(), keys, strict=True):
            try:
                self._apply(stream_id, key, rows.get(key), [commit for _, commit in members])
            except Exception as error:  # reported per record; Lambda retries from the first failure
                fail_all(failures, members, error)
        return failures

    def _apply(self, stream_id: str, key: tuple[str, str], row: Row | None, batch: list[Commit]) -> None:
        for _ in range(_ATTEMPTS):
            view = OrderView.from_json(json.loads(row["doc"])) if row else None
            version = view.version if view else 0
            pending = sorted(
                {c.first_version: c for c in batch if c.last_version > version}.values(),
                key=lambda c: c.first_version,
            )
            if not pending:
                return  # every commit of the batch is already reflected: a redelivery
            if not _contiguous(pending, version):
                # A gap: some commits have not reached us yet. Read them rather than skip them.
                pending = self._events.read_commits(stream_id, after_version=version)
            new_view = fold(view, pending)
            if new_view is None:
                raise ValueError(f"{stream_id} has no OrderPlaced before version {pending[0].first_version}")
            try:
                self._store.put_next_version(
                    key, self._row(new_view), version=new_view.version, expected=version if view else None
                )
                return
            except VersionConflict:
                # Another invocation moved the row: start again from what it wrote.
                row = self._store.get_many([key]).get(key)
        raise RuntimeError(f"{stream_id}: the view kept moving under this batch")

    # -- reading -------------------------------------------------------------------------------

    def get(self, order_id: str) -> OrderView | None:
        row = self._store.get_many([self._key(order_id)]).get(self._key(order_id))
        return OrderView.from_json(json.loads(row["doc"])) if row else None

    def for_customer(
        self, customer_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[OrderView], str | None]:
        rows, next_cursor = self._store.query_index(
            f"{self._generation}#{customer_id}", limit=limit, cursor=cursor
        )
        return [OrderView.from_json(json.loads(row["doc"])) for row in rows], next_cursor
