"""Canary: each function's handler imports the way Lambda would import it.

Lambda's Python path is the function's code (/var/task), the layers' `python/` directories
(/opt/python) and the runtime (standard library + boto3). The test rebuilds exactly that from
the synthesized assets in a temp dir and imports `<package>.handler` in a fresh interpreter that
sees nothing else: not the repo's sources, not the virtualenv. A module the handler needs that is
missing from its asset or the layers (or PyJWT/moto/werkzeug sneaking in) fails here, not in AWS.

It runs on the runtime's own minor version (infra/bytecode.py finds the interpreter) and proves
the bytecode the assets carry is what that interpreter loads: every source file of ours is
replaced by one that raises, so a module compiled from source instead fails the import.

The dependencies layer holds arm64 binaries. On a machine that can load them they are used as
they are; elsewhere the runtime twin (infra/runtime_twin.py) stands in: the same distributions at
the same versions, built for this machine. Without an interpreter of the runtime's version the
canary runs on this one, with the layer's distributions from the virtualenv (ADR 13), and the
bytecode check is skipped, visibly.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from infra import auth_layer_build, bytecode
from infra.lambda_function import RUNTIME
from infra.runtime_twin import runtime_twin
from tests.infra.helpers import Synthesized

REPO = Path(__file__).resolve().parents[2]
# What the Lambda Python runtime brings besides the standard library.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
LOCAL_ONLY = ("moto", "jwt", "werkzeug", "orders_local", "flask")
PACKAGES = bytecode.FUNCTION_PACKAGES

_PROBE = """
import importlib, json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
started = time.perf_counter()
module = importlib.import_module(sys.argv[2] + ".handler")
elapsed = time.perf_counter() - started
assert callable(module.lambda_handler)
files = {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}
print(json.dumps({"files": files, "seconds": elapsed}))
"""


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _top_level_names(distribution: str) -> set[str]:
    dist = metadata.distribution(distribution)
    names = set()
    for file in dist.files or []:
        top = file.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__", "bin"):
            continue
        names.add(top[:-3] if top.endswith(".py") else top)
    return names


def _link_from_venv(names: set[str], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    site = _site_packages()
    for name in sorted(names):
        source = site / name if (site / name).exists() else site / f"{name}.py"
        assert source.exists(), f"{name} is not installed in the virtualenv"
        (target / source.name).symlink_to(source)


def _layer_loads_here() -> bool:
    return platform.machine() in ("aarch64", "arm64") and bytecode.runtime_python() is not None


def _deps_for_this_machine(layer_python: Path, target: Path) -> Path:
    """The dependencies layer's contents at the same versions, loadable by the canary's interpreter."""
    if _layer_loads_here():
        return layer_python
    twin = runtime_twin()
    if twin is not None:
        listed = {info.name for info in layer_python.glob("*.dist-info")}
        assert listed == {info.name for info in twin.deps.glob("*.dist-info")}, "twin and layer differ"
        return twin.deps
    names = set()
    for info in layer_python.glob("*.dist-info"):
        distribution, version = info.name[: -len(".dist-info")].rsplit("-", 1)
        assert metadata.version(distribution) == version, f"layer has {distribution} {version}"
        names |= _top_level_names(distribution)
    _link_from_venv(names, target)
    return target


def _lambda_view(synthesized: Synthesized, package: str, root: Path) -> tuple[list[str], dict[str, str]]:
    functions = synthesized.of_type("AWS::Lambda::Function")
    logical_id, function = next(
        (k, v) for k, v in functions.items() if v["Properties"]["Handler"].startswith(f"{package}.")
    )
    task = root / "var" / "task"
    shutil.copytree(synthesized.asset_dir(logical_id), task)
    opt = root / "opt"
    deps_layer = synthesized.logical_id(synthesized.stack.layers.deps)
    auth_layer = synthesized.logical_id(synthesized.stack.live_updates.auth_layer)
    for ref in function["Properties"]["Layers"]:
        if ref["Ref"] == auth_layer and not _layer_loads_here():
            # Its cryptography is built for arm64: the same distributions built for this machine.
            auth_twin = auth_layer_build.twin()
            assert auth_twin is not None, "no runtime interpreter to build the authorizer layer's twin"
            shutil.copytree(auth_twin, opt / "python", dirs_exist_ok=True)
        elif ref["Ref"] != deps_layer:
            shutil.copytree(synthesized.asset_dir(ref["Ref"]), opt, dirs_exist_ok=True)
    deps = _deps_for_this_machine(synthesized.asset_dir(deps_layer) / "python", root / "deps")
    twin = runtime_twin()
    if twin is not None:
        runtime = twin.runtime
    else:
        runtime = root / "runtime"
        _link_from_venv(set().union(*(_top_level_names(d) for d in RUNTIME_DISTRIBUTIONS)), runtime)

    environment = {
        name: value if isinstance(value, str) else f"canary-{name.lower()}"
        for name, value in function["Properties"]["Environment"]["Variables"].items()
    }
    environment.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="canary",
        AWS_SECRET_ACCESS_KEY="canary",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # any AWS call at import time fails fast
        AWS_LAMBDA_FUNCTION_NAME=f"canary-{package}",
        LAMBDA_TASK_ROOT=str(task),
    )
    return [str(task), str(opt / "python"), str(deps), str(runtime)], environment


def _poison_sources(*directories: Path) -> int:
    """Replace every source file that has bytecode for the runtime with one that raises."""
    poisoned = 0
    for directory in directories:
        for source in directory.rglob("*.py"):
            compiled = source.parent / "__pycache__" / f"{source.stem}.{bytecode.BYTECODE_TAG}.pyc"
            assert compiled.is_file(), f"{source} ships without bytecode for {bytecode.BYTECODE_TAG}"
            source.write_text('raise ImportError("compiled from source: its bytecode was not used")\n')
            poisoned += 1
    return poisoned


@pytest.mark.parametrize("package", PACKAGES)
def test_handler_imports_as_on_lambda(synthesized: Synthesized, package: str, tmp_path: Path) -> None:
    path, environment = _lambda_view(synthesized, package, tmp_path)
    python = bytecode.runtime_python()
    if python is not None:
        assert _poison_sources(tmp_path / "var" / "task", tmp_path / "opt") > 50
    # -I: ignore PYTHON* variables and the user site; -S: no site module, so neither the
    # virtualenv's site-packages nor the editable install's path hooks are on sys.path.
    result = subprocess.run(
        [str(python or sys.executable), "-I", "-S", "-c", _PROBE, json.dumps(path), package],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    files: dict[str, str | None] = report["files"]

    assert files[f"{package}.handler"] == str(tmp_path / "var/task" / package / "handler.py")
    assert str(files["orders_core"]).startswith(str(tmp_path / "opt/python/orders_core"))
    # The authorizer verifies Cognito's tokens with PyJWT, from a layer of its own (ADR 14).
    local_only = [n for n in LOCAL_ONLY if not (package == "live_authorizer" and n == "jwt")]
    assert not [n for n in files if n.split(".")[0] in local_only], "local-only packages imported"
    twin = runtime_twin()
    stand_ins = (str(twin.deps), str(twin.runtime)) if twin is not None else ()
    from_repo = [f for f in files.values() if f and f.startswith(str(REPO)) and not f.startswith(stand_ins)]
    assert not from_repo, "imported from the repo"


def test_the_canary_runs_on_the_runtime_python() -> None:
    python = bytecode.runtime_python()
    if python is None:
        if bytecode.require_bytecode():
            pytest.fail(f"no Python {bytecode.PYTHON_VERSION} here, and {bytecode.REQUIRE_VARIABLE} is set")
        pytest.skip(f"no Python {bytecode.PYTHON_VERSION} on this machine: the canary ran on this one")
    version = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"python{version}" == RUNTIME.name
