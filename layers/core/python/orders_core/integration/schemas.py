"""The integration events' public contract: one JSON Schema per event type and schema version.

`python -m orders_core.integration.schemas docs/events` (or `make schemas`) writes
`docs/events/<Type>.v<N>.schema.json` from the event catalog (every (type, version) the events
table may hold, orders_core.domain.events.EventRegistry.catalog); `--check` exits 1 when the
checked-in files differ, and a test does the same. Each schema describes the event as a rule's
target receives it: `source`, `detail-type`, and the `detail` this service writes
(orders_core.integration.events.detail_of). The bus carries only the current version of each type,
but older versions stay listed: an archive keeps what was published before a version changed, and
a replay delivers it again as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from orders_core.domain.aggregate import AggregateType
from orders_core.domain.events import CatalogEntry
from orders_core.integration.events import ENVELOPE_FIELDS, PUBLISHED_AGGREGATES, SOURCE

DEFAULT_DIRECTORY = Path("docs/events")
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_ENVELOPE_DESCRIPTIONS = {
    "event_id": "Unique per event, the same on every delivery: the key to drop duplicates by "
    "(delivery is at least once).",
    "stream_id": "The aggregate's stream: the order or product the event belongs to.",
    "version": "Position in its stream (1, 2, ...): events of one stream are ordered by it, with no gaps.",
    "schema_version": "The version of this event type's data, as in the event catalog.",
    "recorded_at": "When the event was recorded, RFC 3339 in UTC with microseconds.",
    "correlation_id": "The request that caused it, shared by every event that request led to.",
}


class _ContractSchema(GenerateJsonSchema):
    """Money is a Decimal in the domain and a decimal string on the wire: say exactly which strings."""

    def get_decimal_pattern(self, schema: core_schema.DecimalSchema) -> str | None:
        return self.build_decimal_pattern(schema)


def _literal(prefix: str) -> str:
    # Stream prefixes are plain words ("order-"): readable in a pattern as they are.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", prefix):
        raise ValueError(f"stream prefix {prefix!r} needs escaping in a JSON Schema pattern")
    return prefix


def file_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.schema.json"


def _without_property_titles(schema: Any) -> Any:
    """pydantic titles every field after its name ("Order Id"): noise in a contract."""
    if isinstance(schema, dict):
        cleaned = {key: _without_property_titles(value) for key, value in schema.items()}
        properties = cleaned.get("properties")
        if isinstance(properties, dict):
            cleaned["properties"] = {
                name: {k: v for k, v in field.items() if k != "title"} for name, field in properties.items()
            }
        return cleaned
    if isinstance(schema, list):
        return [_without_property_titles(item) for item in schema]
    return schema


def _data_schema(model: type[BaseModel]) -> tuple[JsonSchemaValue, dict[str, JsonSchemaValue]]:
    generated = model.model_json_schema(
        mode="serialization", ref_template="#/$defs/{model}", schema_generator=_ContractSchema
    )
    parts = generated.pop("$defs", {})
    return _without_property_titles(generated), _without_property_titles(parts)


def schema_of(aggregate: AggregateType[Any, Any], entry: CatalogEntry) -> dict[str, Any]:
    """The JSON Schema of one (type, version) as published on the bus."""
    data, parts = _data_schema(entry.schema)
    data["title"] = f"{entry.event_type} v{entry.version} data"
    if "Detail" in parts or "Data" in parts:
        raise ValueError(f"{entry.event_type} has a part named Detail or Data: rename it")
    current = aggregate.events.current_version(entry.event_type)
    status = (
        "The version published now."
        if entry.current
        else f"Published before v{entry.version + 1} existed; an archive replay may still deliver it."
    )
    envelope: dict[str, Any] = {
        "event_id": {"type": "string", "minLength": 1},
        "stream_id": {"type": "string", "pattern": f"^{_literal(aggregate.stream_prefix)}"},
        "version": {"type": "integer", "minimum": 1},
        "schema_version": {"const": entry.version},
        "recorded_at": {"type": "string", "format": "date-time"},
        "correlation_id": {"type": "string"},
    }
    assert tuple(envelope) == ENVELOPE_FIELDS, "the Detail's fields are those of integration.events.detail_of"
    return {
        "$schema": DRAFT,
        "$id": f"urn:orders:events:{entry.event_type}:v{entry.version}",
        "title": f"{entry.event_type} v{entry.version}",
        "description": (
            f"{entry.event_type} (schema version {entry.version} of {current}) as a target of a rule on "
            f"the orders event bus receives it. {status} Delivery is at least once and in no guaranteed "
            "order: drop duplicates by detail.event_id, order a stream's events by detail.version."
        ),
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"const": SOURCE},
            "detail-type": {"const": entry.event_type},
            "detail": {"$ref": "#/$defs/Detail"},
        },
        "$defs": {
            "Detail": {
                "type": "object",
                # Open: a field added to every event later must not break a consumer that validates.
                "required": [*ENVELOPE_FIELDS, "data"],
                "properties": {
                    **{
                        name: {**rule, "description": _ENVELOPE_DESCRIPTIONS[name]}
                        for name, rule in envelope.items()
                    },
                    "data": {"$ref": "#/$defs/Data"},
                },
            },
            # Closed, as the event's model is: a change of fields is a new schema version.
            "Data": data,
            **parts,
        },
    }


def render(aggregates: Sequence[AggregateType[Any, Any]] = PUBLISHED_AGGREGATES) -> dict[str, str]:
    """File name -> text of every schema."""
    files: dict[str, str] = {}
    for aggregate in aggregates:
        for entry in aggregate.events.catalog():
            text = json.dumps(schema_of(aggregate, entry), indent=2, ensure_ascii=False) + "\n"
            files[file_name(entry.event_type, entry.version)] = text
    return files


def stale_files(directory: Path, files: dict[str, str]) -> list[str]:
    """What differs between `directory` and `files`: missing, changed or extra schema files."""
    present = {path.name for path in directory.glob("*.schema.json")} if directory.is_dir() else set()
    problems = [f"{name} is missing" for name in sorted(files.keys() - present)]
    problems += [f"{name} is not generated" for name in sorted(present - files.keys())]
    problems += [
        f"{name} differs"
        for name in sorted(files.keys() & present)
        if (directory / name).read_text(encoding="utf-8") != files[name]
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or check) the integration events' JSON Schemas.")
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are not up to date")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        problems = stale_files(args.directory, files)
        for problem in problems:
            print(f"{args.directory}/{problem}", file=sys.stderr)
        if problems:
            print("the event schemas are stale: run `make schemas`", file=sys.stderr)
        return 1 if problems else 0
    args.directory.mkdir(parents=True, exist_ok=True)
    for stale in sorted(args.directory.glob("*.schema.json")):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (args.directory / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} schemas to {args.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
