"""Benchmarks: `python -m bench` runs them all (`make bench`); each is also `python -m bench.<name>`
from the repository root. See docs/performance.md for what they measure."""
