"""Requests and capacity units per boto3 client, by DynamoDB's published rules.

moto's ConsumedCapacity is fake (a put always reports 1.0, transactions report nothing), so the
benchmarks count what the bill counts themselves: every request a client sends (a botocore
``before-call`` hook, as ``tests/support/counting.py`` does), and the capacity units DynamoDB
would charge for it, computed from item sizes (``orders_core.store.codec.item_size``):

* **Writes** (on-demand write request units = provisioned WCU): ``ceil(size / 1 KB)`` per item,
  at least 1, where size is the larger of the item before and after the write. A transaction
  writes every item twice (prepare and commit): 2x. A conditional write whose condition fails
  still consumes ``ceil(existing size / 1 KB)``, at least 1. Each global secondary index the
  item is (or was) in costs one more write of the projected item (two when the index key
  changes: a delete and a put).
* **Reads**: ``ceil(size / 4 KB)`` per strongly consistent read, half for an eventually
  consistent one, at least one unit even when nothing is found. GetItem and BatchGetItem round
  up per item; Query and Scan add up the sizes of the items they return and round up once per
  request (page). Index queries are always eventually consistent. A transactional read is 2x.

Assumptions where the rules are silent or moto cannot tell: a cancelled transaction is charged
its prepare phase (1x per item, at the larger of the existing and the new size); reads with a
ProjectionExpression are costed on the attributes returned (DynamoDB charges the whole item; no
path measured here projects). Sizes of items before and after a write are looked up through a
second, uncounted client on the same endpoint (GetItem on the key), so the lookups never show
up in the counts. Data-plane operations only: control-plane calls (CreateTable, DescribeTable)
are counted as requests but cost no capacity units.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orders_core.store.codec import item_size as _commit_item_size

KB = 1024
WRITE_UNIT_BYTES = 1 * KB
READ_UNIT_BYTES = 4 * KB

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})

Item = Mapping[str, Any]


# -- the rules, as pure functions ------------------------------------------------------------------


def _value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("SS", "NS", "BS"):
        # A set is the sum of its elements, each sized as its scalar type.
        return sum(_value_bytes({kind[0]: element}) for element in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + _value_bytes(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in inner)
    return _commit_item_size({"": dict(value)})  # S, N, B, BOOL, NULL: the event store's own rules


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for an item: `orders_core.store.codec.item_size`, extended to sets
    (the read models' `applied` string sets), which the event store never writes."""
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write units of one standard write of an item of `size` bytes (at least one)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, *, consistent: bool) -> float:
    """Read units of one read returning `size` bytes (one item, or one Query/Scan page)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def index_write_units(before: Item | None, after: Item | None, index_keys: Sequence[str]) -> int:
    """Write units a global secondary index (projection ALL) adds to one table write."""
    had = before is not None and all(name in before for name in index_keys)
    has = after is not None and all(name in after for name in index_keys)
    if had and has:
        assert before is not None and after is not None
        if all(before[name] == after[name] for name in index_keys):
            return write_units(max(item_size(before), item_size(after)))
        return write_units(item_size(before)) + write_units(item_size(after))  # delete + put
    if has:
        assert after is not None
        return write_units(item_size(after))
    if had:
        assert before is not None
        return write_units(item_size(before))
    return 0


# -- what one client spent ------------------------------------------------------------------------


@dataclass
class Cost:
    """What a client sent and what DynamoDB would charge for it."""

    requests: Counter[str] = field(default_factory=Counter)
    write_units: float = 0.0
    read_units: float = 0.0
    bytes_written: int = 0
    bytes_read: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def write_requests(self) -> int:
        return sum(n for name, n in self.requests.items() if name in WRITE_OPERATIONS)

    @property
    def read_requests(self) -> int:
        return sum(n for name, n in self.requests.items() if name in READ_OPERATIONS)

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.requests + other.requests,
            self.write_units + other.write_units,
            self.read_units + other.read_units,
            self.bytes_written + other.bytes_written,
            self.bytes_read + other.bytes_read,
        )

    def __sub__(self, other: Cost) -> Cost:
        requests = Counter(self.requests)
        requests.subtract(other.requests)
        return Cost(
            +requests,
            self.write_units - other.write_units,
            self.read_units - other.read_units,
            self.bytes_written - other.bytes_written,
            self.bytes_read - other.bytes_read,
        )

    def copy(self) -> Cost:
        return Cost(
            Counter(self.requests), self.write_units, self.read_units, self.bytes_written, self.bytes_read
        )

    def scaled(self, factor: float) -> dict[str, Any]:
        """The figures times `factor` (e.g. per 100 records), as JSON-ready numbers."""
        return {
            "requests": {name: round(n * factor, 2) for name, n in sorted(self.requests.items())},
            "total_requests": round(self.total_requests * factor, 2),
            "write_requests": round(self.write_requests * factor, 2),
            "read_requests": round(self.read_requests * factor, 2),
            "write_units": round(self.write_units * factor, 2),
            "read_units": round(self.read_units * factor, 2),
            "bytes_written": round(self.bytes_written * factor),
            "bytes_read": round(self.bytes_read * factor),
        }

    def to_json(self) -> dict[str, Any]:
        return self.scaled(1)


@dataclass(frozen=True)
class _TableShape:
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...]  # key attributes of each global secondary index


class Meter:
    """Attach to a DynamoDB client: counts its requests and prices them.

    `lookup` is another client on the same endpoint, used to read items before and after writes
    (their sizes decide the write units) and to describe tables; its requests are not counted.
    Thread-safe: the local pollers and concurrent clients may share a meter.
    """

    def __init__(self, client: Any, lookup: Any) -> None:
        self.cost = Cost()
        self._lookup = lookup
        self._shapes: dict[str, _TableShape] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._remember_params)
        events.register("before-call.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)

    def reset(self) -> Cost:
        """The cost so far; starts counting from zero."""
        with self._lock:
            spent, self.cost = self.cost, Cost()
        return spent

    def snapshot(self) -> Cost:
        with self._lock:
            return self.cost.copy()

    # -- hooks -------------------------------------------------------------------------------------

    def _remember_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.cost.requests[model.name] += 1
        params = context.get("bench_params", {})
        context["bench_before"] = self._items_before(model.name, params)

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context.get("bench_params", {})
        failed = "Error" in parsed and bool(parsed["Error"])
        error_code = str(parsed.get("Error", {}).get("Code", "")) if failed else ""
        spent = self._price(model.name, params, parsed, context.get("bench_before", {}), error_code)
        with self._lock:
            self.cost = self.cost + spent

    # -- pricing -----------------------------------------------------------------------------------

    def _shape(self, table: str) -> _TableShape:
        if table not in self._shapes:
            description = self._lookup.describe_table(TableName=table)["Table"]
            key = tuple(k["AttributeName"] for k in description["KeySchema"])
            indexes = tuple(
                tuple(k["AttributeName"] for k in index["KeySchema"])
                for index in description.get("GlobalSecondaryIndexes", [])
            )
            self._shapes[table] = _TableShape(key, indexes)
        return self._shapes[table]

    def _get(self, table: str, key: Item) -> dict[str, Any] | None:
        reply = self._lookup.get_item(TableName=table, Key=dict(key), ConsistentRead=True)
        item = reply.get("Item")
        return dict(item) if item else None

    def _key_of(self, table: str, item: Item) -> dict[str, Any]:
        return {name: item[name] for name in self._shape(table).key}

    def _write_targets(self, operation: str, params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(table, key) of every item a write request touches, in request order."""
        if operation == "PutItem":
            return [(params["TableName"], self._key_of(params["TableName"], params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], dict(params["Key"]))]
        targets: list[tuple[str, dict[str, Any]]] = []
        if operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        targets.append((table, self._key_of(table, request["PutRequest"]["Item"])))
                    else:
                        targets.append((table, dict(request["DeleteRequest"]["Key"])))
        if operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, op),) = entry.items()
                key = self._key_of(op["TableName"], op["Item"]) if kind == "Put" else dict(op["Key"])
                targets.append((op["TableName"], key))
        return targets

    def _items_before(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if operation not in WRITE_OPERATIONS:
            return {}
        return {
            _target_id(table, key): self._get(table, key)
            for table, key in self._write_targets(operation, params)
        }

    def _price(
        self,
        operation: str,
        params: Mapping[str, Any],
        parsed: Mapping[str, Any],
        before: Mapping[str, Any],
        error_code: str,
    ) -> Cost:
        spent = Cost()
        if operation in WRITE_OPERATIONS:
            self._price_writes(operation, params, parsed, before, error_code, spent)
        elif operation in READ_OPERATIONS and not error_code:
            self._price_reads(operation, params, parsed, spent)
        return spent

    def _price_writes(
        self,
        operation: str,
        params: Mapping[str, Any],
        parsed: Mapping[str, Any],
        before: Mapping[str, Any],
        error_code: str,
        spent: Cost,
    ) -> None:
        targets = self._write_targets(operation, params)
        unprocessed = _unprocessed_targets(self, parsed) if operation == "BatchWriteItem" else set()
        cancelled = error_code == "TransactionCanceledException"
        for index, (table, key) in enumerate(targets):
            target = _target_id(table, key)
            if target in unprocessed:
                continue
            old = before.get(target)
            old_size = item_size(old) if old else 0
            if error_code and not cancelled:
                # A failed condition still reads the item it checked: ceil(existing / 1 KB), >= 1.
                spent.write_units += write_units(old_size)
                continue
            new = self._new_item(operation, params, index, table, key)
            new_size = item_size(new) if new else 0
            units = write_units(max(old_size, new_size))
            if cancelled:
                spent.write_units += units
                continue
            factor = 2 if operation == "TransactWriteItems" else 1
            spent.write_units += factor * units
            spent.bytes_written += new_size
            for index_keys in self._shape(table).indexes:
                spent.write_units += factor * index_write_units(old, new, index_keys)

    def _new_item(
        self, operation: str, params: Mapping[str, Any], index: int, table: str, key: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        if operation == "PutItem":
            return dict(params["Item"])
        if operation == "DeleteItem":
            return None
        if operation == "UpdateItem":
            return self._get(table, key)  # after the update
        if operation == "BatchWriteItem":
            requests = [r for rs in params["RequestItems"].values() for r in rs]
            request = requests[index]
            return dict(request["PutRequest"]["Item"]) if "PutRequest" in request else None
        entry = params["TransactItems"][index]
        ((kind, op),) = entry.items()
        if kind == "Put":
            return dict(op["Item"])
        if kind == "Delete":
            return None
        return self._get(table, key)  # Update or ConditionCheck: the item as it is now

    def _price_reads(
        self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any], spent: Cost
    ) -> None:
        if operation == "GetItem":
            size = item_size(parsed["Item"]) if parsed.get("Item") else 0
            spent.read_units += read_units(size, consistent=bool(params.get("ConsistentRead")))
            spent.bytes_read += size
        elif operation in ("Query", "Scan"):
            size = sum(item_size(item) for item in parsed.get("Items", []))
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            spent.read_units += read_units(size, consistent=consistent)
            spent.bytes_read += size
        elif operation == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                found = {
                    _target_id(table, self._key_of(table, item)): item_size(item)
                    for item in parsed.get("Responses", {}).get(table, [])
                }
                unprocessed = {
                    _target_id(table, dict(key))
                    for key in parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                }
                for key in request["Keys"]:
                    target = _target_id(table, dict(key))
                    if target in unprocessed:
                        continue
                    size = found.get(target, 0)
                    spent.read_units += read_units(size, consistent=bool(request.get("ConsistentRead")))
                    spent.bytes_read += size
        elif operation == "TransactGetItems":
            for response in parsed.get("Responses", []):
                size = item_size(response["Item"]) if response.get("Item") else 0
                spent.read_units += 2 * read_units(size, consistent=True)
                spent.bytes_read += size


def _target_id(table: str, key: Mapping[str, Any]) -> str:
    return table + "\x00" + json.dumps(key, sort_keys=True)


def _unprocessed_targets(meter: Meter, parsed: Mapping[str, Any]) -> set[str]:
    targets = set()
    for table, requests in (parsed.get("UnprocessedItems") or {}).items():
        for request in requests:
            if "PutRequest" in request:
                key = meter._key_of(table, request["PutRequest"]["Item"])
            else:
                key = dict(request["DeleteRequest"]["Key"])
            targets.add(_target_id(table, key))
    return targets


def cost_from_json(data: Mapping[str, Any]) -> Cost:
    return Cost(
        Counter({name: int(n) for name, n in data.get("requests", {}).items()}),
        float(data.get("write_units", 0)),
        float(data.get("read_units", 0)),
        int(data.get("bytes_written", 0)),
        int(data.get("bytes_read", 0)),
    )


__all__ = [
    "READ_OPERATIONS",
    "WRITE_OPERATIONS",
    "Cost",
    "Meter",
    "cost_from_json",
    "index_write_units",
    "item_size",
    "read_units",
    "write_units",
]
