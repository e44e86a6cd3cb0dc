"""The AsyncAPI 3.0 document of what the service sends without being asked: live updates on the
WebSocket API, and integration events on the event bus.

`python -m orders_local.asyncapi docs/asyncapi.yaml` writes it; `--check` exits 1 when the checked-in
file differs, and tests/local/test_asyncapi.py fails on the same. The integration events are the
event catalog's (every type and schema version of the published aggregates); each message's payload
is the JSON Schema that orders_core.integration.schemas writes to docs/events/, by reference, so that
the two documents cannot describe one event two ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import yaml  # type: ignore[import-untyped]  # PyYAML, which moto[server] brings

from orders_core.domain.orders import PRODUCT_ID, OrderStatus
from orders_core.event_catalog import document_main
from orders_core.integration.events import PUBLISHED_AGGREGATES, SOURCE
from orders_core.integration.schemas import file_name
from orders_core.integration.schemas import render as event_schema_files
from orders_core.live.messages import INVENTORY_LOW, ORDER_UPDATED
from orders_local.live_server import DEFAULT_LIVE_PORT

DEFAULT_PATH = Path("docs/asyncapi.yaml")
# Where the event schemas are, relative to the document (docs/asyncapi.yaml -> docs/events/).
EVENT_SCHEMAS = "events"
# Integration events' schemas are JSON Schema 2020-12 (orders_core.integration.schemas.DRAFT).
EVENT_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
LOCAL_WEBSOCKET = f"127.0.0.1:{DEFAULT_LIVE_PORT}"

DESCRIPTION = f"""\
What the orders service sends without being asked, in two places.

