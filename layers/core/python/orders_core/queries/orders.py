"""Queries about orders: one order (optionally waiting until it shows a version), its history,
its state at a point in the past, and a customer's orders, newest first.

Another customer's order is answered exactly like a missing one, at every point in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orders_core.application.loading import Loaded, fold_commits, in_current_schema
from orders_core.domain.errors import NotFound
from orders_core.domain.orders import ORDER
from orders_core.envelope import EventEnvelope, envelopes_of
from orders_core.projections.customer_orders import OrderView
from orders_core.queries.errors import ViewNotCaughtUp
from orders_core.queries.read_models import ActiveReadModels
from orders_core.queries.temporal import OrderAtPoint, TemporalOrders
from orders_core.snapshots.port import SnapshotStore
from orders_core.store.port import EventStore

# How long a `min_version` request may wait for the view (API Gateway allows 30 s per request).
MAX_WAIT_SECONDS = 3.0
POLL_SECONDS = 0.1


class Viewer(Protocol):
    """Who asks: a customer sees their own orders, an operator sees every order."""

    @property
    def user_id(self) -> str: ...

    @property
    def is_operator(self) -> bool: ...


@dataclass(frozen=True)
class AtVersion:
    version: int


@dataclass(frozen=True)
class AsOf:
    instant: datetime


PointInTime = AtVersion | AsOf


@dataclass(frozen=True)
class OrderHistory:
    order_id: str
    events: list[EventEnvelope]

    @property
    def version(self) -> int:
        return self.events[-1].version


def _may_see(viewer: Viewer, customer_id: str) -> bool:
    return viewer.is_operator or customer_id == viewer.user_id


class OrderQueries:
    def __init__(
        self,
        read_models: ActiveReadModels,
        events: EventStore,
        snapshots: SnapshotStore | None = None,
        *,
        max_wait_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._read_models = read_models
        self._events = events
        self._temporal = TemporalOrders(events, snapshots)
        self._max_wait_seconds = max_wait_seconds
        self._clock = clock
        self._sleep = sleep

    def order(self, order_id: str, viewer: Viewer, *, min_version: int | None = None) -> OrderView:
        """The order view; with `min_version`, once it shows at least that version (waiting a
        little for the projection), else ViewNotCaughtUp."""
        wait = MAX_WAIT_SECONDS if self._max_wait_seconds is None else self._max_wait_seconds
        deadline = self._clock() + wait
        while True:
            view = self._visible(self._read_models.orders.get(order_id), viewer)
            if min_version is None or (view is not None and view.version >= min_version):
                break
            if self._clock() >= deadline:
                raise ViewNotCaughtUp(view.version if view else None, min_version)
            self._sleep(POLL_SECONDS)
        if view is None:
            raise NotFound(f"order {order_id} not found")
        return view

    def order_at(self, order_id: str, viewer: Viewer, point: PointInTime) -> OrderAtPoint:
        """The order as it was at a version or an instant, folded from the event store."""
        if isinstance(point, AtVersion):
            found = self._temporal.at_version(order_id, point.version)
        else:
            found = self._temporal.as_of(order_id, point.instant)
        view = self._visible(found.view if found else None, viewer)
        if found is None or view is None:
            raise NotFound(f"order {order_id} not found")
        if isinstance(point, AtVersion) and view.version < point.version:
            # A version the order has not reached is a resource that does not exist (yet), not bad input.
            raise NotFound(
                f"order {order_id} is at version {view.version}; it has no version {point.version}"
            )
        return found

    def history(self, order_id: str, viewer: Viewer) -> OrderHistory:
        """Every event of the order, in version order, each in the current schema of its type."""
        commits = self._events.read_commits(ORDER.stream_id(order_id))
        state = fold_commits(ORDER, Loaded.empty(ORDER), commits).state
        if state.status == "new" or not _may_see(viewer, state.customer_id):
            raise NotFound(f"order {order_id} not found")
        events = [in_current_schema(ORDER.events, envelope) for envelope in envelopes_of(commits)]
        return OrderHistory(order_id, events)

    def customer_orders(
        self, customer_id: str, viewer: Viewer, *, limit: int, cursor: str | None
    ) -> tuple[list[OrderView], str | None]:
        """A page of the customer's orders, newest first, and the cursor of the next page."""
        if not _may_see(viewer, customer_id):
            raise NotFound("customer not found")
        return self._read_models.orders.for_customer(customer_id, limit=limit, cursor=cursor)

    @staticmethod
    def _visible(view: OrderView | None, viewer: Viewer) -> OrderView | None:
        return view if view is not None and _may_see(viewer, view.customer_id) else None
