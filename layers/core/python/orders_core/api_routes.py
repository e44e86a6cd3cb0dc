"""The HTTP API's routes: which function serves each, and who may call it.

Read by the CDK stack (routes, authorizer scopes) and by the local gateway, so the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FunctionName = Literal["command_api", "query_api", "admin_api"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: FunctionName

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


ROUTES: tuple[Route, ...] = (
    Route("POST", "/orders", "command_api"),
    Route("POST", "/orders/{order_id}/items", "command_api"),
    Route("POST", "/orders/{order_id}/cancel", "command_api"),
    Route("POST", "/orders/{order_id}/ship", "command_api"),
    Route("POST", "/inventory/{product_id}/stock", "command_api"),
    Route("PUT", "/inventory/{product_id}/reorder-level", "command_api"),
    Route("GET", "/orders/{order_id}/events", "query_api"),
    Route("GET", "/orders/{order_id}", "query_api"),
    Route("GET", "/customers/me/orders", "query_api"),
    Route("GET", "/customers/{customer_id}/orders", "query_api"),
    Route("GET", "/analytics/sales/{date}", "query_api"),
    Route("GET", "/inventory/{product_id}", "query_api"),
    Route("GET", "/customers/me/summary", "query_api"),
    Route("GET", "/analytics/products/{product_id}", "query_api"),
    Route("POST", "/admin/rebuilds", "admin_api"),
    Route("GET", "/admin/rebuilds", "admin_api"),
    Route("GET", "/admin/rebuilds/{rebuild_id}", "admin_api"),
    Route("POST", "/admin/rebuilds/release", "admin_api"),
    Route("GET", "/admin/projections", "admin_api"),
    Route("GET", "/admin/failures", "admin_api"),
    Route("POST", "/admin/failures/replay", "admin_api"),
)

# Headers browsers may send and read; the deployed API's CORS settings use the same lists.
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "if-match", "x-correlation-id")
CORS_EXPOSE_HEADERS = ("etag", "location", "x-correlation-id")
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "OPTIONS")
CORS_MAX_AGE_SECONDS = 600
