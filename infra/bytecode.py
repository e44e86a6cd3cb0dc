"""Bytecode the Lambda runtime's interpreter will use, compiled ahead on this machine.

Lambda's code directories (/var/task, /opt) are read-only: a function that ships only sources
compiles every module it imports at every cold start, and a `.pyc` written by another Python
minor version is ignored (its magic number differs). So the assets carry `__pycache__/*.pyc`
compiled by an interpreter of the runtime's own minor version (`PYTHON_VERSION`), in
`unchecked-hash` mode: CDK zips assets with fixed timestamps, so a timestamp-checked `.pyc` would
never match its source and would be compiled again; an unchecked one is used as it is, and the
staged copy is rebuilt whenever a source changes (ADR 13).

Our own code is staged under build/assets (functions and the core layer, sources + bytecode);
the dependencies layer is compiled where it is built (infra/layers_build.py). A machine without
such an interpreter builds the same assets without bytecode and says so.

    python -m infra.bytecode     # which interpreter compiles, and stage our code
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The Lambda runtime (infra/lambda_function.py checks RUNTIME against it; ADR 13 says why 3.13).
PYTHON_VERSION = "3.13"
BYTECODE_TAG = "cpython-" + PYTHON_VERSION.replace(".", "")
INTERPRETER_VARIABLE = "ORDERS_RUNTIME_PYTHON"
# CI sets it: there, assets without bytecode are an error, not a fallback.
REQUIRE_VARIABLE = "ORDERS_REQUIRE_BYTECODE"

FUNCTIONS_DIR = ROOT / "functions"
# Every function's package under functions/, as the stack deploys them (tests/infra checks the list).
FUNCTION_PACKAGES = (
    "command_api",
    "query_api",
    "projections",
    "admin_api",
    "rebuild_worker",
    "integration_publisher",
    "live_api",
    "live_notifier",
    "live_authorizer",
)
CORE_SOURCES = ROOT / "layers" / "core" / "python"
STAGED_DIR = ROOT / "build" / "assets"
STAGED_FUNCTIONS = STAGED_DIR / "functions"
STAGED_CORE_LAYER = STAGED_DIR / "core"  # holds python/orders_core, Lambda's layer layout
_STAMP = STAGED_DIR / "stamp.json"


class NoRuntimeInterpreter(RuntimeError):
    """No interpreter of the runtime's version here, and bytecode is required."""


def _version_of(executable: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _candidates() -> list[str]:
    found = [os.environ.get(INTERPRETER_VARIABLE, "")]
    found.append(shutil.which(f"python{PYTHON_VERSION}") or "")
    # pyenv keeps versions that its shims do not expose unless selected; take the newest patch.
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    pattern = f"{pyenv_root}/versions/{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}"
    found += sorted(glob.glob(pattern), reverse=True)
    found.append(f"/usr/bin/python{PYTHON_VERSION}")
    if sys.version_info[:2] == tuple(int(p) for p in PYTHON_VERSION.split(".")):
        found.insert(0, sys.executable)
    return [c for c in found if c]


@functools.cache
def runtime_python() -> Path | None:
    """An interpreter of the runtime's minor version on this machine, or None."""
    for candidate in _candidates():
        if _version_of(candidate) == PYTHON_VERSION:
            return Path(candidate)
    return None


def require_bytecode() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0", "false")


def compiler() -> Path | None:
    """The interpreter that compiles; None (assets without bytecode) only where that is allowed."""
    python = runtime_python()
    if python is None and require_bytecode():
        raise NoRuntimeInterpreter(
            f"no Python {PYTHON_VERSION} found ({INTERPRETER_VARIABLE}, python{PYTHON_VERSION} on PATH, "
            f"pyenv) and {REQUIRE_VARIABLE} is set: the assets would ship without bytecode"
        )
    return python


def compile_tree(directory: Path, python: Path) -> None:
    command = [str(python), "-I", "-m", "compileall", "-q", "-j", "0"]
    subprocess.run([*command, "--invalidation-mode", "unchecked-hash", str(directory)], check=True)


def _sources_digest(tag: str | None) -> str:
    digest = hashlib.sha256(json.dumps({"bytecode": tag}).encode())
    for base in (FUNCTIONS_DIR, CORE_SOURCES):
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(ROOT)
            if not path.is_file() or any(p == "__pycache__" or p.startswith(".") for p in relative.parts):
                continue
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Held while one process builds something under build/ that others may be building too."""
    directory = ROOT / "build"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def stage_code() -> str | None:
    """Copy the functions and the core layer into build/assets and compile them; cached while the
    sources are unchanged. Returns the bytecode tag, or None when nothing could compile it."""
    python = compiler()
    tag = BYTECODE_TAG if python is not None else None
    digest = _sources_digest(tag)
    # Test workers and a `make synth` may stage at once: one stages, the others find it current.
    with build_lock("assets"):
        if _STAMP.is_file() and json.loads(_STAMP.read_text()).get("digest") == digest:
            return tag
        _stage(python, tag, digest)
    return tag


def _stage(python: Path | None, tag: str | None, digest: str) -> None:
    with tempfile.TemporaryDirectory(dir=STAGED_DIR.parent, prefix=".assets-") as scratch:
        fresh = Path(scratch) / "assets"
        shutil.copytree(FUNCTIONS_DIR, fresh / "functions", ignore=_IGNORE)
        shutil.copytree(CORE_SOURCES, fresh / "core" / "python", ignore=_IGNORE)
        if python is not None:
            compile_tree(fresh, python)
        (fresh / "stamp.json").write_text(json.dumps({"digest": digest, "bytecode": tag}) + "\n")
        if STAGED_DIR.exists():
            shutil.rmtree(STAGED_DIR)
        fresh.rename(STAGED_DIR)


def main() -> int:
    python = runtime_python()
    found = python or "not found on this machine: the assets ship without bytecode"
    print(f"runtime Python {PYTHON_VERSION}: {found}")
    tag = stage_code()
    print(f"{STAGED_DIR.relative_to(ROOT)}: staged ({tag or 'sources only'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
