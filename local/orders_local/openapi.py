"""The API's OpenAPI document, generated from the handlers' own routes and models."""

from __future__ import annotations

import importlib
import json
from typing import Any

from orders_core.api_routes import ROUTES

TITLE = "Orders API"
VERSION = "1.0.0"


def build_openapi() -> dict[str, Any]:
    """One document for the whole HTTP API: the paths of every function, merged."""
    document: dict[str, Any] = {}
    for function in sorted({route.function for route in ROUTES}):
        app = importlib.import_module(f"{function}.handler").app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        if not document:
            document = part
            continue
        document["paths"].update(part.get("paths", {}))
        schemas = part.get("components", {}).get("schemas", {})
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
    document["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Cognito access token (locally: `orders token`).",
    }
    document["security"] = [{"bearer": []}]
    return document
