"""What Lambda's Python runtime and the dependencies layer hold, in a form this machine can load.

The dependencies layer carries arm64 binaries (pydantic-core) and the runtime brings its own
boto3: neither loads here as it is. The twin installs the same distributions at the same versions
for this machine, with the runtime's interpreter (infra/bytecode.py), and compiles them as the
layer is compiled, so that the layer canary (tests/infra/test_canary.py) and the cold-start
benchmark (bench/cold_start.py) import the functions as Lambda does, on the runtime's Python.

Built once into build/runtime-twin/<tag> (needs the package registry the first time) and kept
while its inputs are unchanged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from infra import bytecode, layers_build

# What the Lambda Python runtime brings besides the standard library.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
TWIN_DIR = bytecode.ROOT / "build" / "runtime-twin"


@dataclass(frozen=True)
class RuntimeTwin:
    python: Path
    deps: Path  # the dependencies layer's `python/` directory, for this machine
    runtime: Path  # boto3 and what it needs, as the runtime has them

    @property
    def version(self) -> str:
        return bytecode.PYTHON_VERSION


def _runtime_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in RUNTIME_DISTRIBUTIONS]


def install_for_this_machine(python: Path, requirements: list[str], target: Path) -> None:
    """Wheels for this machine and ``python``, compiled as the layers are."""
    subprocess.run(
        [
            str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--root-user-action=ignore", "--only-binary=:all:", "--no-compile", "--target", str(target),
            *requirements,
        ],
        check=True,
    )  # fmt: skip
    shutil.rmtree(target / "bin", ignore_errors=True)
    bytecode.compile_tree(target, python)


def runtime_twin() -> RuntimeTwin | None:
    """The twin, built if missing or stale; None when this machine has no runtime interpreter."""
    python = bytecode.runtime_python()
    if python is None:
        return None
    home = TWIN_DIR / bytecode.BYTECODE_TAG
    inputs = {"python": str(python), "deps": layers_build.requirements(), "runtime": _runtime_requirements()}
    stamp = home / "inputs.json"
    with bytecode.build_lock("runtime-twin"):
        if not (stamp.is_file() and json.loads(stamp.read_text()) == inputs):
            _build(python, inputs, home)
    return RuntimeTwin(python=python, deps=home / "deps", runtime=home / "runtime")


def _build(python: Path, inputs: dict[str, Any], home: Path) -> None:
    TWIN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TWIN_DIR, prefix=".twin-") as scratch:
        fresh = Path(scratch) / "twin"
        install_for_this_machine(python, inputs["deps"], fresh / "deps")
        # Same versions as the virtualenv's; the runtime's exact boto3 differs by region and date.
        install_for_this_machine(python, inputs["runtime"], fresh / "runtime")
        (fresh / "inputs.json").write_text(json.dumps(inputs, indent=2) + "\n")
        if home.exists():
            shutil.rmtree(home)
        fresh.rename(home)
