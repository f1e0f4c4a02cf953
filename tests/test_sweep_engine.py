"""Test the W&B test server's sweep engine: grid, random and bayes, and config validation."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.servers.wandb.sweeps import infer_distribution, next_params, validate_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wine"


def sweep(method: str, parameters: dict[str, Any], goal: str = "maximize") -> dict[str, Any]:
    """Build a sweep config around some parameters."""
    return {"method": method, "metric": {"name": "score", "goal": goal}, "parameters": parameters}


def drain(config: dict[str, Any], limit: int = 1000) -> list[dict[str, Any]]:
    """Ask for grid points until the engine says there are none left."""
    runs: list[tuple[dict[str, Any], float | None]] = []
    rng = random.Random(0)
    while (params := next_params(config, runs, rng)) is not None:
        runs.append((params, None))
        assert len(runs) <= limit
    return [params for params, _ in runs]


# -- grid


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param(
            {"n": {"values": [10, 50]}, "d": {"values": [2, 4]}, "ds": {"value": "wine"}},
            [
                {"n": 10, "d": 2, "ds": "wine"},
                {"n": 10, "d": 4, "ds": "wine"},
                {"n": 50, "d": 2, "ds": "wine"},
                {"n": 50, "d": 4, "ds": "wine"},
            ],
            id="last-parameter-varies-fastest",
        ),
        pytest.param(
            {"k": {"distribution": "int_uniform", "min": 1, "max": 3}},
            [{"k": 1}, {"k": 2}, {"k": 3}],
            id="int-uniform-enumerates-its-range",
        ),
        pytest.param(
            {"lr": {"distribution": "q_uniform", "min": 0.1, "max": 0.35, "q": 0.1}},
            [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}],
            id="q-uniform-enumerates-multiples-of-q",
        ),
        pytest.param(
            {"opt": {"parameters": {"name": {"values": ["sgd", "adam"]}, "lr": {"value": 0.1}}}},
            [{"opt": {"name": "sgd", "lr": 0.1}}, {"opt": {"name": "adam", "lr": 0.1}}],
            id="nested-groups-become-nested-dicts",
        ),
        pytest.param(
            {"layers": {"values": [[8, 8], [16]]}, "act": {"values": ["relu"]}},
            [{"layers": [8, 8], "act": "relu"}, {"layers": [16], "act": "relu"}],
            id="unhashable-values",
        ),
    ],
)
def test_grid_enumerates_the_product_in_a_stable_order_then_is_exhausted(parameters, expected):
    assert drain(sweep("grid", parameters)) == expected


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        pytest.param([], {"n": 10, "d": 2}, id="nothing-done"),
        pytest.param([{"n": 10, "d": 2}], {"n": 10, "d": 4}, id="first-done"),
        pytest.param([{"n": 10, "d": 4}, {"n": 10, "d": 2}], {"n": 50, "d": 2}, id="any-order"),
        pytest.param([{"n": 10.0, "d": 2}], {"n": 10, "d": 4}, id="float-equal-to-int"),
        pytest.param([{"n": 10}], {"n": 10, "d": 2}, id="incomplete-run-ignored"),
        pytest.param([{"n": 10, "d": 2, "extra": 1}], {"n": 10, "d": 4}, id="extra-keys-ignored"),
        pytest.param(
            [{"n": n, "d": d} for n in (10, 50) for d in (2, 4)], None, id="all-done-exhausted"
        ),
    ],
)
def test_grid_skips_combinations_previous_runs_took(done, expected):
    config = sweep("grid", {"n": {"values": [10, 50]}, "d": {"values": [2, 4]}})
    runs = [(params, None) for params in done]
    assert next_params(config, runs, random.Random(0)) == expected


def test_grid_matches_nested_runs_by_nested_or_dotted_keys():
    config = sweep("grid", {"opt": {"parameters": {"lr": {"values": [1, 2, 3]}}}})
    runs: list[tuple[dict[str, Any], float | None]] = [({"opt": {"lr": 1}}, 0.5)]
    runs.append(({"opt.lr": 2}, None))
    assert next_params(config, runs, random.Random(0)) == {"opt": {"lr": 3}}


def test_grid_counts_failed_runs_as_taken():
    config = sweep("grid", {"n": {"values": [1, 2]}})
    assert next_params(config, [({"n": 1}, None), ({"n": 2}, 0.3)], random.Random(0)) is None


@pytest.mark.parametrize(
    "spec",
    [
        {"min": 0.0, "max": 1.0},
        {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        {"distribution": "normal", "mu": 0, "sigma": 1},
    ],
)
def test_grid_over_a_continuous_distribution_raises_a_clear_error(spec):
    with pytest.raises(ValueError, match="grid search needs discrete parameters: 'lr'"):
        next_params(sweep("grid", {"lr": spec}), [], random.Random(0))


def test_grid_over_a_huge_range_stays_lazy():
    config = sweep("grid", {"a": {"distribution": "int_uniform", "min": 0, "max": 10**9}})
    assert next_params(config, [({"a": 0}, None)], random.Random(0)) == {"a": 1}


# -- random: every distribution stays inside its bounds


def in_range(low: float, high: float):
    """Check low <= value <= high."""
    return lambda v: low <= v <= high


def multiple_of(q: float, low: float = -math.inf, high: float = math.inf):
    """Check value is a multiple of q inside [low, high]."""
    return lambda v: low <= v <= high and math.isclose(v / q, round(v / q), abs_tol=1e-9)


def is_int(check):
    """Check value is an int and passes another check."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and check(v)


