"""Builds the third-party dependencies layer without Docker.

`pip install --platform ... --only-binary=:all:` fetches the wheels Lambda's runtime (arm64, the
runtime's Python version) can load, whatever machine builds them; an interpreter of that version
then compiles them (infra/bytecode.py), so cold starts load bytecode instead of compiling. The
layer holds what the functions import beyond the standard library and the runtime's own boto3:
pydantic and Powertools, pinned to the versions installed in this virtualenv, so Lambda runs what
the tests ran.

The build is cached: a stamp beside the layer records what it was built from, and a second run
with the same inputs touches nothing (and needs no network), so `make synth` works offline once
the layer exists. This module imports no aws_cdk: the Makefile runs it before the CDK is needed.

    python -m infra.layers_build            # build if missing or stale
    python -m infra.layers_build --check    # exit 1 if missing or stale, build nothing
    python -m infra.layers_build --force    # rebuild
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from infra import bytecode
from infra.bytecode import BYTECODE_TAG, PYTHON_VERSION, compile_tree, compiler

# Lambda runs the functions on Graviton.
PLATFORM = "manylinux2014_aarch64"

# Imported by the functions and not provided by the Lambda runtime (which brings boto3).
# PyJWT, werkzeug and moto serve the local run only and never reach Lambda.
DEPS_DISTRIBUTIONS = ("pydantic", "aws-lambda-powertools")

ROOT = Path(__file__).resolve().parent.parent
CORE_LAYER_DIR = ROOT / "layers" / "core"
DEPS_LAYER_DIR = ROOT / "build" / "layers" / "deps"
DEPS_STAMP = ROOT / "build" / "layers" / "deps.json"


@dataclass(frozen=True)
class LayerBuild:
    """A layer of third-party wheels for Lambda's arm64 and Python version, pinned to this
    virtualenv's versions, compiled by the runtime's interpreter, cached behind a stamp."""

    name: str
    distributions: tuple[str, ...]
    platforms: tuple[str, ...]  # pip's --platform tags, most specific first
    layer_dir: Path
    stamp: Path

    def requirements(self) -> list[str]:
        """The layer's requirements, pinned to the versions this virtualenv runs."""
        pinned = []
        for name in self.distributions:
            try:
                pinned.append(f"{name}=={metadata.version(name)}")
            except metadata.PackageNotFoundError:
                pinned.append(name)
        return pinned

    def build_inputs(self) -> dict[str, Any]:
        python = compiler()
        return {
            "python_version": PYTHON_VERSION,
            "platforms": list(self.platforms),
            "requirements": self.requirements(),
            "bytecode": None if python is None else BYTECODE_TAG,
        }

    def is_current(self, layer_dir: Path | None = None, stamp: Path | None = None) -> bool:
        layer_dir, stamp = layer_dir or self.layer_dir, stamp or self.stamp
        if not (layer_dir / "python").is_dir() or not stamp.is_file():
            return False
        try:
            return bool(json.loads(stamp.read_text()) == self.build_inputs())
        except ValueError:
            return False

    def pip_command(self, target: Path) -> list[str]:
        platforms = [argument for platform in self.platforms for argument in ("--platform", platform)]
        return [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            *platforms, "--implementation", "cp", "--python-version", PYTHON_VERSION,
            "--only-binary=:all:", "--no-compile", "--target", str(target / "python"),
            *self.requirements(),
        ]  # fmt: skip

    def build(self, *, force: bool = False, layer_dir: Path | None = None, stamp: Path | None = None) -> bool:
        """Build the layer unless it is current. Returns whether it built."""
        layer_dir, stamp = layer_dir or self.layer_dir, stamp or self.stamp
        if not force and self.is_current(layer_dir, stamp):
            return False
        layer_dir.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the target and swap it in, so an interrupted build never leaves half a layer.
        with (
            bytecode.build_lock(f"{self.name}-layer"),
            tempfile.TemporaryDirectory(dir=layer_dir.parent, prefix=f".{self.name}-") as scratch,
        ):
            fresh = Path(scratch) / "layer"
            subprocess.run(self.pip_command(fresh), check=True)
            # Console scripts are useless in a layer (and name the build machine's interpreter).
            shutil.rmtree(fresh / "python" / "bin", ignore_errors=True)
            python = compiler()
            if python is not None:
                compile_tree(fresh / "python", python)
            if layer_dir.exists():
                shutil.rmtree(layer_dir)
            fresh.rename(layer_dir)
            stamp.write_text(json.dumps(self.build_inputs(), indent=2) + "\n")
        return True

    def command_line(self, argv: list[str] | None, description: str, after_build: Callable[[], int]) -> int:
        """A layer build module's ``main``: ``--check`` (exit 1 when missing or stale), or build it
        unless current (``--force``: anyway), then ``after_build()``."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--force", action="store_true", help="rebuild even if the layer is current")
        parser.add_argument("--check", action="store_true", help="only check; exit 1 if missing or stale")
        args = parser.parse_args(argv)
        relative = self.layer_dir.relative_to(ROOT)
        if args.check:
            current = self.is_current()
            print(f"{relative}: {'current' if current else 'missing or stale'}")
            return 0 if current else 1
        built = self.build(force=args.force)
        print(
            f"{relative}: {'built' if built else 'current, not rebuilt'} ({', '.join(self.requirements())})"
        )
        return after_build()


DEPS = LayerBuild("deps", DEPS_DISTRIBUTIONS, (PLATFORM,), DEPS_LAYER_DIR, DEPS_STAMP)
requirements = DEPS.requirements
build_inputs = DEPS.build_inputs
is_current = DEPS.is_current
pip_command = DEPS.pip_command
build = DEPS.build


def main(argv: list[str] | None = None) -> int:
    # The functions' and the core layer's bytecode is staged with the layer it runs beside.
    return DEPS.command_line(argv, __doc__.splitlines()[0], after_build=bytecode.main)


if __name__ == "__main__":
    raise SystemExit(main())
