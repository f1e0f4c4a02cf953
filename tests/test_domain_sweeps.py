"""Sweep configs are checked, metrics read, progress drawn and crash loops spotted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.domain.sweeps import (
    PHASE_WORDS,
    agents_gave_up,
    check_sweep_config,
    crash_loop,
    join_target,
    parse_sweep_yaml,
    progress,
    progress_bar,
    sweep_metric,
    sweep_phase,
)

GOOD = """
program: train.py
method: random
metric: {name: accuracy, goal: maximize}
parameters:
  n_estimators: {values: [100, 200]}
  max_depth: {min: 2, max: 12}
"""


def test_good_yaml_has_no_problems():
    config, problems = parse_sweep_yaml(GOOD, yaml.safe_load)
    assert problems == []
    assert config["method"] == "random"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("method: [", "not valid YAML at line"),
        ("- a\n- b", "must be a mapping"),
        (
            "method: sideways\nparameters: {a: {value: 1}}",
            "method must be one of grid, random, bayes",
        ),
        ("method: grid", "parameters must be a non-empty mapping"),
        ("method: grid\nparameters: {a: 3}", "parameters.a must be a mapping"),
        ("method: grid\nparameters: {a: {foo: 3}}", "parameters.a needs value, values or min/max"),
        (
            "method: grid\nparameters: {a: {values: []}}",
            "parameters.a.values must be a non-empty list",
        ),
        ("method: bayes\nparameters: {a: {value: 1}}", "a bayes sweep needs metric"),
        (
            "method: grid\nparameters: {a: {value: 1}}\nmetric: acc",
            "metric must be a mapping with a name",
        ),
        (
            "method: grid\nparameters: {a: {value: 1}}\nmetric: {name: a, goal: up}",
            "metric.goal must be",
        ),
        ("method: grid\nparameters: {a: {value: 1}}\nprogram: [1]", "program must be a file name"),
    ],
)
def test_bad_yaml_problems(text, problem):
    _, problems = parse_sweep_yaml(text, yaml.safe_load)
    assert any(problem in p for p in problems), problems


def test_check_accepts_a_mapping_directly():
    assert check_sweep_config({"method": "grid", "parameters": {"a": {"value": 1}}}) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"metric": {"name": "acc", "goal": "maximize"}}, ("acc", "maximize")),
        ({"metric": {"name": "loss"}}, ("loss", "minimize")),
        ({"metric": "loss"}, None),
        ({}, None),
    ],
)
def test_sweep_metric(config, expected):
    assert sweep_metric(config) == expected


@pytest.mark.parametrize(
    ("done", "count", "fraction", "bar"),
    [
        (0, 20, 0.0, "░" * 10),
        (14, 20, 0.7, "▓" * 7 + "░" * 3),
        (20, 20, 1.0, "▓" * 10),
        (25, 20, 1.0, "▓" * 10),
        (1, 0, 0.0, "░" * 10),
        (-3, 10, 0.0, "░" * 10),
    ],
)
def test_progress(done, count, fraction, bar):
    assert progress(done, count) == fraction
    assert progress_bar(done, count) == bar


NOW = datetime(2024, 11, 23, 12, 0, tzinfo=UTC)


def ago(*seconds):
    return [NOW - timedelta(seconds=s) for s in seconds]


@pytest.mark.parametrize(
    ("failures", "k", "window", "expected"),
    [
        (ago(10, 20, 30), 3, 600, True),
        (ago(10, 20), 3, 600, False),
        (ago(10, 20, 700), 3, 600, False),
        (ago(10, 20, 600), 3, 600, True),  # the window's edge counts
        (ago(10, 20, 30), 3, timedelta(seconds=25), False),
        (ago(-10, 10, 20), 3, 600, False),  # a failure "in the future" does not count
        ([], 1, 600, False),
    ],
)
def test_crash_loop(failures, k, window, expected):
    assert crash_loop(failures, NOW, k, window) is expected


@pytest.mark.parametrize(
    ("state", "live", "done", "count", "tripped", "phase"),
    [
        ("RUNNING", 2, 3, 10, False, "running"),
        ("PAUSED", 2, 3, 10, False, "paused"),
        ("RUNNING", 0, 10, 10, False, "finished"),
        ("FINISHED", 0, 10, 10, False, "finished"),  # stopped after its last run: finished
        ("FINISHED", 0, 3, 10, False, "stopped"),
        ("CANCELED", 0, 3, 10, False, "cancelled"),
        ("RUNNING", 0, 3, 10, False, "gave_up"),  # W&B says running; nothing runs it
        (None, 0, 3, 10, False, "gave_up"),
        ("PAUSED", 0, 3, 10, True, "tripped"),
        ("PAUSED", 0, 3, 10, False, "paused"),
    ],
)
def test_sweep_phase_is_one_word_from_wandb_state_and_agents(
    state: str | None, live: int, done: int, count: int, tripped: bool, phase: str
) -> None:
    assert (
        sweep_phase(
            wandb_state=state, live_agents=live, done=done, count=count, breaker_tripped=tripped
        )
        == phase
    )
    assert phase in PHASE_WORDS


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (
            [
                "2026 - wandb.wandb_agent - ERROR - Detected 3 failed runs in the first 60 seconds,"
                " shutting down."
            ],
            "after 3 failed runs in 60 s",
        ),
        (
            ["ERROR - Detected 5 failed runs in a row, shutting down."],
            "after 5 failed runs in a row",
        ),
        (
            ["wandb: ERROR Detected 4 consecutive failed runs, shutting down."],
            "after 4 failed runs in a row",
        ),
        (["INFO Running runs: []", "agent done"], None),
    ],
)
def test_agents_gave_up_reads_wandbs_own_reason(lines: list[str], why: str | None) -> None:
    assert agents_gave_up(lines) == why


@pytest.mark.parametrize(
    ("done", "count", "cap", "target"),
    [(3, 2, None, 5), (3, 2, 3, 3), (1, 5, 4, 4), (0, 2, None, 2)],
)
def test_join_target_adds_to_what_ran_within_the_run_cap(
    done: int, count: int, cap: int | None, target: int
) -> None:
    assert join_target(done=done, count=count, run_cap=cap) == target
