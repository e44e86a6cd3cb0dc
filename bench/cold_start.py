"""Cold start: each function's handler import time against `import boto3` alone, and its size.

Each import runs in a fresh interpreter (`python -I -S -X importtime`) whose `sys.path` is what
Lambda gives the function: the function's package (/var/task), the core layer (/opt/python), the
dependencies layer, and the runtime's boto3 and its dependencies; nothing from the repository or
the virtualenv's site-packages. The interpreter is the runtime's own minor version when this
machine has one (infra/bytecode.py), and the code is what the assets ship: our code as staged in
build/assets, the dependencies and the runtime's boto3 from the runtime twin (the same
distributions at the same versions, loadable here: infra/runtime_twin.py). Without such an
interpreter it falls back to this one, with copies from the virtualenv, and says so.

Two variants, as the median of several fresh processes each, interleaved:

* **as deployed**: with the bytecode the assets carry (compiled by the runtime's Python).
* **without bytecode**: the same files without `.pyc` (`-B`): what a cold start costs when
  nothing ships bytecode and /var/task and /opt are read-only, so every module compiles.

The runtime's boto3 keeps its bytecode in both. Sizes are the files Lambda unpacks: the
function's package plus both layers, bytecode included, unzipped and zipped (deflate).

    .venv/bin/python -m bench.cold_start [--small] [--json PATH]
"""

from __future__ import annotations

import compileall
import dataclasses
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, section_main
from infra.bytecode import FUNCTION_PACKAGES

PACKAGES = FUNCTION_PACKAGES
# Functions with a layer of their own beyond the two every function has (ADR 14).
AUTHORIZER = "live_authorizer"
# What the Lambda Python runtime brings besides the standard library (as tests/infra/test_canary.py).
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
FULL_RUNS, SMALL_RUNS = 7, 2
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function + layers, unzipped
FUNCTIONS = ROOT / "functions"
CORE_LAYER = ROOT / "layers" / "core" / "python"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")

# Where import time goes, by the top-level package of each module (self time, all depths).
GROUPS = {
    "boto3": "boto3 + botocore",
    "botocore": "boto3 + botocore",
    "s3transfer": "boto3 + botocore",
    "jmespath": "boto3 + botocore",
    "dateutil": "boto3 + botocore",
    "urllib3": "boto3 + botocore",
    "six": "boto3 + botocore",
    "aws_lambda_powertools": "Powertools",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "typing_extensions": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "orders_core": "ours",
    "jwt": "PyJWT + cryptography",
    "cryptography": "PyJWT + cryptography",
    "cffi": "PyJWT + cryptography",
    "_cffi_backend": "PyJWT + cryptography",
    **{package: "ours" for package in PACKAGES},
}


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _top_level_names(distribution: str) -> set[str]:
    names = set()
    for file in metadata.distribution(distribution).files or []:
        top = file.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__", "bin"):
            continue
        names.add(top[:-3] if top.endswith(".py") else top)
    return names


def _deps_distributions() -> list[str]:
    """The dependencies layer's distributions: from its dist-infos when built, else the closure of
    what infra/layers_build.py puts in it, from this virtualenv's metadata."""
    from infra import layers_build

    layer = layers_build.DEPS_LAYER_DIR / "python"
    if layer.is_dir():
        return sorted(info.name[: -len(".dist-info")].rsplit("-", 1)[0] for info in layer.glob("*.dist-info"))
    seen: set[str] = set()
    pending = list(layers_build.DEPS_DISTRIBUTIONS)
    while pending:
        name = pending.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            pending.append(re.split(r"[;\[<>=!~ (]", requirement, maxsplit=1)[0])
    return sorted(seen)


def _copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=_IGNORE, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


@dataclass(frozen=True)
class LambdaView:
    """What a function's `sys.path` holds on Lambda, and the interpreter that imports it."""

    python: str
    tasks: dict[str, Path]  # /var/task of each function package (the directory that holds it)
    opt: Path
    deps: Path
    runtime: Path
    own_layers: dict[str, Path] = dataclasses.field(default_factory=dict)  # by function package

    @property
    def layers(self) -> list[str]:
        return [str(self.opt), str(self.deps), str(self.runtime)]