DISTRIBUTION_CASES = [
    pytest.param({"value": "wine"}, lambda v: v == "wine", id="constant-inferred"),
    pytest.param(
        {"distribution": "constant", "value": 3}, lambda v: v == 3, id="constant-explicit"
    ),
    pytest.param({"values": [2, 4, 8]}, lambda v: v in (2, 4, 8), id="categorical"),
    pytest.param(
        {"values": ["a", "b", "c"], "probabilities": [0.0, 1.0, 0.0]},
        lambda v: v == "b",
        id="categorical-probabilities",
    ),
    pytest.param({"min": 10, "max": 200}, is_int(in_range(10, 200)), id="int-uniform-inferred"),
    pytest.param(
        {"distribution": "int_uniform", "min": -3, "max": 3},
        is_int(in_range(-3, 3)),
        id="int-uniform",
    ),
    pytest.param(
        {"min": 0.5, "max": 2},
        lambda v: isinstance(v, float) and 0.5 <= v <= 2,
        id="uniform-inferred",
    ),
    pytest.param(
        {"distribution": "uniform", "min": -1.0, "max": 1.0}, in_range(-1, 1), id="uniform"
    ),
    pytest.param(
        {"distribution": "q_uniform", "min": 0.05, "max": 1.0, "q": 0.1},
        multiple_of(0.1, 0.05, 1.0),
        id="q-uniform-float-q",
    ),
    pytest.param(
        {"distribution": "q_uniform", "min": 0, "max": 100, "q": 5},
        is_int(multiple_of(5, 0, 100)),
        id="q-uniform-int-q",
    ),
    pytest.param(
        {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        in_range(1e-5, 1e-1),
        id="log-uniform-values",
    ),
    pytest.param(
        {"distribution": "q_log_uniform_values", "min": 1, "max": 1024, "q": 1},
        is_int(in_range(1, 1024)),
        id="q-log-uniform-values",
    ),
    pytest.param(
        {"distribution": "q_log_uniform_values", "min": 0.01, "max": 1.0, "q": 0.01},
        multiple_of(0.01, 0.01, 1.0),
        id="q-log-uniform-values-float-q",
    ),
    pytest.param(
        {"distribution": "inv_log_uniform_values", "min": 1e-3, "max": 10.0},
        in_range(1e-3, 10.0),
        id="inv-log-uniform-values",
    ),
    pytest.param(
        {"distribution": "log_uniform", "min": -4, "max": 0},
        in_range(math.exp(-4) * 0.999, 1.0),
        id="log-uniform-exponents",
    ),
    pytest.param(
        {"distribution": "normal", "mu": 5, "sigma": 0.1},
        lambda v: isinstance(v, float) and abs(v - 5) < 1.0,
        id="normal",
    ),
    pytest.param(
        {"distribution": "q_normal", "mu": 100, "sigma": 10, "q": 4},
        is_int(multiple_of(4)),
        id="q-normal",
    ),
    pytest.param(
        {"distribution": "log_normal", "mu": 0, "sigma": 1}, lambda v: v > 0, id="log-normal"
    ),
    pytest.param({"distribution": "beta", "a": 2, "b": 5}, in_range(0.0, 1.0), id="beta"),
]


@pytest.mark.parametrize(("spec", "check"), DISTRIBUTION_CASES)
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_random_samples_respect_each_distribution(spec, check, seed):
    config = sweep("random", {"p": spec})
    assert validate_config(config) == []
    value = next_params(config, [], random.Random(seed))["p"]  # type: ignore[index]
    assert check(value), value


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_random_is_reproducible_for_a_seed_and_never_exhausted(seed):
    config = sweep("random", {"a": {"values": [1]}, "b": {"min": 0.0, "max": 1.0}})
    runs = [({"a": 1, "b": 0.5}, 1.0)] * 5
    first = next_params(config, runs, random.Random(seed))
    assert first is not None
    assert first == next_params(config, runs, random.Random(seed))


def test_random_follows_categorical_probabilities():
    config = sweep("random", {"p": {"values": ["a", "b"], "probabilities": [0.8, 0.2]}})
    rng = random.Random(7)
    picks = [next_params(config, [], rng)["p"] for _ in range(2000)]  # type: ignore[index]
    assert 0.75 < picks.count("a") / len(picks) < 0.85


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"value": 1}, "constant"),
        ({"values": [1, 2]}, "categorical"),
        ({"min": 1, "max": 5}, "int_uniform"),
        ({"min": 1, "max": 5.0}, "uniform"),
        ({"min": 0.1, "max": 0.5}, "uniform"),
        ({"distribution": "q_normal", "q": 2}, "q_normal"),
        ({"distribution": "nope"}, None),
        ({"mu": 0}, None),
    ],
)
def test_distribution_is_inferred_as_wandb_does(spec, expected):
    assert infer_distribution(spec) == expected


