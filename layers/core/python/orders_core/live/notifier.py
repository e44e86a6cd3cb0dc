"""From changes of the read models' rows to the messages live clients receive.

Fed by the streams of the read-model tables themselves (ADR 14), so a push never arrives before
the view shows what it announces: the row is written before its stream record exists.

- An order view row (`customer_orders`, sort key `view`) whose version grew tells the order's
  owner `order.updated`. A rewrite at the same version (a redelivered commit) tells nobody.
- A product's inventory is summed over shard rows (`inventory`, sort key `summary`), so one
  shard's change cannot say whether the product is low: the product's summary is read as the
  query side reads it, and whether it is low is recorded on its alert marker as of the summary's
  revision (`AlertMarkers`). The change that made the alert hold pushes `inventory.low` to the
  operators; concurrent changes of other shards, and later changes while it still holds, do not.
- Only the generation readers use counts: a rebuild's new generation is written before readers
  switch to it, and a retired one is deleted; neither is news.

Delivery is at least once: a push that fails fails its change, which is delivered again with the
ones after it (pushed again to whoever got them already: clients de-duplicate by order and
version). A connection that is gone is forgotten.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orders_core import telemetry
from orders_core.live import messages
from orders_core.live.port import AlertMarkers, ConnectionStore, Pusher, PushOutcome, Reachable
from orders_core.projections import customer_orders, inventory
from orders_core.projections.customer_orders import OrderView
from orders_core.projections.deltas import REVISION, SHARD_SK

Row = Mapping[str, Any]
SERVICE = "orders-live-notifier"
INVENTORY_LOW_ALERT = "inventory.low"
# Its metrics (EMF, dimension service), per invocation: what it announced and to how many.
UPDATES_ANNOUNCED = "UpdatesAnnounced"  # order versions told to their owner's connections
ALERTS_RAISED = "AlertsRaised"  # inventory.low alerts told to the operators' connections
MESSAGES_DELIVERED = "MessagesDelivered"  # pushes a connection took
CONNECTIONS_GONE = "ConnectionsGone"  # pushes answered "gone": the client had left
CHANGES_NOT_PUSHED = "ChangesNotPushed"  # records given back to the stream, delivered again
# A connection is stored by its $connect route, before API Gateway completes the handshake, and
# until then a push to it answers "gone". So a connection this young that answers "gone" is kept
# (its $disconnect, a later push, or TTL removes it if it really is gone); the client reads what
# it missed with one GET once connected.
CONNECT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class RowChange:
    """One write to a read-model row, as its table's stream reports it."""

    read_model: str  # the registered read model whose table changed
    trigger: str  # the stream record's id: the same on every delivery of that record
    key: tuple[str, str]  # (pk, sk)
    old: Row | None  # None: the row is new
    new: Row | None  # None: the row was deleted


@dataclass
class PushTally:
    """What one batch told, and to how many connections (the notifier's metrics)."""

    updates_announced: int = 0
    alerts_raised: int = 0
    messages_delivered: int = 0
    connections_gone: int = 0


def report(tally: PushTally, changes_not_pushed: int) -> None:
    """The batch's metrics, as one EMF line (nothing when it counted nothing)."""
    with telemetry.invocation_metrics(SERVICE) as metrics:
        for name, value in (
            (UPDATES_ANNOUNCED, tally.updates_announced),
            (ALERTS_RAISED, tally.alerts_raised),
            (MESSAGES_DELIVERED, tally.messages_delivered),
            (CONNECTIONS_GONE, tally.connections_gone),
            (CHANGES_NOT_PUSHED, changes_not_pushed),
        ):
            if value:
                metrics.count(name, value)


def _generation_and_entity(pk: str) -> tuple[int, str] | None:
    generation, _, entity = pk.partition("#")
    return (int(generation), entity) if generation.isdigit() and entity else None


def _number(row: Row | None, name: str) -> int:
    return int(row.get(name, 0)) if row else 0


