"""The sustained ceiling section 5 of docs/performance.md states: whichever runs out first."""

from __future__ import annotations

from bench.records import LoadLevel


def _level(moto_ms: float, total_ms: float) -> LoadLevel:
    return LoadLevel.from_json(
        {
            "clients": 4,
            "ours": {"per_second": 100.0, "latency_p50_ms": 10.0},
            "raw_puts": {"per_second": 400.0, "latency_p50_ms": 2.0},
            "ratio": 0.25,
            "cpu": {
                "ours": {"moto_ms": moto_ms, "total_ms": total_ms},
                "raw_puts": {"moto_ms": 1.5, "total_ms": 2.5},
            },
        }
    )


def test_moto_s_one_process_sets_the_pace_when_it_runs_out_first() -> None:
    # 5 ms of moto per command: 200/s on its one core; 8 ms in all: 250/s on two cores.
    assert _level(5.0, 8.0).sustained_ceiling(cores=2) == 200


def test_the_cores_set_the_pace_when_everything_together_runs_out_first() -> None:
    # 2 ms of moto: 500/s; 16 ms in all on two cores: 125/s, on four: 250/s.
    assert _level(2.0, 16.0).sustained_ceiling(cores=2) == 125
    assert _level(2.0, 16.0).sustained_ceiling(cores=4) == 250


def test_an_older_run_without_cpu_figures_has_no_ceiling() -> None:
    older = LoadLevel.from_json(
        {
            "clients": 1,
            "ours": {"per_second": 50.0, "latency_p50_ms": 20.0},
            "raw_puts": {"per_second": 400.0, "latency_p50_ms": 2.0},
            "ratio": 0.125,
        }
    )
    assert older.cpu_ours is None and older.sustained_ceiling(cores=2) is None