# -- bayes


def quadratic(x: float) -> float:
    """Return a 1-D objective whose maximum is at x = 0.3."""
    return -((x - 0.3) ** 2)


def best_after(method: str, trials: int, seed: int, goal: str = "maximize") -> float:
    """Run a sweep on the quadratic and return the distance of the best x from 0.3."""
    config = sweep(method, {"x": {"min": 0.0, "max": 1.0}}, goal=goal)
    sign = 1.0 if goal == "maximize" else -1.0
    rng = random.Random(seed)
    runs: list[tuple[dict[str, Any], float | None]] = []
    for _ in range(trials):
        params = next_params(config, runs, rng)
        assert params is not None
        runs.append((params, sign * quadratic(params["x"])))
    return min(abs(params["x"] - 0.3) for params, _ in runs)


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_bayes_finds_the_optimum_of_a_quadratic_better_than_random(goal):
    seeds = range(8)
    bayes = [best_after("bayes", 12, seed, goal) for seed in seeds]
    rand = [best_after("random", 12, seed, goal) for seed in seeds]
    assert sum(bayes) / len(bayes) < 0.5 * sum(rand) / len(rand)
    assert max(bayes) < 0.02


def test_bayes_with_the_wrong_goal_moves_away_from_the_optimum():
    config = sweep("bayes", {"x": {"min": 0.0, "max": 1.0}}, goal="minimize")
    rng = random.Random(3)
    runs: list[tuple[dict[str, Any], float | None]] = []
    for _ in range(10):
        params = next_params(config, runs, rng)
        assert params is not None
        runs.append((params, quadratic(params["x"])))
    # Minimising -(x-0.3)^2 means going as far from 0.3 as possible: x = 1.
    assert max(params["x"] for params, _ in runs[-3:]) > 0.9


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param([], id="no-runs"),
        pytest.param([({"x": 0.5}, 1.0)], id="one-observation"),
        pytest.param([({"x": 0.5}, None), ({"x": 0.2}, None)], id="no-metrics-yet"),
        pytest.param([({"x": 0.5}, math.nan), ({"x": 0.2}, 1.0)], id="nan-ignored"),
        pytest.param([({"y": 0.5}, 1.0), ({"x": 0.2}, 1.0)], id="run-without-the-param"),
    ],
)
def test_bayes_falls_back_to_random_until_two_runs_have_metrics(runs):
    params = {"x": {"min": 0.0, "max": 1.0}}
    bayes = next_params(sweep("bayes", params), runs, random.Random(11))
    assert bayes == next_params(sweep("random", params), [], random.Random(11))


