"""Commands sent over HTTP, and what became of each: the client's side of the ledger."""

from __future__ import annotations

import http.client
import statistics
from dataclasses import dataclass
from typing import Any

from tests.reliability.api_client import Reply, call

ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}
PRICES = ("1.00", "4.50", "9.99", "12.50", "100.00")


def order_body(product_id: str, quantity: int = 1, unit_price: str = "9.99") -> dict[str, Any]:
    return {
        "items": [{"product_id": product_id, "quantity": quantity, "unit_price": unit_price}],
        "shipping_address": ADDRESS,
    }


@dataclass(frozen=True)
class Sent:
    """One command as the client saw it. `key` (its Idempotency-Key) is the command id in the log."""

    key: str
    kind: str
    stream_id: str  # where it must land ("" when the client cannot know, e.g. a failed placement)
    status: int  # 0: no HTTP answer at all
    version: int | None
    replayed: bool
    title: str
    seconds: float
    error: str = ""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rejected(self) -> bool:
        return 400 <= self.status < 500

    @property
    def conflict(self) -> bool:
        """Lost an optimistic-concurrency race: 409 after the server's retries, or 412 on If-Match."""
        return self.status == 412 or (self.status == 409 and self.title == "Concurrent modification")


def send(
    base_url: str,
    method: str,
    path: str,
    *,
    key: str,
    kind: str,
    stream_id: str,
    token: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[Sent, Reply | None]:
    try:
        reply = call(
            base_url,
            method,
            path,
            body=body,
            token=token,
            headers={"Idempotency-Key": key, **(headers or {})},
        )
    except (OSError, http.client.HTTPException) as error:
        return Sent(key, kind, stream_id, 0, None, False, "", 0.0, repr(error)), None
    payload = reply.json if reply.content_type.endswith("json") else None
    version = payload.get("version") if isinstance(payload, dict) and reply.status < 300 else None
    title = str(payload.get("title", "")) if isinstance(payload, dict) and reply.status >= 400 else ""
    if reply.status < 300 and not stream_id and isinstance(payload, dict) and "order_id" in payload:
        stream_id = f"order-{payload['order_id']}"
    sent = Sent(
        key=key,
        kind=kind,
        stream_id=stream_id,
        status=reply.status,
        version=int(version) if isinstance(version, int) else None,
        replayed=reply.header("Idempotent-Replayed") == "true",
        title=title,
        seconds=reply.seconds,
    )
    return sent, reply


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]
