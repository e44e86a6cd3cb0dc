"""Builds the token-verification layer of the live updates' $connect authorizer, without Docker.

WebSocket APIs take only Lambda REQUEST authorizers (no JWT authorizer as the HTTP API has), so
the authorizer verifies Cognito's RS256 tokens itself, with PyJWT and `cryptography` (ADR 14).
Only that function gets this layer: the others never verify a token. Built as the dependencies
layer is (infra/layers_build.py): wheels for Lambda's arm64 and Python version, pinned to this
virtualenv's versions, compiled by the runtime's interpreter (infra/bytecode.py), cached behind a
stamp. `cryptography` ships abi3 wheels for glibc 2.28 and 2.34 on aarch64; Lambda's python3.13
runs on Amazon Linux 2023 (glibc 2.34).

    python -m infra.auth_layer_build            # build if missing or stale
    python -m infra.auth_layer_build --check    # exit 1 if missing or stale

`twin()` installs the same distributions for this machine (the runtime interpreter, like
infra/runtime_twin.py does for the dependencies layer) for the layer canary: arm64 binaries do not
load on x86_64.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from infra import bytecode
from infra.bytecode import BYTECODE_TAG
from infra.layers_build import LayerBuild
from infra.runtime_twin import install_for_this_machine

# glibc versions the wheels may need, newest first: what Amazon Linux 2023 provides, and older.
PLATFORMS = ("manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64")
DISTRIBUTIONS = ("PyJWT", "cryptography", "cffi", "pycparser")

ROOT = bytecode.ROOT
AUTH_LAYER_DIR = ROOT / "build" / "layers" / "auth"
AUTH_STAMP = ROOT / "build" / "layers" / "auth.json"
TWIN_DIR = ROOT / "build" / "runtime-twin" / BYTECODE_TAG / "auth"


AUTH = LayerBuild("auth", DISTRIBUTIONS, PLATFORMS, AUTH_LAYER_DIR, AUTH_STAMP)
# Pinned to the versions this virtualenv runs: its local tokens and the tests verify with the same PyJWT.
requirements = AUTH.requirements
build_inputs = AUTH.build_inputs
is_current = AUTH.is_current
pip_command = AUTH.pip_command
build = AUTH.build


def twin() -> Path | None:
    """The layer's distributions for this machine and the runtime's Python (`python/`-less), or
    None without a runtime interpreter."""
    python = bytecode.runtime_python()
    if python is None:
        return None
    stamp = TWIN_DIR.parent / "auth-inputs.json"
    inputs = {"python": str(python), "requirements": requirements()}
    with bytecode.build_lock("auth-twin"):
        if not (stamp.is_file() and TWIN_DIR.is_dir() and json.loads(stamp.read_text()) == inputs):
            if TWIN_DIR.exists():
                shutil.rmtree(TWIN_DIR)
            install_for_this_machine(python, requirements(), TWIN_DIR)
            stamp.write_text(json.dumps(inputs, indent=2) + "\n")
    return TWIN_DIR


def main(argv: list[str] | None = None) -> int:
    return AUTH.command_line(argv, (__doc__ or "").splitlines()[0], after_build=lambda: 0)


if __name__ == "__main__":
    raise SystemExit(main())
