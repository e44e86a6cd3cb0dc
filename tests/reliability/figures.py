"""The figures the reliability suite measures: printed as a table at the end of the run, and written
to a JSON file (RELIABILITY_FIGURES) so that docs/reliability.md can cite them.

The file holds one entry per scale; a run replaces only the entry of its own scale.
"""

from __future__ import annotations

import json
import os
import platform
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIGURES_ENV = "RELIABILITY_FIGURES"


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: int | float | str
    unit: str = ""

    def shown(self) -> str:
        if isinstance(self.value, float):
            text = f"{self.value:,.2f}" if abs(self.value) < 100 else f"{self.value:,.0f}"
        elif isinstance(self.value, int) and not isinstance(self.value, bool):
            text = f"{self.value:,}"
        else:
            text = str(self.value)
        return f"{text} {self.unit}".rstrip()


_lock = threading.Lock()
_figures: dict[tuple[str, str], Figure] = {}


def record(section: str, name: str, value: int | float | str, unit: str = "") -> None:
    """Record (or replace) one figure."""
    with _lock:
        _figures[(section, name)] = Figure(section, name, value, unit)


def recorded() -> list[Figure]:
    """In section order (sections are numbered as in the issue), each in the order recorded."""
    with _lock:
        figures = list(_figures.values())
    order = {section: n for n, section in enumerate(sorted({f.section for f in figures}))}
    return sorted(figures, key=lambda f: order[f.section])


def table(figures: list[Figure]) -> str:
    if not figures:
        return ""
    width_section = max(len(f.section) for f in figures)
    width_name = max(len(f.name) for f in figures)
    lines = []
    previous = None
    for figure in figures:
        section = figure.section if figure.section != previous else ""
        previous = figure.section
        lines.append(f"{section:<{width_section}}  {figure.name:<{width_name}}  {figure.shown()}")
    return "\n".join(lines)


def write(path: Path, scale: str, seconds: float, outcome: str) -> None:
    """Merge this run's figures into `path` under its scale."""
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = {}
    document[scale] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"RELIABILITY_SCALE={scale} .venv/bin/python -m pytest tests/reliability",
        "machine": f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        "duration_seconds": round(seconds, 1),
        "outcome": outcome,
        "figures": [
            {"section": f.section, "name": f.name, "value": f.value, "unit": f.unit, "shown": f.shown()}
            for f in recorded()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
