"""The naive baselines: what an event store and its projections cost without this design.

Real code, run on the same moto as ours, so the comparisons are measured, not assumed:

* ``NaiveEventStore``: one item per **event** (key ``stream_id``, ``version``), every envelope
  field on every item, a command's events written with one ``TransactWriteItems`` (a Put per
  event, each conditioned on ``attribute_not_exists(version)``), a stream loaded by querying
  every event. ``NaiveCommandService`` loads the whole stream before every command (no cache,
  no snapshots), decides, appends, and on a conflict loads again.
* ``NaiveProjector``: one ``UpdateItem`` per event per row it touches, in each of the five read
  models (the order view, the day's sales, each product's stock, the customer's summary, each
  product's sales). No batching, no coalescing, no reads. It stands for the request pattern:
  its counters are not guarded against redelivery and a cancellation only counts itself, so its
  rows are cheaper than exact ones would be.

Keep their tables small: moto's TransactWriteItems deep-copies the table on every call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from orders_core.application import CommandContext
from orders_core.domain.aggregate import AggregateType
from orders_core.domain.inventory import ReorderLevelSet, StockReceived
from orders_core.domain.orders import (
    InventoryReleased,
    InventoryReserved,
    ItemAdded,
    OrderCancelled,
    OrderPlaced,
    OrderShipped,
)
from orders_core.envelope import EventEnvelope
from orders_core.errors import ConcurrencyError
from orders_core.projections.base import ORDER_PREFIX, facts
from orders_core.tables import EVENTS

PAGE = 25


def events_table_request(name: str) -> dict[str, Any]:
    """The naive events table: the same keys as ours, no stream (nothing follows it here)."""
    request = EVENTS.create_table_request(name)
    request.pop("StreamSpecification", None)
    return request


def event_item(envelope: EventEnvelope) -> dict[str, Any]:
    return {
        "stream_id": {"S": envelope.stream_id},
        "version": {"N": str(envelope.version)},
        "event_id": {"S": envelope.event_id},
        "type": {"S": envelope.type},
        "schema_version": {"N": str(envelope.schema_version)},
        "data": {"S": json.dumps(dict(envelope.data), separators=(",", ":"))},
        "recorded_at": {"S": envelope.recorded_at},
        "correlation_id": {"S": envelope.correlation_id},
        "causation_id": {"S": envelope.causation_id},
        "command_id": {"S": envelope.command_id},
        "actor": {"S": envelope.actor},
    }


def item_event(item: Mapping[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        event_id=item["event_id"]["S"],
        stream_id=item["stream_id"]["S"],
        version=int(item["version"]["N"]),
        type=item["type"]["S"],
        schema_version=int(item["schema_version"]["N"]),
        data=json.loads(item["data"]["S"]),
        recorded_at=item["recorded_at"]["S"],
        correlation_id=item["correlation_id"]["S"],
        causation_id=item["causation_id"]["S"],
        command_id=item["command_id"]["S"],
        actor=item["actor"]["S"],
    )


class NaiveEventStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def append(self, envelopes: Sequence[EventEnvelope]) -> None:
        """All of a command's events in one transaction; ConcurrencyError if any version is taken."""
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": event_item(envelope),
                            "ConditionExpression": "attribute_not_exists(version)",
                        }
                    }
                    for envelope in envelopes
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise ConcurrencyError(envelopes[0].stream_id, envelopes[0].version - 1) from exc
            raise

    def read_events(self, stream_id: str) -> list[EventEnvelope]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "stream_id = :s",
            "ExpressionAttributeValues": {":s": {"S": stream_id}},
            "ConsistentRead": True,
        }
        events: list[EventEnvelope] = []
        while True:
            page = self._client.query(**request)
            events.extend(item_event(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return events
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def seed(self, envelopes: Iterable[EventEnvelope]) -> None:
        """Set-up only (not measured): write a history with BatchWriteItem, no transactions."""
        items = [{"PutRequest": {"Item": event_item(envelope)}} for envelope in envelopes]
        for start in range(0, len(items), PAGE):
            pending: dict[str, Any] = {self._table: items[start : start + PAGE]}
            while pending:
                pending = dict(
                    self._client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                )


@dataclass(frozen=True)
class NaiveResult:
    version: int
    attempts: int
    replayed: bool = False


class NaiveCommandService:
    """Load every event, decide, write one item per event in a transaction; reload on conflict."""

    def __init__(self, store: NaiveEventStore, max_attempts: int = 5) -> None:
        self.store = store
        self._max_attempts = max_attempts

    def load(self, aggregate: AggregateType[Any, Any], aggregate_id: str) -> tuple[Any, list[EventEnvelope]]:
        envelopes = self.store.read_events(aggregate.stream_id(aggregate_id))
        state = aggregate.initial_state
        for envelope in envelopes:
            state = aggregate.evolve(
                state, aggregate.events.load(envelope.type, envelope.data, envelope.schema_version)
            )
        return state, envelopes

    def execute(
        self,
        aggregate: AggregateType[Any, Any],
        aggregate_id: str,
        command: Any,
        context: CommandContext,
        *,
        between_load_and_append: Callable[[], None] | None = None,
    ) -> NaiveResult:
        stream_id = aggregate.stream_id(aggregate_id)
        for attempt in range(1, self._max_attempts + 1):
            state, history = self.load(aggregate, aggregate_id)
            version = history[-1].version if history else 0
            if any(e.command_id == context.command_id for e in history):
                return NaiveResult(version, attempt, replayed=True)
            decided = aggregate.decide(state, command)
            envelopes = [
                EventEnvelope(
                    event_id=new.event_id,
                    stream_id=stream_id,
                    version=version + offset,
                    type=new.type,
                    schema_version=new.schema_version,
                    data=new.data,
                    recorded_at=context.recorded_at,
                    correlation_id=context.correlation_id,
                    causation_id=context.causation_id or context.command_id,
                    command_id=context.command_id,
                    actor=context.actor,
                )
                for offset, new in enumerate((event.to_new_event() for event in decided), start=1)
            ]
            if between_load_and_append is not None:
                between_load_and_append()
                between_load_and_append = None
            try:
                self.store.append(envelopes)
            except ConcurrencyError:
                continue
            return NaiveResult(version + len(envelopes), attempt)
        raise ConcurrencyError(stream_id, -1)


# -- projections ------------------------------------------------------------------------------------


def read_table_request(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    }


@dataclass(frozen=True)
class Update:
    """One UpdateItem: the row, the expression and its values."""

    pk: str
    expression: str
    values: Mapping[str, Any]
    condition: str | None = None


def _n(value: Decimal | int) -> dict[str, str]:
    return {"N": str(value)}


def order_view_updates(envelope: EventEnvelope, event: Any) -> list[Update]:
    """customer_orders, naively: every event of an order moves its row one version forward."""
    pk = f"order#{envelope.stream_id.removeprefix(ORDER_PREFIX)}"
    previous = {":prev": _n(envelope.version - 1), ":v": _n(envelope.version)}
    if isinstance(event, OrderPlaced):
        lines = [_line(i.product_id, i.quantity, i.unit_price) for i in event.items]
        expression = (
            "SET #customer_id = :c, #status = :st, #items = :items, #total = :t, "
            "#placed_at = :at, #version = :v"
        )
        values = {
            ":c": {"S": event.customer_id},
            ":st": {"S": "placed"},
            ":items": {"L": lines},
            ":t": _n(event.total_amount),
            ":at": {"S": envelope.recorded_at},
            ":v": _n(envelope.version),
        }
        return [Update(pk, expression, values, "attribute_not_exists(#pk)")]
    guard = "#version = :prev"
    if isinstance(event, ItemAdded):
        line = _line(event.product_id, event.quantity, event.unit_price)
        expression = "SET #items = list_append(#items, :line), #version = :v ADD #total :t"
        return [
            Update(pk, expression, {**previous, ":line": {"L": [line]}, ":t": _n(event.line_total)}, guard)
        ]
    if isinstance(event, OrderCancelled):
        return [
            Update(pk, "SET #status = :st, #version = :v", {**previous, ":st": {"S": "cancelled"}}, guard)
        ]
    if isinstance(event, OrderShipped):
        values = {**previous, ":st": {"S": "shipped"}, ":tn": {"S": event.tracking_number}}
        return [Update(pk, "SET #status = :st, #tracking_number = :tn, #version = :v", values, guard)]
    return [Update(pk, "SET #version = :v", previous, guard)]


def _line(product_id: str, quantity: int, unit_price: Decimal) -> dict[str, Any]:
    return {"M": {"product_id": {"S": product_id}, "quantity": _n(quantity), "unit_price": _n(unit_price)}}


def sales_updates(envelope: EventEnvelope, event: Any, day: str) -> list[Update]:
    pk = f"day#{day}"
    if isinstance(event, OrderPlaced):
        return [
            Update(pk, "ADD #total_orders :one, #revenue :r", {":one": _n(1), ":r": _n(event.total_amount)})
        ]
    if isinstance(event, ItemAdded):
        return [Update(pk, "ADD #revenue :r", {":r": _n(event.line_total)})]
    if isinstance(event, OrderCancelled):
        return [Update(pk, "ADD #cancelled_orders :one", {":one": _n(1)})]
    return []


def inventory_updates(envelope: EventEnvelope, event: Any) -> list[Update]:
    def row(product: str, expression: str, **values: int) -> Update:
        return Update(f"product#{product}", expression, {f":{k}": _n(v) for k, v in values.items()})

    if isinstance(event, InventoryReserved):
        return [row(i.product_id, "ADD #reserved :q", q=i.quantity) for i in event.items]
    if isinstance(event, InventoryReleased):
        return [row(i.product_id, "ADD #reserved :q", q=-i.quantity) for i in event.items]
    if isinstance(event, OrderShipped):
        return [
            row(i.product_id, "ADD #reserved :q, #shipped :s", q=-i.quantity, s=i.quantity)
            for i in event.items
        ]
    if isinstance(event, StockReceived):
        return [row(event.product_id, "ADD #received :q", q=event.quantity)]
    if isinstance(event, ReorderLevelSet):
        return [row(event.product_id, "SET #reorder_level = :l", l=event.reorder_level)]
    return []


def summary_updates(envelope: EventEnvelope, event: Any, customer: str) -> list[Update]:
    pk = f"customer#{customer}"
    if isinstance(event, OrderPlaced):
        values = {":one": _n(1), ":t": _n(event.total_amount)}
        return [Update(pk, "ADD #order_count :one, #open_orders :one, #spend :t", values)]
    if isinstance(event, ItemAdded):
        return [Update(pk, "ADD #spend :t", {":t": _n(event.line_total)})]
    if isinstance(event, OrderShipped | OrderCancelled):
        return [Update(pk, "ADD #open_orders :minus", {":minus": _n(-1)})]
    return []


def product_sales_updates(envelope: EventEnvelope, event: Any, products: Sequence[str]) -> list[Update]:
    """product_sales, naively: a row per product; `products` are the order's (for a cancellation)."""

    def row(product: str, expression: str, values: Mapping[str, Any]) -> Update:
        return Update(f"product#{product}", expression, values)

    if isinstance(event, OrderPlaced):
        units: dict[str, int] = {}
        revenue: dict[str, Decimal] = {}
        for line in event.items:
            units[line.product_id] = units.get(line.product_id, 0) + line.quantity
            revenue[line.product_id] = revenue.get(line.product_id, Decimal(0)) + line.line_total
        expression = "ADD #units :u, #revenue :r, #order_count :one"
        return [row(p, expression, {":u": _n(units[p]), ":r": _n(revenue[p]), ":one": _n(1)}) for p in units]
    if isinstance(event, ItemAdded):
        values = {":u": _n(event.quantity), ":r": _n(event.line_total)}
        return [row(event.product_id, "ADD #units :u, #revenue :r", values)]
    if isinstance(event, OrderCancelled):
        return [row(p, "ADD #cancelled_orders :one", {":one": _n(1)}) for p in products]
    return []


class NaiveProjector:
    """One UpdateItem per event per row touched, for each read model, straight from the records.

    The day of an order, its customer and its products come from its OrderPlaced (and ItemAdded),
    remembered in memory (a naive Lambda would read them; here they are free, which favours the
    baseline)."""

    def __init__(self, client: Any, tables: Mapping[str, str]) -> None:
        self._client = client
        self._tables = dict(tables)  # read model name -> naive table
        self._orders: dict[str, tuple[str, str]] = {}  # stream -> (day, customer)
        self._products: dict[str, list[str]] = {}  # stream -> the order's products, first seen first
        self.updates: dict[str, int] = dict.fromkeys(self._tables, 0)

    def process(self, commits: Sequence[Any]) -> None:
        for commit in commits:
            for fact in facts(commit):
                envelope, event = fact.envelope, fact.event
                products = self._products.setdefault(envelope.stream_id, [])
                if isinstance(event, OrderPlaced):
                    self._orders[envelope.stream_id] = (envelope.recorded_at[:10], event.customer_id)
                    products.extend(dict.fromkeys(i.product_id for i in event.items))
                if isinstance(event, ItemAdded) and event.product_id not in products:
                    products.append(event.product_id)
                day, customer = self._orders.get(envelope.stream_id, ("", ""))
                planned = {
                    "customer_orders": order_view_updates(envelope, event)
                    if envelope.stream_id.startswith(ORDER_PREFIX)
                    else [],
                    "sales_analytics": sales_updates(envelope, event, day) if day else [],
                    "inventory": inventory_updates(envelope, event),
                    "customer_summary": summary_updates(envelope, event, customer) if customer else [],
                    "product_sales": product_sales_updates(envelope, event, products),
                }
                for name, updates in planned.items():
                    if name in self._tables:
                        for update in updates:
                            self._apply(name, update)

    def _apply(self, name: str, update: Update) -> None:
        request: dict[str, Any] = {
            "TableName": self._tables[name],
            "Key": {"pk": {"S": update.pk}, "sk": {"S": "row"}},
            "UpdateExpression": update.expression,
            "ExpressionAttributeValues": dict(update.values),
        }
        if update.condition:
            request["ConditionExpression"] = update.condition
        # Every attribute by placeholder: `items`, `status`, `total` are reserved words.
        names = re.findall(r"#(\w+)", update.expression + " " + (update.condition or ""))
        request["ExpressionAttributeNames"] = {f"#{name}": name for name in names}
        self.updates[name] += 1
        try:
            self._client.update_item(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
