"""moto's Query on a table's own key reads one partition, as DynamoDB does.

moto answers a Query on a table (not an index) by listing every item of the table, sorted, and
keeping the partition asked for: each Query costs in proportion to the whole table (LOCAL-AWS.md:
255 queries/s at 100 items, 10/s at 10k). With several instances per function an instance reads
an aggregate it has not met yet with a Query, and on an events table of a few thousand commits
that sort held moto's process, and so every client's requests, for tens of milliseconds.

The patch: while a thread runs a Query on a table's own key, that table's ``all_items()`` lists
the partition asked for only. The rest of moto's Query (key conditions, sorting by range key,
paging, filters, projections) runs unchanged on it. Scans, index queries and other threads see
every item as before.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

_MARKER = "__orders_local_partition_queries__"
_INSTALL_LOCK = threading.Lock()
_querying = threading.local()  # .table and .hash_key during a Query on a table's own key


def install_partition_queries() -> None:
    """Idempotent; for the local run's moto (the process that serves it)."""
    with _INSTALL_LOCK:
        if getattr(Table.query, _MARKER, False):
            return
        original_query = Table.query
        original_all_items = Table.all_items

        @functools.wraps(original_query)
        def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
            index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
            if index_name or hash_key is None:
                return original_query(self, hash_key, *args, **kwargs)
            _querying.table, _querying.hash_key = self, hash_key
            try:
                return original_query(self, hash_key, *args, **kwargs)
            finally:
                _querying.table = _querying.hash_key = None

        @functools.wraps(original_all_items)
        def all_items(self: Table) -> list[Any]:
            if getattr(_querying, "table", None) is not self:
                return original_all_items(self)
            # .get(): the table's items are a defaultdict, and a read must not add a partition.
            partition = self.items.get(_querying.hash_key)
            if partition is None:
                return []
            if isinstance(partition, Item):  # a table without a range key: one item per partition
                return [partition]
            return list(partition.values())

        setattr(query, _MARKER, True)
        Table.query = query  # type: ignore[method-assign]
        Table.all_items = all_items  # type: ignore[method-assign]


def partition_queries_installed() -> bool:
    return bool(getattr(Table.query, _MARKER, False))