def _interpreter_version(python: str) -> str:
    return subprocess.run(
        [python, "-I", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def deployed_view(root: Path) -> tuple[LambdaView, dict[str, Any]]:
    """The assets as they ship, on the runtime's Python; on this interpreter if there is none."""
    from infra import auth_layer_build, bytecode
    from infra.runtime_twin import runtime_twin

    twin = runtime_twin()
    tag = bytecode.stage_code()
    if twin is not None and tag is not None:
        tasks = {}
        for package in PACKAGES:
            (root / "task" / package).mkdir(parents=True)
            (root / "task" / package / package).symlink_to(bytecode.STAGED_FUNCTIONS / package)
            tasks[package] = root / "task" / package
        core = bytecode.STAGED_CORE_LAYER / "python"
        view = LambdaView(str(twin.python), tasks, core, twin.deps, twin.runtime)
        auth_twin = auth_layer_build.twin()  # its cryptography for this machine, as the layer's
        if auth_twin is not None:
            view.own_layers[AUTHORIZER] = auth_twin
        matches = True
    else:
        view = _view_from_virtualenv(root)
        tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
        matches = False
    about = {
        "python": _interpreter_version(view.python),
        "runtime": f"python{bytecode.PYTHON_VERSION}",
        "matches_runtime": matches,
        "bytecode": tag,
    }
    return view, about


def _view_from_virtualenv(root: Path) -> LambdaView:
    """Without the runtime's Python: copies from this virtualenv, compiled by this interpreter."""
    tasks = {}
    for package in PACKAGES:
        _copy_tree(FUNCTIONS / package, root / "task" / package / package)
        tasks[package] = root / "task" / package
    _copy_tree(CORE_LAYER, root / "opt" / "python")
    deps = root / "deps"
    deps.mkdir()
    site = _site_packages()
    for distribution in _deps_distributions():
        if distribution.lower() in {d.lower() for d in RUNTIME_DISTRIBUTIONS}:
            continue  # the runtime has it already (jmespath): Lambda puts the layer first, same code
        for name in _top_level_names(distribution):
            source = site / name if (site / name).exists() else site / f"{name}.py"
            _copy_tree(source, deps / source.name)
    runtime = root / "runtime"
    runtime.mkdir()
    for distribution in RUNTIME_DISTRIBUTIONS:
        for name in _top_level_names(distribution):
            source = site / name if (site / name).exists() else site / f"{name}.py"
            if source.exists():
                (runtime / source.name).symlink_to(source)  # the runtime's own, with its bytecode
    for directory in (root / "task", root / "opt", deps):
        compileall.compile_dir(directory, quiet=1, workers=1)
    return LambdaView(sys.executable, tasks, root / "opt" / "python", deps, runtime)


def without_bytecode(view: LambdaView, root: Path) -> LambdaView:
    """The same code with every `.pyc` left out (the runtime's boto3 keeps its own)."""
    tasks = {}
    for package, task in view.tasks.items():
        _copy_tree(task / package, root / "task" / package / package)
        tasks[package] = root / "task" / package
    _copy_tree(view.opt, root / "opt" / "python")
    _copy_tree(view.deps, root / "deps")
    own_layers = {}
    for package, layer in view.own_layers.items():
        _copy_tree(layer, root / "own" / package)
        own_layers[package] = root / "own" / package
    return LambdaView(view.python, tasks, root / "opt" / "python", root / "deps", view.runtime, own_layers)


def _environment(package: str, task: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # any AWS call at import time fails fast
        "AWS_LAMBDA_FUNCTION_NAME": f"bench-{package}",
        "LAMBDA_TASK_ROOT": str(task),
        "POWERTOOLS_SERVICE_NAME": f"bench-{package}",
        "POWERTOOLS_METRICS_NAMESPACE": "Orders",
        "PROJECTION_NAME": "customer_orders",
    }


_PROBE = "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); import {module}"


def parse_importtime(stderr: str, startup: set[str]) -> tuple[float, dict[str, float]]:
    """Milliseconds the probe's imports took (the cumulative time of each top-level import that
    the bare interpreter does not do), and self time by package group (every depth)."""
    total_us = 0
    groups: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_field, cumulative_field, raw_name = line.removeprefix("import time:").split("|")
        module = raw_name.strip()
        top_level = len(raw_name) - len(raw_name.lstrip(" ")) <= 1
        if top_level and module in startup:
            continue
        if top_level:
            total_us += int(cumulative_field)
        groups[GROUPS.get(module.split(".")[0], "standard library & other")] += int(self_field)
    return total_us / 1000, {name: round(us / 1000, 1) for name, us in groups.items()}


def _run_probe(
    python: str, module: str, path: list[str], env: dict[str, str], cwd: Path, *, no_bytecode: bool
) -> str:
    flags = ["-I", "-S", "-X", "importtime"] + (["-B"] if no_bytecode else [])
    result = subprocess.run(
        [python, *flags, "-c", _PROBE.format(module=module), json.dumps(path)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{result.stderr[-3000:]}")
    return result.stderr


def _startup_modules(python: str, cwd: Path) -> set[str]:
    stderr = subprocess.run(
        [python, "-I", "-S", "-X", "importtime", "-c", "pass"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return {
        line.split("|")[2].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "cumulative" not in line
    }


Samples = dict[str, list[tuple[float, dict[str, float]]]]
TARGETS = [(package, f"{package}.handler") for package in PACKAGES] + [("boto3", "boto3")]


def measure_imports(variants: dict[str, LambdaView], cwd: Path, runs: int) -> dict[str, dict[str, Any]]:
    """Every handler and `import boto3` in each variant; runs interleaved across targets and
    variants, so that a slow moment of the machine hits all of them alike."""
    startup = {name: _startup_modules(view.python, cwd) for name, view in variants.items()}
    measurable = [
        (name, module)
        for name, module in TARGETS
        if name != AUTHORIZER or all(AUTHORIZER in v.own_layers for v in variants.values())
    ]
    samples: dict[str, Samples] = {name: {t: [] for t, _ in measurable} for name in variants}
    for _ in range(runs):
        for variant, view in variants.items():
            for name, module in measurable:
                task = view.tasks[name if name != "boto3" else PACKAGES[0]]
                own = [str(view.own_layers[name])] if name in view.own_layers else []
                path = ([str(task)] if name != "boto3" else []) + own + view.layers
                environment = _environment(name, task)
                bare = variant != "as_deployed"
                stderr = _run_probe(view.python, module, path, environment, cwd, no_bytecode=bare)
                samples[variant][name].append(parse_importtime(stderr, startup[variant]))
    return {variant: _medians(measured) for variant, measured in samples.items()}


def _medians(samples: Samples) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, measured in samples.items():
        totals = [total for total, _ in measured]
        median = statistics.median(totals)
        middle = min(measured, key=lambda m: abs(m[0] - median))
        results[name] = {
            "median_ms": round(median, 1),
            "min_ms": round(min(totals), 1),
            "max_ms": round(max(totals), 1),
            "by_package_ms": dict(sorted(middle[1].items(), key=lambda kv: -kv[1])),
        }
    return results


def _files(directory: Path) -> Iterable[Path]:
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            yield path


def tree_size(directory: Path, prefix: str) -> dict[str, int]:
    """Unzipped bytes, and the bytes of a deflate zip of it (files under `prefix/` in the zip)."""
    buffer = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(directory):
            unzipped += path.stat().st_size
            archive.write(path, f"{prefix}/{path.relative_to(directory)}")
    return {"unzipped": unzipped, "zipped": len(buffer.getvalue())}


def measure_sizes(small: bool) -> dict[str, Any]:
    from infra import auth_layer_build, bytecode, layers_build

    note = ""
    deps: dict[str, int] | None = None
    if not layers_build.is_current():
        if small:
            note = (
                "the dependencies layer is not built (build/layers/deps): sizes without it; run `make layers`"
            )
        else:
            try:
                layers_build.build()
            except (OSError, subprocess.CalledProcessError) as error:
                note = f"the dependencies layer could not be built ({error}): sizes without it"
    if layers_build.is_current():
        deps = tree_size(layers_build.DEPS_LAYER_DIR / "python", "python")
    # The authorizer's own layer (PyJWT and cryptography) comes on top of the two every function has.
    auth = (
        tree_size(auth_layer_build.AUTH_LAYER_DIR / "python", "python")
        if auth_layer_build.is_current()
        else None
    )
    if auth is None:
        note = "; ".join(filter(None, [note, "the authorizer's layer is not built: its size is left out"]))
    bytecode.stage_code()
    core = tree_size(bytecode.STAGED_CORE_LAYER / "python", "python")
    functions = {}
    for package in PACKAGES:
        code = tree_size(bytecode.STAGED_FUNCTIONS / package, package)
        own = (auth or {}) if package == AUTHORIZER else {}
        parts = (code, core, deps or {}, own)
        functions[package] = {
            "code": code,
            "total_unzipped": sum(part.get("unzipped", 0) for part in parts),
            "total_zipped": sum(part.get("zipped", 0) for part in parts),
        }
    return {
        "core_layer": core,
        "deps_layer": deps,
        "auth_layer": auth,
        "deps_layer_distributions": layers_build.requirements(),
        "functions": functions,
        "lambda_unzipped_limit": LAMBDA_UNZIPPED_LIMIT,
        "note": note,
    }


def run(small: bool) -> dict[str, Any]:
    runs = SMALL_RUNS if small else FULL_RUNS
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        root = Path(scratch)
        deployed, about = deployed_view(root / "deployed")
        bare = without_bytecode(deployed, root / "bare")
        measured = measure_imports({"as_deployed": deployed, "without_bytecode": bare}, root, runs)
    results: dict[str, Any] = {"runs": runs, **measured, **about}
    results["machine"] = platform.machine()
    results["deps_layer_distributions"] = _deps_distributions()
    results["sizes"] = measure_sizes(small)
    results["measure_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