**Live updates** (WebSocket). Connect with a Cognito access token in the query string:
`wss://<ws-api>/<stage>?token=<jwt>` (the stack's WebSocket URL), locally
`ws://{LOCAL_WEBSOCKET}/?token=<jwt>` with a token from `orders token`. A connection without a valid
token is refused at the handshake. The server sends JSON text messages and expects none: an
order's owner gets `order.updated` when one of their orders changes, operators get `inventory.low`
when a product's available quantity falls to its reorder level or below. Delivery is at least
once and only while connected: a message may come twice (drop one whose `version` you have seen),
and what happened while disconnected is read with the HTTP API (`GET /orders/{{order_id}}`,
`GET /customers/me/orders`) after reconnecting.

**Integration events** (Amazon EventBridge). Every event the service records is published on the
event bus `orders-<stage>` with Source `orders` and DetailType the event's type, its data in the
current schema version of its type. Other services subscribe with a rule (for example
`{{"source": ["{SOURCE}"], "detail-type": ["OrderPlaced"]}}`). Delivery is at least once and in no
guaranteed order: drop duplicates by `detail.event_id`, order one stream's events by
`detail.version`. Locally, `orders events --follow` prints them as they are published. Older schema
versions are listed too: the bus's archive keeps what was published before a version changed, and
a replay delivers it as it was."""


def build_asyncapi() -> dict[str, Any]:
    """The whole document, as a dict in the order it is written."""
    event_messages, current = _integration_messages()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Orders: live updates and integration events",
            "version": "1.0.0",
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": {
            "liveUpdates": {
                # On WebSockets the channel is the connection itself: its URL is the server's.
                "address": None,
                "title": "Live updates",
                "description": "The connection to the WebSocket API. Server to client only.",
                "servers": [{"$ref": "#/servers/aws"}, {"$ref": "#/servers/local"}],
                "messages": {
                    "orderUpdated": {"$ref": "#/components/messages/OrderUpdated"},
                    "inventoryLow": {"$ref": "#/components/messages/InventoryLow"},
                },
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "required": ["token"],
                            "properties": {
                                "token": {"type": "string", "description": "A Cognito access token (a JWT)"}
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            },
            "integrationEvents": {
                "address": SOURCE,
                "title": "Integration events",
                "description": f"Events of Source `{SOURCE}` on the event bus, one message per DetailType "
                "and schema version.",
                "servers": [{"$ref": "#/servers/eventBus"}],
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in event_messages},
            },
        },
        "operations": {
            "sendOrderUpdated": {
                "action": "send",
                "channel": {"$ref": "#/channels/liveUpdates"},
                "summary": "To the order's owner, once its view (GET /orders/{order_id}) shows a new version",
                "messages": [{"$ref": "#/channels/liveUpdates/messages/orderUpdated"}],
            },
            "sendInventoryLow": {
                "action": "send",
                "channel": {"$ref": "#/channels/liveUpdates"},
                "summary": "To operators, when a product's available quantity reaches its reorder level",
                "messages": [{"$ref": "#/channels/liveUpdates/messages/inventoryLow"}],
            },
            "publishIntegrationEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/integrationEvents"},
                "summary": "Every recorded event, in the current schema version of its type",
                "messages": [{"$ref": f"#/channels/integrationEvents/messages/{name}"} for name in current],
            },
        },
        "components": {
            "securitySchemes": {
                "accessToken": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "A Cognito access token (locally: `orders token`), checked at the "
                    "handshake",
                }
            },
            "messages": {**_live_messages(), **event_messages},
        },
    }


def _servers() -> dict[str, Any]:
    token = [{"$ref": "#/components/securitySchemes/accessToken"}]
    return {
        "aws": {
            "host": "{apiId}.execute-api.{region}.amazonaws.com",
            "pathname": "/{stage}",
            "protocol": "wss",
            "description": "The stack's WebSocket API (API Gateway)",
            "variables": {
                "apiId": {"description": "The WebSocket API's id (in the stack's WebSocket URL output)"},
                "region": {"description": "The stack's region", "examples": ["eu-west-1"]},
                "stage": {"description": "The stack's stage", "default": "dev"},
            },
            "security": token,
        },
        "local": {
            "host": LOCAL_WEBSOCKET,
            "protocol": "ws",
            "description": "`orders serve`'s stand-in for the WebSocket API",
            "security": token,
        },
        "eventBus": {
            "host": "events.{region}.amazonaws.com",
            "protocol": "eventbridge",
            "description": "The Amazon EventBridge bus `orders-<stage>` (locally: moto's, read with "
            "`orders events --follow`). Consumers subscribe with rules; nothing connects to it.",
            "variables": {"region": {"description": "The stack's region", "examples": ["eu-west-1"]}},
        },
    }


def _live_messages() -> dict[str, Any]:
    statuses = [status for status in get_args(OrderStatus) if status != "new"]  # "new" is no order yet
    order_updated = {
        "type": "object",
        "required": ["type", "order_id", "version", "status", "correlation_id"],
        "properties": {
            "type": {"const": ORDER_UPDATED},
            "order_id": {"type": "string", "format": "uuid"},
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "The order's version after the change: the same as its ETag and the "
                "`version` of its view (GET /orders/{order_id}?min_version=<version> reads it)",
            },
            "status": {"type": "string", "enum": statuses},
            "correlation_id": {
                "type": ["string", "null"],
                "description": "The request that changed the order (its X-Correlation-Id); null for an "
                "order last changed before the service kept it",
            },
        },
    }
    inventory_low = {
        "type": "object",
        "required": ["type", "product_id", "available_quantity", "reorder_level"],
        "properties": {
            "type": {"const": INVENTORY_LOW},
            "product_id": {"type": "string", "pattern": f"^{PRODUCT_ID.pattern}$"},
            "available_quantity": {
                "type": "integer",
                "description": "On hand less reserved: what can still be ordered",
            },
            "reorder_level": {"type": "integer", "minimum": 0},
        },
    }
    return {
        "OrderUpdated": {
            "name": ORDER_UPDATED,
            "title": "An order changed",
            "summary": "Sent to the order's owner once the order's view shows the change.",
            "payload": order_updated,
            "examples": [
                {
                    "name": "shipped",
                    "payload": {
                        "type": ORDER_UPDATED,
                        "order_id": "5a3c07c5-1b5e-4f6a-9b0e-2f4c8f0f3d21",
                        "version": 5,
                        "status": "shipped",
                        "correlation_id": "3f1d2c44-8a7b-4c1e-9d4f-6b2a1e0c9f88",
                    },
                }
            ],
        },
        "InventoryLow": {
            "name": INVENTORY_LOW,
            "title": "A product's stock is low",
            "summary": "Sent to operators when a product's available quantity falls to its reorder level.",
            "payload": inventory_low,
            "examples": [
                {
                    "name": "below the reorder level",
                    "payload": {
                        "type": INVENTORY_LOW,
                        "product_id": "sku-espresso",
                        "available_quantity": 3,
                        "reorder_level": 5,
                    },
                }
            ],
        },
    }


def _integration_messages() -> tuple[dict[str, Any], list[str]]:
    """Every (type, version) of the catalog as a message; and the names of the current ones."""
    messages: dict[str, Any] = {}
    current: list[str] = []
    for aggregate in PUBLISHED_AGGREGATES:
        for entry in aggregate.events.catalog():
            name = entry.event_type if entry.current else f"{entry.event_type}V{entry.version}"
            status = (
                "published now" if entry.current else "no longer published; an archive replay may bring it"
            )
            summary = f"DetailType `{entry.event_type}`, detail.schema_version {entry.version} ({status})."
            messages[name] = {
                "name": entry.event_type,
                "title": f"{entry.event_type} v{entry.version}",
                "summary": summary,
                "payload": {
                    "schemaFormat": EVENT_SCHEMA_FORMAT,
                    "schema": {"$ref": f"{EVENT_SCHEMAS}/{file_name(entry.event_type, entry.version)}"},
                },
            }
            if entry.current:
                current.append(name)
    return messages, current


class _Dumper(yaml.SafeDumper):
    """Block scalars for text of several lines, and no anchors: a document to read, not to decode."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def render() -> str:
    header = "# Generated by `python -m orders_local.asyncapi` from the code; do not edit by hand.\n"
    body = yaml.dump(build_asyncapi(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + str(body)


# Where `orders serve` serves the document, beside /openapi.json. Its event schemas are referenced
# relative to it (events/<file>), so they are served under /events/ too.
SERVED_PATH = "/asyncapi.yaml"


def served_documents() -> dict[str, tuple[str, bytes]]:
    """URL path -> (media type, body) of the AsyncAPI document and of every schema it references."""
    documents = {SERVED_PATH: ("application/yaml", render().encode())}
    base = SERVED_PATH.rsplit("/", 1)[0]
    for name, text in event_schema_files().items():
        documents[f"{base}/{EVENT_SCHEMAS}/{name}"] = ("application/schema+json", text.encode())
    return documents


def main(argv: Sequence[str] | None = None) -> int:
    return document_main(
        argv, what="the AsyncAPI document", default_path=DEFAULT_PATH, render=render, remedy="make asyncapi"
    )


if __name__ == "__main__":
    raise SystemExit(main())
