"""Rerun the best over seeds, and narrow around it, by the documented rule."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.derive import narrow_config, rerun_config
from bot.domain.sweeps import check_sweep_config
from wandb_client.models import RunSnapshot

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ORIGINAL = {
    "program": "train.py",
    "method": "random",
    "metric": {"name": "accuracy", "goal": "maximize"},
    "run_cap": 20,
    "parameters": {
        "lr": {"min": 0.0, "max": 1.0},
        "depth": {"min": 2, "max": 18},
        "trees": {"values": [10, 50, 100, 200]},
        "opt": {"values": ["adam", "sgd", "rmsprop"]},
        "dataset": {"value": "wine"},
        "seed": {"value": 0},
    },
}


def run(i: int, acc: float, **config: object) -> RunSnapshot:
    return RunSnapshot(
        entity="lab",
        project="wine",
        id=f"r{i}",
        display_name=f"run-{i}",
        state="finished",
        url="u",
        created_at=T0,
        config={k: {"value": v} for k, v in config.items()},
        summary={"accuracy": acc},
    )


BEST = run(0, 0.95, lr=0.9, depth=4, trees=100, opt="sgd", dataset="wine", seed=0)
RUNS = [
    BEST,
    run(1, 0.90, lr=0.2, depth=10, trees=10, opt="adam", dataset="wine", seed=0),
    run(2, 0.60, lr=0.5, depth=12, trees=200, opt="rmsprop", dataset="wine", seed=0),
    run(3, 0.94, lr=0.8, depth=6, trees=50, opt="adam", dataset="wine", seed=0),
]


def test_rerun_fixes_every_parameter_and_varies_only_the_seed() -> None:
    config = rerun_config(ORIGINAL, BEST, seeds=3)
    assert config["method"] == "grid" and config["run_cap"] == 3
    assert config["parameters"] == {
        "lr": {"value": 0.9},
        "depth": {"value": 4},
        "trees": {"value": 100},
        "opt": {"value": "sgd"},
        "dataset": {"value": "wine"},
        "seed": {"values": [0, 1, 2]},
    }
    assert config["program"] == "train.py" and config["metric"] == ORIGINAL["metric"]
    assert check_sweep_config(config) == []
    other = rerun_config(ORIGINAL, BEST, seed_param="rng", seeds=2)
    assert other["parameters"]["rng"] == {"values": [0, 1]} and "seed" in other["parameters"]


def test_narrow_shrinks_ranges_to_a_quarter_span_around_best_clipped() -> None:
    config = narrow_config(ORIGINAL, BEST, RUNS, metric="accuracy", goal="maximize", count=8)
    params = config["parameters"]
    assert config["method"] == "bayes" and config["run_cap"] == 8
    assert params["lr"] == {"min": 0.65, "max": 1.0}  # 0.9 ± 0.25, clipped at 1.0
    assert params["depth"] == {"min": 2, "max": 8}  # 4 ± 4 (a quarter of 16), clipped at 2
    assert params["trees"] == {"values": [100]}  # only 100 lies within 100 ± 47.5
    assert params["opt"] == {"values": ["sgd", "adam"]}  # best means: sgd .95, adam .92
    assert params["dataset"] == {"value": "wine"}
    assert check_sweep_config(config) == []
    low = narrow_config(ORIGINAL, BEST, RUNS, metric="accuracy", goal="minimize", count=8)
    assert low["parameters"]["opt"] == {"values": ["rmsprop", "adam"]}
