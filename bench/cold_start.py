"""Cold start: each function's handler import time against `import boto3` alone, and its size.

Each import runs in a fresh interpreter (`python -I -S -X importtime`) whose `sys.path` is what
Lambda gives the function (the approach of `tests/infra/test_canary.py`, rebuilt here without
synthesizing): the function's package (/var/task), the core layer (/opt/python), the
dependencies layer, and the runtime's boto3 and its dependencies; nothing from the repository
or the virtualenv's site-packages. The dependencies layer holds arm64 wheels: the same
distributions at the same versions are copied from the virtualenv so that this machine can
load them.

Two variants, as the median of several fresh processes each:

* **as deployed**: no bytecode. The assets exclude `__pycache__` and the layer is built with
  `--no-compile`, and Lambda's /var/task and /opt are read-only, so every cold start compiles
  every module of ours, Powertools and pydantic from source (`-B`, copies without caches).
* **with bytecode**: the same files compiled ahead (`compileall`), as a layer with `.pyc` ships.

The runtime's boto3 keeps its bytecode in both (Lambda's runtime ships it). Sizes are the
files Lambda unpacks: the function's package plus both layers, unzipped and zipped (deflate).

    .venv/bin/python -m bench.cold_start [--small] [--json PATH]
"""

from __future__ import annotations

import compileall
import io
import json
import os
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
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, section_main

PACKAGES = ("command_api", "query_api", "projections", "admin_api", "rebuild_worker")
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


def build_lambda_view(root: Path, *, bytecode: bool) -> dict[str, Any]:
    """/var/task per function, /opt/python, the deps layer and the runtime, under `root`."""
    for package in PACKAGES:
        _copy_tree(FUNCTIONS / package, root / "task" / package / package)
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
    if bytecode:
        for directory in (root / "task", root / "opt", deps):
            compileall.compile_dir(directory, quiet=1, workers=1)
    return {"opt": str(root / "opt" / "python"), "deps": str(deps), "runtime": str(runtime)}


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


def _run_probe(module: str, path: list[str], env: dict[str, str], cwd: Path, *, no_bytecode: bool) -> str:
    flags = ["-I", "-S", "-X", "importtime"] + (["-B"] if no_bytecode else [])
    result = subprocess.run(
        [sys.executable, *flags, "-c", _PROBE.format(module=module), json.dumps(path)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{result.stderr[-3000:]}")
    return result.stderr


def _startup_modules(cwd: Path) -> set[str]:
    stderr = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", "pass"],
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


def measure_imports(root: Path, view: dict[str, Any], runs: int, *, no_bytecode: bool) -> dict[str, Any]:
    startup = _startup_modules(root)
    layers = [view["opt"], view["deps"], view["runtime"]]
    results: dict[str, Any] = {}
    targets = [(package, f"{package}.handler") for package in PACKAGES] + [("boto3", "boto3")]
    samples: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name, _ in targets}
    for _ in range(runs):  # interleaved, so that a slow moment of the machine hits every target
        for name, module in targets:
            task = root / "task" / (name if name != "boto3" else PACKAGES[0])
            path = ([str(task)] if name != "boto3" else []) + layers
            stderr = _run_probe(module, path, _environment(name, task), root, no_bytecode=no_bytecode)
            samples[name].append(parse_importtime(stderr, startup))
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
        hidden = any(part == "__pycache__" or part.startswith(".") for part in relative.parts)
        if path.is_file() and not hidden and path.suffix != ".pyc":
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
    from infra import layers_build

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
    core = tree_size(CORE_LAYER, "python")
    functions = {}
    for package in PACKAGES:
        code = tree_size(FUNCTIONS / package, package)
        total_unzipped = code["unzipped"] + core["unzipped"] + (deps or {}).get("unzipped", 0)
        total_zipped = code["zipped"] + core["zipped"] + (deps or {}).get("zipped", 0)
        functions[package] = {"code": code, "total_unzipped": total_unzipped, "total_zipped": total_zipped}
    return {
        "core_layer": core,
        "deps_layer": deps,
        "deps_layer_distributions": layers_build.requirements(),
        "functions": functions,
        "lambda_unzipped_limit": LAMBDA_UNZIPPED_LIMIT,
        "note": note,
    }


def run(small: bool) -> dict[str, Any]:
    runs = SMALL_RUNS if small else FULL_RUNS
    started = time.perf_counter()
    results: dict[str, Any] = {"runs": runs}
    for variant, bytecode in (("as_deployed", False), ("with_bytecode", True)):
        with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
            root = Path(scratch)
            view = build_lambda_view(root, bytecode=bytecode)
            results[variant] = measure_imports(root, view, runs, no_bytecode=not bytecode)
    results["deps_layer_distributions"] = _deps_distributions()
    results["sizes"] = measure_sizes(small)
    results["python"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    results["measure_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
