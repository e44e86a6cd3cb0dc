"""An independent fold of the event log into what every read model must show.

Written from the read models' definitions, straight from raw envelopes, sharing no code with
the projections: if both agree, the projections are right.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from orders_core.envelope import EventEnvelope

CENT = Decimal("0.01")


def order_views(events: list[EventEnvelope]) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for e in events:
        if not e.stream_id.startswith("order-"):
            continue
        order_id = e.stream_id.removeprefix("order-")
        d = e.data
        if e.type == "OrderPlaced":
            views[order_id] = {
                "order_id": order_id,
                "customer_id": d["customer_id"],
                "status": "placed",
                "lines": [
                    (i["product_id"], int(i["quantity"]), Decimal(i["unit_price"])) for i in d["items"]
                ],
                "tracking_number": None,
                "placed_at": e.recorded_at,
            }
        elif e.type == "ItemAdded":
            views[order_id]["lines"].append((d["product_id"], int(d["quantity"]), Decimal(d["unit_price"])))
        elif e.type == "OrderCancelled":
            views[order_id]["status"] = "cancelled"
        elif e.type == "OrderShipped":
            views[order_id]["status"] = "shipped"
            views[order_id]["tracking_number"] = d["tracking_number"]
        views[order_id]["version"] = e.version
        views[order_id]["correlation_id"] = e.correlation_id
    result = {}
    for order_id, v in views.items():
        result[order_id] = {
            "order_id": order_id,
            "customer_id": v["customer_id"],
            "status": v["status"],
            "items": [
                {"product_id": p, "quantity": q, "unit_price": str(u), "line_total": str(u * q)}
                for p, q, u in v["lines"]
            ],
            "total_amount": str(sum((u * q for _, q, u in v["lines"]), Decimal("0.00"))),
            "tracking_number": v["tracking_number"],
            "placed_at": v["placed_at"],
            "version": v["version"],
            "correlation_id": v["correlation_id"],
        }
    return result


def daily_sales(events: list[EventEnvelope]) -> dict[str, dict[str, Any]]:
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for view in order_views(events).values():
        days[view["placed_at"][:10]].append(view)
    result = {}
    for day, views in days.items():
        counted = [v for v in views if v["status"] != "cancelled"]
        revenue = sum((Decimal(v["total_amount"]) for v in counted), Decimal("0"))
        qty: dict[str, int] = defaultdict(int)
        rev: dict[str, Decimal] = defaultdict(Decimal)
        for v in counted:
            for item in v["items"]:
                qty[item["product_id"]] += item["quantity"]
                rev[item["product_id"]] += Decimal(item["line_total"])
        ranked = sorted(rev.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        result[day] = {
            "date": day,
            "total_orders": len(counted),
            "total_revenue": str(revenue.quantize(CENT)),
            "average_order_value": str(
                (revenue / len(counted)).quantize(CENT) if counted else Decimal("0.00")
            ),
            "top_products": [
                {"product_id": p, "quantity": qty[p], "revenue": str(r.quantize(CENT))} for p, r in ranked
            ],
        }
    return result


def inventory(events: list[EventEnvelope]) -> dict[str, dict[str, Any]]:
    received: dict[str, int] = defaultdict(int)
    levels: dict[str, int] = {}
    for e in events:
        if e.type == "StockReceived":
            received[e.data["product_id"]] += int(e.data["quantity"])
        elif e.type == "ReorderLevelSet":
            levels[e.data["product_id"]] = int(e.data["reorder_level"])
    shipped: dict[str, int] = defaultdict(int)
    reserved: dict[str, int] = defaultdict(int)
    for view in order_views(events).values():
        for item in view["items"]:
            if view["status"] == "placed":
                reserved[item["product_id"]] += item["quantity"]
            elif view["status"] == "shipped":
                shipped[item["product_id"]] += item["quantity"]
    products = set(received) | set(levels) | set(reserved) | set(shipped)
    products |= {i["product_id"] for v in order_views(events).values() for i in v["items"]}
    result = {}
    for p in products:
        on_hand = received[p] - shipped[p]
        available = on_hand - reserved[p]
        result[p] = {
            "product_id": p,
            "on_hand": on_hand,
            "reserved_quantity": reserved[p],
            "available_quantity": available,
            "reorder_level": levels.get(p, 0),
            "needs_reorder": available <= levels.get(p, 0),
        }
    return result


def customer_summaries(events: list[EventEnvelope]) -> dict[str, dict[str, Any]]:
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for view in order_views(events).values():
        by_customer[view["customer_id"]].append(view)
    result = {}
    for customer, views in by_customer.items():
        newest = sorted(views, key=lambda v: (v["placed_at"], v["order_id"]), reverse=True)
        open_orders = [v["order_id"] for v in newest if v["status"] == "placed"]
        spend = sum((Decimal(v["total_amount"]) for v in views if v["status"] != "cancelled"), Decimal("0"))
        result[customer] = {
            "customer_id": customer,
            "order_count": len(views),
            "open_order_count": len(open_orders),
            "open_orders": open_orders[:10],
            "last_order": {
                "order_id": newest[0]["order_id"],
                "placed_at": newest[0]["placed_at"],
                "status": newest[0]["status"],
                "total_amount": newest[0]["total_amount"],
            },
            "lifetime_spend": str(spend.quantize(CENT)),
        }
    return result


def product_sales(events: list[EventEnvelope]) -> dict[str, dict[str, Any]]:
    """Per product ever ordered: units, revenue and orders over the orders placed and not cancelled.

    Revenue is what each line was charged: OrderPlaced's lines their unit price times quantity,
    ItemAdded's line_total as stored (v1 events had none: unit price times quantity, to the cent)."""
    charged: dict[str, list[tuple[str, int, Decimal]]] = defaultdict(list)  # order -> (product, qty, total)
    cancelled: set[str] = set()
    for e in events:
        if not e.stream_id.startswith("order-"):
            continue
        d = e.data
        if e.type == "OrderPlaced":
            for i in d["items"]:
                quantity = int(i["quantity"])
                charged[e.stream_id].append((i["product_id"], quantity, Decimal(i["unit_price"]) * quantity))
        elif e.type == "ItemAdded":
            quantity = int(d["quantity"])
            if "line_total" in d:
                total = Decimal(str(d["line_total"]))
            else:
                total = (Decimal(d["unit_price"]) * quantity).quantize(CENT)
            charged[e.stream_id].append((d["product_id"], quantity, total))
        elif e.type == "OrderCancelled":
            cancelled.add(e.stream_id)
    units: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    orders: dict[str, set[str]] = defaultdict(set)
    for order, lines in charged.items():
        for product, quantity, total in lines:
            units.setdefault(product, 0)  # ordered, so it has a row; a cancelled order adds nothing to it
            if order in cancelled:
                continue
            units[product] += quantity
            revenue[product] += total
            orders[product].add(order)
    return {
        p: {
            "product_id": p,
            "units_sold": units[p],
            "revenue": str(revenue[p].quantize(CENT)),
            "order_count": len(orders[p]),
        }
        for p in units
    }