def test_bayes_handles_categorical_nested_and_log_parameters():
    config = sweep(
        "bayes",
        {
            "opt": {
                "parameters": {
                    "name": {"values": ["sgd", "adam", "rmsprop"]},
                    "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                }
            },
            "depth": {"values": [2, 4, 8]},
            "momentum": {"distribution": "normal", "mu": 0.9, "sigma": 0.05},
            "dataset": {"value": "wine"},
        },
    )

    def score(p: dict[str, Any]) -> float:
        bonus = {"sgd": 0.0, "adam": 1.0, "rmsprop": 0.2}[p["opt"]["name"]]
        return bonus - abs(math.log10(p["opt"]["lr"]) + 2) - abs(p["depth"] - 4) / 4

    rng = random.Random(5)
    runs: list[tuple[dict[str, Any], float | None]] = []
    for _ in range(20):
        params = next_params(config, runs, rng)
        assert params is not None
        assert params["dataset"] == "wine"
        assert 1e-4 <= params["opt"]["lr"] <= 1e-1
        runs.append((params, score(params)))
    best = max(runs, key=lambda run: run[1] or -math.inf)[0]
    assert best["opt"]["name"] == "adam"
    assert best["depth"] == 4


def test_bayes_with_only_constants_returns_them():
    config = sweep("bayes", {"dataset": {"value": "wine"}})
    runs = [({"dataset": "wine"}, 0.5), ({"dataset": "wine"}, 0.7)]
    assert next_params(config, runs, random.Random(0)) == {"dataset": "wine"}


# -- validation


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param("method: grid", ["the sweep config must be a mapping"], id="not-a-mapping"),
        pytest.param(
            {"parameters": {"a": {"value": 1}}}, ["missing 'method'"], id="missing-method"
        ),
        pytest.param(
            {"method": "hyperband", "parameters": {"a": {"value": 1}}},
            ["unknown method 'hyperband': use one of bayes, grid, random"],
            id="unknown-method",
        ),
        pytest.param({"method": "random"}, ["missing 'parameters'"], id="missing-parameters"),
        pytest.param(
            {"method": "random", "parameters": {}},
            ["'parameters' must be a non-empty mapping"],
            id="empty-parameters",
        ),
        pytest.param(
            {"method": "bayes", "parameters": {"a": {"values": [1, 2]}}},
            ["method 'bayes' needs a metric"],
            id="bayes-without-metric",
        ),
        pytest.param(
            {"method": "random", "metric": {"goal": "up"}, "parameters": {"a": {"value": 1}}},
            ["metric needs a 'name'", "unknown metric goal 'up'"],
            id="bad-metric",
        ),
        pytest.param(
            sweep("random", {"lr": {"distribution": "gaussian", "mu": 0}}),
            ["parameter 'lr': unknown distribution 'gaussian' (use one of beta, categorical"],
            id="unknown-distribution",
        ),
        pytest.param(
            sweep("random", {"lr": {"mu": 0}}),
            ["parameter 'lr': cannot tell its distribution"],
            id="uninferable",
        ),
        pytest.param(
            sweep("random", {"lr": 0.1}),
            ["parameter 'lr': spec must be a mapping like {values: [1, 2]}, got 0.1"],
            id="bare-value",
        ),
        pytest.param(
            sweep("random", {"lr": {"values": [1], "step": 2}}),
            ["parameter 'lr': unknown key(s) step"],
            id="unknown-key",
        ),
        pytest.param(
            sweep("random", {"lr": {"values": []}}),
            ["parameter 'lr': 'values' must be a non-empty list"],
            id="empty-values",
        ),
        pytest.param(
            sweep("random", {"a": {"values": [1, 2], "probabilities": [0.5, 0.6]}}),
            ["parameter 'a': probabilities must sum to 1, they sum to 1.1"],
            id="probabilities-sum",
        ),
        pytest.param(
            sweep("random", {"a": {"values": [1, 2], "probabilities": [1.0]}}),
            ["parameter 'a': 'probabilities' must be a list as long as 'values' (2)"],
            id="probabilities-length",
        ),
        pytest.param(
            sweep("random", {"a": {"min": 5, "max": 1}}),
            ["parameter 'a': min (5) must be less than max (1)"],
            id="min-above-max",
        ),
        pytest.param(
            sweep("random", {"a": {"distribution": "uniform", "min": 1}}),
            ["parameter 'a': distribution 'uniform' needs min and max"],
            id="missing-max",
        ),
        pytest.param(
            sweep("random", {"a": {"distribution": "int_uniform", "min": 0.5, "max": 3}}),
            ["parameter 'a': int_uniform needs integer min and max, got 0.5, 3"],
            id="int-uniform-float-bounds",
        ),
        pytest.param(
            sweep("random", {"a": {"distribution": "log_uniform_values", "min": 0, "max": 1}}),
            ["parameter 'a': log_uniform_values needs min > 0, got 0"],
            id="log-uniform-values-zero",
        ),
        pytest.param(
            sweep("random", {"a": {"distribution": "normal", "sigma": -1}}),
            ["parameter 'a': sigma must be positive, got -1"],
            id="negative-sigma",
        ),
        pytest.param(
            sweep("random", {"a": {"distribution": "q_uniform", "min": 0.1, "max": 0.2, "q": 1}}),
            ["parameter 'a': no multiple of q=1 lies in [0.1, 0.2]"],
            id="q-too-coarse",
        ),
        pytest.param(
            sweep("random", {"a": {"distribution": "uniform", "min": "low", "max": 1}}),
            ["parameter 'a': min must be a number, got 'low'"],
            id="non-numeric-bound",
        ),
        pytest.param(
            sweep("random", {"opt": {"parameters": {"lr": {"distribution": "x"}}}}),
            ["parameter 'opt.lr': unknown distribution 'x'"],
            id="nested-names-are-dotted",
        ),
        pytest.param(
            sweep("grid", {"lr": {"min": 0.0, "max": 1.0}}),
            ["grid search needs discrete parameters: 'lr' has distribution 'uniform'"],
            id="grid-over-continuous",
        ),
        pytest.param(
            {**sweep("random", {"a": {"value": 1}}), "run_cap": 0},
            ["run_cap must be a positive integer, got 0"],
            id="bad-run-cap",
        ),
    ],
)
def test_validate_config_explains_each_problem(config, expected):
    problems = validate_config(config)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


