"""How big the reliability suite runs: RELIABILITY_SCALE=small (CI, default) or full (`make reliability`)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    # Concurrency: `orders serve` processes on one moto, client threads, commands per thread.
    servers: int
    client_threads: int
    commands_per_thread: int
    hot_orders: int
    hot_products: int
    # Idempotency: copies of one command, sent one after another and all at once.
    repeats: int
    # Fuzzing: schemathesis examples per route and generation mode (positive, negative).
    fuzz_examples: int
    # Stateful fuzzing: scenarios (chains of requests following the document's links), steps at most each.
    stateful_scenarios: int
    stateful_steps: int
    # Faults: orders in the generated history, crash/restart rounds.
    fault_orders: int
    crash_rounds: int
    # Limits: the 10,000-event stream is written as this many commits.
    long_stream_commits: int


SCALES = {
    "small": Scale(
        name="small",
        servers=2,
        client_threads=8,
        commands_per_thread=20,
        hot_orders=3,
        hot_products=2,
        repeats=8,
        fuzz_examples=20,
        stateful_scenarios=20,
        stateful_steps=8,
        fault_orders=30,
        crash_rounds=4,
        long_stream_commits=500,
    ),
    "full": Scale(
        name="full",
        servers=3,
        client_threads=24,
        commands_per_thread=60,
        hot_orders=8,
        hot_products=3,
        repeats=40,
        fuzz_examples=150,
        stateful_scenarios=300,
        stateful_steps=15,
        fault_orders=200,
        crash_rounds=12,
        long_stream_commits=10_000,
    ),
}

LONG_STREAM_EVENTS = 10_000


def current() -> Scale:
    name = os.environ.get("RELIABILITY_SCALE", "small").strip() or "small"
    try:
        return SCALES[name]
    except KeyError:
        raise RuntimeError(f"RELIABILITY_SCALE must be one of {', '.join(SCALES)}, not {name!r}") from None


SCALE = current()
