"""Run every benchmark, write bench/results.json and docs/performance.md.

    .venv/bin/python -m bench                  # everything at full size (make bench)
    .venv/bin/python -m bench --small          # the fast version CI runs (make bench-small);
                                               # writes build/bench-small/ unless told otherwise
    .venv/bin/python -m bench --only e2e       # re-run some sections, keep the others' results
    .venv/bin/python -m bench.render           # re-render docs/performance.md from results.json

Each section runs in a fresh interpreter (its own moto, its own memory: moto never frees a
table's copies), its output logged under build/bench-logs/. A section that fails is recorded
as failed, the others still run, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cost_model, render
from bench.common import ROOT, environment

RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "performance.md"
SMALL_DIR = ROOT / "build" / "bench-small"
LOGS = ROOT / "build" / "bench-logs"


@dataclass(frozen=True)
class Section:
    key: str
    module: str
    title: str
    # Count-only sections may share the machine with another in --small; timed ones may not.
    timed: bool

    def command(self, small: bool, output: Path) -> list[str]:
        flags = ["--small"] if small else []
        if self.module == "bench.aggregate_load":
            return [sys.executable, "-m", self.module, *flags, "--output", str(output)]
        return [sys.executable, "-m", self.module, *flags, "--json", str(output)]


SECTIONS = (
    Section("commands", "bench.command_cost", "Requests and capacity per command", timed=False),
    Section("aggregate_load", "bench.aggregate_load", "Aggregate load", timed=False),
    Section("projections", "bench.projection_cost", "Projection cost", timed=False),
    Section("cold_start", "bench.cold_start", "Cold start", timed=True),
    Section("e2e", "bench.e2e", "Local end-to-end throughput", timed=True),
    Section("rebuild", "bench.rebuild_throughput", "Rebuild throughput", timed=False),
)


def run_section(section: Section, small: bool, timeout: float) -> tuple[dict[str, Any] | None, float, str]:
    """The section's results (None if it failed), its seconds, and where its log is."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{section.key}{'-small' if small else ''}.log"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"bench-{section.key}-") as scratch:
        output = Path(scratch) / "results.json"
        with log.open("w", encoding="utf-8") as sink:
            try:
                completed = subprocess.run(
                    section.command(small, output),
                    cwd=ROOT,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
                ok = completed.returncode == 0 and output.exists()
            except subprocess.TimeoutExpired:
                sink.write(f"\n[bench] {section.key} timed out after {timeout:.0f} s\n")
                ok = False
        seconds = time.perf_counter() - started
        results = json.loads(output.read_text(encoding="utf-8")) if ok else None
    return results, seconds, str(log.relative_to(ROOT))


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the fast version (under a minute)")
    parser.add_argument(
        "--only", nargs="+", choices=[s.key for s in SECTIONS], help="run only these sections"
    )
    parser.add_argument("--results", type=Path, default=None, help=f"default: {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--docs", type=Path, default=None, help=f"default: {DOCS.relative_to(ROOT)}")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="sections at once (default: 1; 2 with --small, timed ones alone)",
    )
    args = parser.parse_args(argv)
    results_path = args.results or (SMALL_DIR / "results.json" if args.small else RESULTS)
    docs_path = args.docs or (SMALL_DIR / "performance.md" if args.small else DOCS)
    jobs = args.jobs or (2 if args.small else 1)
    selected = [s for s in SECTIONS if not args.only or s.key in args.only]
    timeout = 300.0 if args.small else 900.0

    results: dict[str, Any] = {}
    if args.only and results_path.exists():
        results = json.loads(results_path.read_text(encoding="utf-8"))
    meta = results.setdefault("meta", {})
    timings = meta.setdefault("section_seconds", {})
    logs = meta.setdefault("logs", {})
    loads = meta.setdefault("load_average_after", {})
    failed: list[str] = []
    lock = threading.Lock()

    def work(section: Section) -> None:
        print(f"[bench] {section.key}: {section.title} ...", flush=True)
        section_results, seconds, log = run_section(section, args.small, timeout)
        with lock:
            timings[section.key] = round(seconds, 1)
            # Other work on the machine skews the timed sections: leave a trace of it.
            loads[section.key] = round(os.getloadavg()[0], 2)
            logs[section.key] = log
            if section_results is None:
                failed.append(section.key)
                results[section.key] = {"error": f"failed; see {log}"}
            else:
                results[section.key] = section_results
        print(
            f"[bench] {section.key}: {'failed, see ' + log if section_results is None else 'done'} "
            f"in {seconds:.0f} s",
            flush=True,
        )

    started = time.perf_counter()
    if jobs <= 1:
        for section in selected:
            work(section)
    else:
        # Count-only sections in one lane, timed ones in the other: timings never share the CPU
        # with each other (they do share it with the counting lane: --small publishes nothing).
        lanes = [[s for s in selected if not s.timed], [s for s in selected if s.timed]]

        def run_lane(lane: list[Section]) -> None:
            for section in lane:
                work(section)

        threads = [threading.Thread(target=run_lane, args=(lane,)) for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    total = time.perf_counter() - started

    meta.update(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mode="small" if args.small else "full",
        git_commit=_git_commit(),
        environment=environment(),
        seconds=round(total, 1) if not args.only else meta.get("seconds"),
        command="make bench-small" if args.small else "make bench",
    )
    if args.only:
        meta["last_partial_run"] = {"sections": args.only, "seconds": round(total, 1)}
    if all(key in results and "error" not in results[key] for key in ("commands", "projections")):
        results["on_paper"] = cost_model.compute(results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    ordered = {"meta": results.pop("meta"), **{s.key: results[s.key] for s in SECTIONS if s.key in results}}
    if "on_paper" in results:
        ordered["on_paper"] = results["on_paper"]
    results_path.write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text(render.render(ordered), encoding="utf-8")
    print(f"[bench] wrote {results_path} and {docs_path} in {total:.0f} s", flush=True)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
