"""docs/asyncapi.yaml: generated from the code, current, a valid AsyncAPI 3.0 document, every
reference resolving, every published event type described by its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from jsonschema import Draft7Validator, Draft202012Validator  # type: ignore[import-untyped]

from orders_core.integration.events import PUBLISHED_AGGREGATES, SOURCE
from orders_core.live import messages as live_messages
from orders_core.projections.customer_orders import OrderView
from orders_local.asyncapi import DEFAULT_PATH, SERVED_PATH, build_asyncapi, main, render, served_documents

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / DEFAULT_PATH
# The AsyncAPI 3.0.0 document schema, kept beside the tests (schemas/README.md says where from).
ASYNCAPI_SCHEMA = Path(__file__).resolve().parent / "schemas" / "asyncapi-3.0.0.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_checked_in_document_is_the_generated_one() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is stale: run `python -m orders_local.asyncapi`"
    )


def test_the_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"
    assert main([str(target), "--check"]) == 1  # missing
    assert main([str(target)]) == 0
    assert main([str(target), "--check"]) == 0
    target.write_text(render().replace("order.updated", "order.changed"), encoding="utf-8")
    assert main([str(target), "--check"]) == 1


def test_the_text_reads_back_as_the_document(document: dict[str, Any]) -> None:
    assert document == json.loads(json.dumps(build_asyncapi()))


def test_it_is_a_valid_asyncapi_3_document(document: dict[str, Any]) -> None:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    assert [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors] == []


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for inner in value.values() for ref in _references(inner)]
    if isinstance(value, list):
        return [ref for inner in value for ref in _references(inner)]
    return []


def _pointer(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer ("/components/messages/X"), KeyError if there is none."""
    target = document
    for token in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
        token = token.replace("~1", "/").replace("~0", "~")
        target = target[int(token)] if isinstance(target, list) else target[token]
    return target


def _followed(document: dict[str, Any], node: Any) -> Any:
    """`node`, or what its (chain of) internal $ref names."""
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#"):
        node = _pointer(document, node["$ref"].removeprefix("#"))
    return node


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    unresolved = []
    for reference in _references(document):
        location, _, pointer = reference.partition("#")
        try:
            if location:
                target = json.loads((DOCUMENT.parent / location).read_text(encoding="utf-8"))
                _pointer(target, pointer)
                # and the references inside that file, which point into the file itself
                for inner in _references(target):
                    _pointer(target, inner.partition("#")[2])
            else:
                _pointer(document, pointer)
        except (OSError, KeyError, IndexError, ValueError) as exc:
            unresolved.append(f"{reference}: {exc!r}")
    assert unresolved == []


def test_operations_send_messages_of_their_own_channel(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), name


def test_every_published_event_type_is_a_message_with_its_schema(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    published = [
        _followed(document, ref) for ref in document["operations"]["publishIntegrationEvents"]["messages"]
    ]
    published_types = set()
    for message in published:
        schema_file = DOCUMENT.parent / message["payload"]["schema"]["$ref"]
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert message["payload"]["schemaFormat"].endswith("draft-2020-12")
        assert schema["properties"]["source"] == {"const": SOURCE}
        assert schema["properties"]["detail-type"] == {"const": message["name"]}
        published_types.add(message["name"])
    expected = {
        event_type for aggregate in PUBLISHED_AGGREGATES for event_type in aggregate.events.event_types
    }
    assert published_types == expected
    # Each current version is the one published; the older ones are listed, for archive replays
    for aggregate in PUBLISHED_AGGREGATES:
        for entry in aggregate.events.catalog():
            ref = messages[entry.event_type if entry.current else f"{entry.event_type}V{entry.version}"]
            assert ref["payload"]["schema"]["$ref"].endswith(
                f"{entry.event_type}.v{entry.version}.schema.json"
            )


def test_the_live_messages_examples_match_their_payloads(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for name in ("OrderUpdated", "InventoryLow"):
        validator = Draft7Validator(messages[name]["payload"])
        for example in messages[name]["examples"]:
            assert list(validator.iter_errors(example["payload"])) == [], (name, example["name"])
        # The type tells the two apart on one connection
        assert messages[name]["payload"]["properties"]["type"]["const"] == messages[name]["name"]
    order = Draft7Validator(messages["OrderUpdated"]["payload"])
    assert not order.is_valid({**messages["OrderUpdated"]["examples"][0]["payload"], "status": "new"})


def test_the_live_channel_asks_for_a_token_at_the_handshake(document: dict[str, Any]) -> None:
    channel = document["channels"]["liveUpdates"]
    assert channel["bindings"]["ws"]["query"]["required"] == ["token"]
    scheme = document["components"]["securitySchemes"]["accessToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("httpApiKey", "query", "token")
    for server in ("aws", "local"):
        assert document["servers"][server]["security"] == [
            {"$ref": "#/components/securitySchemes/accessToken"}
        ]
    assert document["servers"]["local"] == {**document["servers"]["local"], "host": "127.0.0.1:8001"}


def test_what_the_local_server_serves_resolves_by_itself() -> None:
    # A tool that reads http://127.0.0.1:8000/asyncapi.yaml finds each referenced schema beside it
    served = served_documents()
    media_type, body = served[SERVED_PATH]
    assert media_type == "application/yaml" and body.decode() == render()
    base = SERVED_PATH.rsplit("/", 1)[0]
    for reference in _references(yaml.safe_load(body)):
        location = reference.partition("#")[0]
        if location:
            assert f"{base}/{location}" in served, location
            assert json.loads(served[f"{base}/{location}"][1]) == json.loads(
                (DOCUMENT.parent / location).read_text(encoding="utf-8")
            )


@pytest.mark.parametrize("correlation_id", ["3f1d2c44-8a7b-4c1e-9d4f-6b2a1e0c9f88", None])
@pytest.mark.parametrize("status", ["placed", "shipped", "cancelled"])
def test_the_messages_the_service_builds_match_the_document(
    document: dict[str, Any], status: str, correlation_id: str | None
) -> None:
    payloads = {name: message["payload"] for name, message in document["components"]["messages"].items()}
    view = OrderView(
        order_id="5a3c07c5-1b5e-4f6a-9b0e-2f4c8f0f3d21",
        customer_id="alice",
        status=status,
        items=(),
        tracking_number=None,
        placed_at="2026-11-26T10:00:00.000000Z",
        version=3,
        correlation_id=correlation_id,
    )
    sent = json.loads(live_messages.encode(live_messages.order_updated(view)))
    assert list(Draft7Validator(payloads["OrderUpdated"]).iter_errors(sent)) == []
    summary = {"product_id": "sku-espresso", "available_quantity": -2, "reorder_level": 5, "on_hand": 3}
    sent = json.loads(live_messages.encode(live_messages.inventory_low(summary)))
    assert list(Draft7Validator(payloads["InventoryLow"]).iter_errors(sent)) == []