class LiveNotifier:
    def __init__(
        self,
        *,
        connections: ConnectionStore,
        alerts: AlertMarkers,
        pusher: Pusher,
        active_generation: Callable[[str], int],
        product_summary: Callable[[str], Mapping[str, Any] | None],
        operators_group: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`active_generation(read model)`: the generation readers use (cached briefly by the
        caller); `product_summary(product id)`: the product's inventory as the query side shows it."""
        self._connections = connections
        self._alerts = alerts
        self._pusher = pusher
        self._active_generation = active_generation
        self._product_summary = product_summary
        self._operators_group = operators_group
        self._clock = clock

    def notify(self, changes: Sequence[RowChange], tally: PushTally | None = None) -> dict[int, Exception]:
        """Push what the changes announce, in order; the positions that failed, with their error.
        ``tally``: counts what was told, to how many.

        The first failure fails every change after it too: they are delivered again after it (a
        stream is retried from its first failed record), so pushing them now would only double them."""
        batch = _Batch(self._connections, int(self._clock()), tally or PushTally())
        for position, change in enumerate(changes):
            try:
                self._notify(change, batch)
            except Exception as error:  # reported per record; the stream retries from the first one
                return {later: error for later in range(position, len(changes))}
        return {}

    def _notify(self, change: RowChange, batch: _Batch) -> None:
        found = _generation_and_entity(change.key[0])
        if found is None or change.new is None:
            return  # not a read-model row, or a deletion (a retired generation)
        generation, entity = found
        if generation != self._active_generation(change.read_model):
            return
        if change.read_model == customer_orders.NAME and change.key[1] == customer_orders.VIEW:
            self._order_changed(change, batch)
        elif change.read_model == inventory.NAME and change.key[1] == SHARD_SK:
            self._stock_changed(entity.rpartition("#")[0], change, batch)

    def _order_changed(self, change: RowChange, batch: _Batch) -> None:
        assert change.new is not None
        if _number(change.new, "version") <= _number(change.old, "version"):
            return  # the same version written again: nothing new to tell
        view = OrderView.from_json(json.loads(change.new["doc"]))
        message = messages.encode(messages.order_updated(view))
        self._push(batch.of_subject(view.customer_id), message, batch)
        batch.tally.updates_announced += 1

    def _stock_changed(self, product_id: str, change: RowChange, batch: _Batch) -> None:
        if not product_id or _number(change.new, REVISION) <= _number(change.old, REVISION):
            return
        summary = batch.summaries.get(product_id)
        if summary is None:
            summary = self._product_summary(product_id)
            if summary is None:
                return
            batch.summaries[product_id] = summary  # one read per product per batch
        raised = self._alerts.record(
            f"{INVENTORY_LOW_ALERT}#{product_id}",
            holds=bool(summary["needs_reorder"]),
            revision=int(summary["revision"]),
            trigger=change.trigger,
        )
        if raised:
            message = messages.encode(messages.inventory_low(summary))
            self._push(batch.of_group(self._operators_group), message, batch)
            batch.tally.alerts_raised += 1

    def _push(self, recipients: Sequence[Reachable], message: bytes, batch: _Batch) -> None:
        for recipient in list(recipients):
            if self._pusher.push(recipient.connection_id, message) is PushOutcome.DELIVERED:
                batch.tally.messages_delivered += 1
                continue
            batch.tally.connections_gone += 1
            batch.forget(recipient)
            if batch.now - recipient.opened_at >= CONNECT_GRACE_SECONDS:
                self._connections.remove(recipient.connection_id)


class _Batch:
    """What one batch has looked up already (connections by subject and group, product summaries),
    and what it told."""

    def __init__(self, connections: ConnectionStore, now: int, tally: PushTally) -> None:
        self._connections = connections
        self.now = now
        self.tally = tally
        self._subjects: dict[str, list[Reachable]] = {}
        self._groups: dict[str, list[Reachable]] = {}
        self.summaries: dict[str, Mapping[str, Any]] = {}

    def of_subject(self, subject: str) -> list[Reachable]:
        if subject not in self._subjects:
            self._subjects[subject] = list(self._connections.of_subject(subject, now=self.now))
        return self._subjects[subject]

    def of_group(self, group: str) -> list[Reachable]:
        if group not in self._groups:
            self._groups[group] = list(self._connections.of_group(group, now=self.now))
        return self._groups[group]

    def forget(self, recipient: Reachable) -> None:
        """Not pushed to again in this batch: it answered "gone"."""
        for found in (*self._subjects.values(), *self._groups.values()):
            if recipient in found:
                found.remove(recipient)
