"""Every function: the runtime its bytecode is compiled for, on arm64, both layers, traced, JSON
logs with retention, and a code asset holding its own package (with its bytecode) and nothing else."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_

from infra import bytecode, layers_build
from infra.lambda_function import RUNTIME
from tests.infra.helpers import Synthesized, references

EXPECTED_PACKAGES = {
    "command_api": 1,
    "query_api": 1,
    "admin_api": 1,
    "rebuild_worker": 1,
    "projections": 1,  # the projector, for every registered read model
    "integration_publisher": 1,  # the events stream's second reader: events onto the bus
    # Live updates: the $connect authorizer, the WebSocket routes, the notifier.
    "live_authorizer": 1,
    "live_api": 1,
    "live_notifier": 1,
}


def test_the_function_list_the_builds_use_names_every_deployed_function() -> None:
    assert set(bytecode.FUNCTION_PACKAGES) == set(EXPECTED_PACKAGES)


def _functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synthesized.of_type("AWS::Lambda::Function").items()}


def _python_version(runtime: lambda_.Runtime) -> tuple[int, ...]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime.name)
    assert match, runtime.name
    return tuple(int(part) for part in match.groups())


def test_runtime_is_at_most_one_version_behind_the_newest_the_cdk_offers() -> None:
    # ADR 13: the newest runtime whose bytecode can be compiled here; one behind today (3.14 has
    # no interpreter on these machines). Two behind means: find a newer interpreter and move on.
    offered = [getattr(lambda_.Runtime, n) for n in dir(lambda_.Runtime) if n.startswith("PYTHON_3_")]
    newest = max(_python_version(r) for r in offered)
    assert newest[0] == _python_version(RUNTIME)[0] and newest[1] - _python_version(RUNTIME)[1] <= 1
    assert RUNTIME.name == f"python{bytecode.PYTHON_VERSION}"


def _runtime_magic() -> bytes:
    python = bytecode.runtime_python()
    if python is None:
        if bytecode.require_bytecode():
            pytest.fail(f"no Python {bytecode.PYTHON_VERSION} here, and {bytecode.REQUIRE_VARIABLE} is set")
        pytest.skip(f"no Python {bytecode.PYTHON_VERSION} on this machine: the assets carry no bytecode")
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    reply = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return bytes.fromhex(reply.stdout)


UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


@pytest.mark.parametrize("asset", ["functions", "core layer", "dependencies layer"])
def test_assets_carry_bytecode_the_runtime_loads(synthesized: Synthesized, asset: str) -> None:
    magic = _runtime_magic()
    stack = synthesized.stack
    if asset == "functions":
        directories = [synthesized.asset_dir(i) for i in synthesized.of_type("AWS::Lambda::Function")]
    else:
        layer = stack.layers.core if asset == "core layer" else stack.layers.deps
        directories = [synthesized.asset_dir(synthesized.logical_id(layer))]
    for directory in directories:
        _assert_compiled_for(directory, magic)


def _assert_compiled_for(directory: Path, magic: bytes) -> None:
    sources = list(directory.rglob("*.py"))
    assert sources
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{bytecode.BYTECODE_TAG}.pyc"
        assert compiled.is_file(), f"{source.relative_to(directory)} has no {bytecode.BYTECODE_TAG} bytecode"
        header = compiled.read_bytes()[:8]
        assert header[:4] == magic and int.from_bytes(header[4:8], "little") == UNCHECKED_HASH, compiled
    # Nothing compiled for another Python rides along (a .pyc of this machine's 3.11, say).
    strays = [p for p in directory.rglob("*.pyc") if bytecode.BYTECODE_TAG not in p.name]
    assert not strays, strays[:3]


def test_handlers_and_packages(synthesized: Synthesized) -> None:
    handlers = [f["Handler"] for f in _functions(synthesized).values()]
    packages = {h.split(".")[0] for h in handlers}
    assert {p: sum(h.startswith(f"{p}.") for h in handlers) for p in packages} == EXPECTED_PACKAGES
    assert all(h.endswith(".handler.lambda_handler") for h in handlers)


def test_runtime_architecture_tracing_logging(synthesized: Synthesized, context: dict[str, Any]) -> None:
    for function in _functions(synthesized).values():
        assert function["Runtime"] == RUNTIME.name
        assert function["Architectures"] == ["arm64"]
        assert function["TracingConfig"] == {"Mode": "Active"}
        logging = function["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        ((log_group, _),) = references(logging["LogGroup"])
        assert (
            synthesized.resources[log_group]["Properties"]["RetentionInDays"] == context["logRetentionDays"]
        )


def test_every_function_has_both_layers(synthesized: Synthesized) -> None:
    layers = synthesized.stack.layers
    expected = sorted([synthesized.logical_id(layers.deps), synthesized.logical_id(layers.core)])
    # The live updates' authorizer has a third, its own: token verification (PyJWT, cryptography).
    token_layer = synthesized.logical_id(synthesized.stack.live_updates.auth_layer)
    for function in _functions(synthesized).values():
        # No file lives in two layers, so their order in /opt does not matter.
        assert sorted(ref["Ref"] for ref in function["Layers"] if ref["Ref"] != token_layer) == expected
    for layer in synthesized.of_type("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == [RUNTIME.name]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_code_asset_holds_only_its_own_package(synthesized: Synthesized) -> None:
    for logical_id, function in _functions(synthesized).items():
        package = function["Handler"].split(".")[0]
        asset = synthesized.asset_dir(logical_id)
        assert [p.name for p in asset.iterdir()] == [package]
        files = [p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()]
        assert f"{package}/handler.py" in files
        # Bytecode for the runtime only (test_assets_carry_bytecode_the_runtime_loads), no other.
        assert not [f for f in files if f.endswith(".pyc") and bytecode.BYTECODE_TAG not in f]


def test_core_layer_holds_only_the_shared_library(synthesized: Synthesized) -> None:
    asset = synthesized.asset_dir(synthesized.logical_id(synthesized.stack.layers.core))
    assert [p.name for p in asset.iterdir()] == ["python"]
    assert [p.name for p in (asset / "python").iterdir()] == ["orders_core"]
    assert not [p for p in asset.rglob("*.pyc") if bytecode.BYTECODE_TAG not in p.name]


def test_dependencies_layer_holds_what_lambda_lacks_and_no_local_only_packages(
    synthesized: Synthesized,
) -> None:
    asset = synthesized.asset_dir(synthesized.logical_id(synthesized.stack.layers.deps))
    top_level = {p.name for p in (asset / "python").iterdir()}
    assert {"pydantic", "pydantic_core", "aws_lambda_powertools"} <= top_level
    # boto3 comes with the runtime; the rest serves the local run only.
    assert not top_level & {"boto3", "botocore", "moto", "jwt", "werkzeug", "orders_core", "bin"}
    # Built for Lambda (arm64, the runtime's Python), not for this machine.
    major, minor = layers_build.PYTHON_VERSION.split(".")
    binaries = [p.name for p in (asset / "python" / "pydantic_core").glob("*.so")]
    assert binaries and all(f"cpython-{major}{minor}-aarch64-linux-gnu" in b for b in binaries), binaries
