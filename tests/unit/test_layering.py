"""The shared library's dependency direction: domain <- application <- adapters, no cycles.

Each subpackage or top-level module of orders_core is a unit with a layer; a unit may import
only units of lower layers (and itself). Only adapters import boto3 or know DynamoDB's formats.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import orders_core

PACKAGE = Path(orders_core.__file__).parent

LAYERS: dict[str, int] = {
    # Vocabulary every layer shares: the envelope, table and route definitions, store errors.
    "envelope": 0,
    "tables": 0,
    "api_routes": 0,
    "errors": 0,
    # Pure: decide/evolve, events and their upcasters.
    "domain": 1,
    # Ports and their adapters (in-memory fakes and DynamoDB), metrics. Snapshots size their
    # items with the event store's codec.
    "store": 2,
    "readmodels": 2,
    "telemetry": 2,
    "snapshots": 3,
    # Use cases over the ports.
    "application": 4,
    "projections": 4,
    "queries": 5,
    "rebuild": 5,
    # Integration events: the stream's second reader, from commits to entries on the event bus.
    "integration": 5,
    # Live updates: connections, alerts, pushes, and the notifier fed by the read models' streams.
    "live": 5,
    # Adapters to the outside: HTTP, stream batches, the catalog document.
    "web": 6,
    "stream_delivery": 6,
    "event_catalog": 6,
    # Builds everything.
    "composition": 7,
}

# Modules that may talk to AWS SDKs: the adapters.
SDK_USERS = {
    "store.dynamodb",
    "readmodels.dynamodb",
    "snapshots.dynamodb",
    "rebuild.objects",
    "integration.eventbridge",
    "live.dynamodb",
    "live.apigateway",
    "composition",
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return found


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _unit(module: str) -> str:
    return module.split(".", 1)[0]


def _internal(module: str) -> str | None:
    if not module.startswith("orders_core."):
        return None
    inner = module.removeprefix("orders_core.")
    return inner if _unit(inner) in LAYERS else None


def test_every_unit_has_a_layer() -> None:
    units = {_unit(name) for name in _modules() if name not in ("", "__init__")}
    assert units <= LAYERS.keys(), f"give these a layer in LAYERS: {sorted(units - LAYERS.keys())}"


def test_units_import_only_lower_layers() -> None:
    wrong = []
    for name, tree in _modules().items():
        if not name or name == "__init__":
            continue
        source = _unit(name)
        for imported in filter(None, map(_internal, _imports(tree))):
            target = _unit(imported)
            if target != source and LAYERS[target] >= LAYERS[source]:
                wrong.append(f"{name} -> {imported}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(set(wrong)))


def test_no_import_cycle_between_units() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in _modules().items():
        for imported in filter(None, map(_internal, _imports(tree))):
            if _unit(imported) != _unit(name):
                graph[_unit(name)].add(_unit(imported))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(unit for unit in list(graph) if reaches(unit, unit, {unit}))
    assert not cycles, f"units on an import cycle: {cycles}"


def test_projections_never_import_rebuild_nor_know_storage_formats() -> None:
    for name, tree in _modules().items():
        if _unit(name) != "projections":
            continue
        imported = _imports(tree)
        assert not any(i.startswith("orders_core.rebuild") for i in imported), name
        assert not any(
            i.startswith(("orders_core.store.codec", "orders_core.store.dynamodb")) for i in imported
        )
        assert not any(i.startswith(("boto3", "botocore")) for i in imported), name


def test_only_adapters_use_the_aws_sdk_and_only_the_composition_reads_the_environment() -> None:
    for name, tree in _modules().items():
        imported = _imports(tree)
        if any(i.split(".")[0] in ("boto3", "botocore") for i in imported):
            assert name in SDK_USERS, f"{name} imports an AWS SDK but is not an adapter"
        source = ast.unparse(tree)
        if "os.environ" in source and name not in ("composition", "telemetry"):
            raise AssertionError(f"{name} reads the environment: settings belong to composition.Settings")


def test_the_domain_and_application_are_pure() -> None:
    for name, tree in _modules().items():
        if _unit(name) not in ("domain", "application"):
            continue
        roots = {i.split(".")[0] for i in _imports(tree)}
        assert not roots & {"boto3", "botocore", "os", "aws_lambda_powertools"}, name