@pytest.mark.parametrize(
    "config",
    [
        sweep("random", {"lr": {"min": "1e-5", "max": "1e-1"}}),  # PyYAML reads 1e-5 as str
        {**sweep("grid", {"a": {"values": [1]}}), "run_cap": 4, "program": "train.py"},
        {"method": "random", "parameters": {"a": {"values": [1, 2]}}},  # metric optional
    ],
)
def test_validate_config_accepts_valid_configs(config):
    assert validate_config(config) == []


def test_next_params_rejects_an_invalid_config_with_every_problem():
    config = {"method": "nope", "parameters": {"a": {"values": []}}}
    with pytest.raises(ValueError, match=r"unknown method 'nope'.*'values' must be a non-empty"):
        next_params(config, [], random.Random(0))


@pytest.mark.parametrize("name", ["sweep.yaml", "sweep-grid.yaml", "sweep-bayes.yaml"])
def test_example_sweeps_are_valid_and_give_train_py_its_flags(name):
    config = yaml.safe_load((EXAMPLES / name).read_text())
    assert validate_config(config) == []
    assert config["program"] == "train.py"
    params = next_params(config, [], random.Random(0))
    assert params is not None
    assert set(params) == {"n_estimators", "max_depth", "dataset"}


def test_example_grid_sweep_has_four_runs():
    config = yaml.safe_load((EXAMPLES / "sweep-grid.yaml").read_text())
    assert len(drain(config)) == 4
