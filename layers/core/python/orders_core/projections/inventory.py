"""Inventory: one row per product, from stock received and every order's reservations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orders_core.domain.inventory import ReorderLevelSet, StockReceived
from orders_core.domain.orders import InventoryReleased, InventoryReserved, OrderShipped
from orders_core.envelope import Commit
from orders_core.projections.base import ORDER_PREFIX, PRODUCT_PREFIX, Fact, facts, fail_all
from orders_core.projections.contributions import (
    SUMMARY,
    Contribution,
    SummarizedPartitions,
)
from orders_core.readmodels.port import Row

NAME = "inventory"
STOCK, REORDER = "stock", "reorder"


def contributions(fact: Fact) -> dict[str, Contribution]:
    """The pure projection of one event: what it adds to each product it names."""
    event = fact.event
    result: dict[str, Contribution] = defaultdict(Contribution)
    if isinstance(event, InventoryReserved):
        for item in event.items:
            result[item.product_id].bump("reserved", item.quantity)
    elif isinstance(event, InventoryReleased):
        for item in event.items:
            result[item.product_id].bump("reserved", -item.quantity)
    elif isinstance(event, OrderShipped):
        for item in event.items:
            result[item.product_id].bump("reserved", -item.quantity)
            result[item.product_id].bump("shipped", item.quantity)
    elif isinstance(event, StockReceived):
        result[event.product_id].bump("received", event.quantity)
    return result


def summarize(product_id: str, rows: Sequence[Row]) -> dict[str, Any]:
    parts = [row for row in rows if row["sk"] not in (SUMMARY, REORDER)]
    received = sum(int(row.get("received", 0)) for row in parts)
    shipped = sum(int(row.get("shipped", 0)) for row in parts)
    reserved = sum(int(row.get("reserved", 0)) for row in parts)
    reorder_level = next((int(row["reorder_level"]) for row in rows if row["sk"] == REORDER), 0)
    on_hand = received - shipped
    available = on_hand - reserved
    return {
        "product_id": product_id,
        "on_hand": on_hand,
        "reserved_quantity": reserved,
        "available_quantity": available,
        "reorder_level": reorder_level,
        "needs_reorder": available <= reorder_level,
    }


@dataclass
class LatestReorderLevel:
    """The newest ReorderLevelSet of a product in a batch, and every commit that set one."""

    version: int
    level: int
    commits: list[tuple[int, Commit]] = field(default_factory=list)


class Inventory(SummarizedPartitions):
    name = NAME

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        failures: dict[int, Exception] = {}
        # (product, row kind) -> commit version -> contribution, and who contributed
        parts: dict[tuple[str, str], dict[int, Contribution]] = defaultdict(dict)
        members: dict[tuple[str, str], list[tuple[int, Commit]]] = defaultdict(list)
        levels: dict[str, LatestReorderLevel] = {}
        for position, commit in enumerate(commits):
            if commit.stream_id.startswith(ORDER_PREFIX):
                row_kind = f"order#{commit.stream_id.removeprefix(ORDER_PREFIX)}"
            elif commit.stream_id.startswith(PRODUCT_PREFIX):
                row_kind = STOCK
            else:
                continue
            for fact in facts(commit):
                if isinstance(fact.event, ReorderLevelSet):
                    latest = levels.setdefault(
                        fact.event.product_id,
                        LatestReorderLevel(fact.envelope.version, fact.event.reorder_level),
                    )
                    if fact.envelope.version > latest.version:
                        latest.version, latest.level = fact.envelope.version, fact.event.reorder_level
                    latest.commits.append((position, commit))
                for product, part in contributions(fact).items():
                    slot = parts[(product, row_kind)].setdefault(commit.first_version, Contribution())
                    slot.add(part)
                    members[(product, row_kind)].append((position, commit))

        touched = defaultdict(list, self.apply_parts(parts, members, failures))
        for product, latest in levels.items():
            try:
                # The level is a value, not a sum: the newest version wins, replays lose.
                self._store.put_if_newer(
                    (self._partition(product), REORDER),
                    {"reorder_level": latest.level},
                    version=latest.version,
                )
                touched[product].extend(latest.commits)
            except Exception as error:
                fail_all(failures, latest.commits, error)
        self.refresh_all(touched, failures)
        return failures

    def summarize(self, entity: str, rows: Sequence[Row]) -> dict[str, Any]:
        return summarize(entity, rows)
