"""Which parameters a message shows, and in what order."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.params import RecentConfigs, shown_params, usual_values


@pytest.mark.parametrize(
    ("config", "first", "expected"),
    [
        ({"a": 1, "_x": 2, "_wandb": {"v": 1}}, (), [("a", 1)]),
        ({"opt": {"lr": 0.1, "betas": {"b1": 0.9}}}, (), [("opt.betas.b1", 0.9), ("opt.lr", 0.1)]),
        ({"lr": {"value": 0.1, "desc": None}}, (), [("lr", 0.1)]),
        # Switches left off are constants, not news.
        (
            {"fail_at": None, "hang": False, "depth": 3, "cv": True},
            (),
            [("cv", True), ("depth", 3)],
        ),
        # A sweep's own parameters are what varies between its runs: only they are shown.
        (
            {"dataset": "wine", "max_depth": 4, "n_estimators": 50, "seed": 0, "hang": False},
            ("n_estimators", "max_depth", "missing"),
            [("n_estimators", 50), ("max_depth", 4)],
        ),
        ({}, ("a",), []),
    ],
)
def test_shown_params_drop_unset_values_and_lead_with_the_given_keys(
    config: dict[str, Any], first: tuple[str, ...], expected: list[tuple[str, Any]]
) -> None:
    assert shown_params(config, first) == expected


def test_values_the_project_usually_has_are_left_out() -> None:
    configs = [{"lr": 0.01, "seed": s, "dataset": "wine"} for s in range(4)] + [{"lr": 0.1}]
    usual = usual_values(configs)
    assert usual == {"lr": 0.01, "dataset": "wine"}
    assert shown_params({"lr": 0.1, "seed": 3, "dataset": "wine"}, usual=usual) == [
        ("lr", 0.1),
        ("seed", 3),
    ]
    assert usual_values(configs[:2]) == {}


def test_a_sweep_run_shows_its_sweep_parameters_then_what_differs_from_the_usual() -> None:
    usual = {"dataset": "wine", "epochs": 5, "n_estimators": 100, "hang": False}
    config = {"dataset": "iris", "epochs": 5, "n_estimators": 50, "max_depth": 4, "seed": 7}
    # n_estimators is swept, so it leads even though it differs; seed has no usual value.
    assert shown_params(config, ("n_estimators", "max_depth"), usual) == [
        ("n_estimators", 50),
        ("max_depth", 4),
        ("dataset", "iris"),
    ]


def test_recent_configs_keep_the_latest_runs_per_project() -> None:
    recent = RecentConfigs(keep=3)
    recent.add("lab/a", {f"lab/a/r{i}": {"lr": 0.1, "seed": i} for i in range(3)})
    assert recent.usual("lab/a") == {"lr": 0.1}
    recent.add("lab/a", {f"lab/a/n{i}": {"lr": 0.5, "seed": i} for i in range(3)})
    assert recent.usual("lab/a") == {"lr": 0.5}  # the older runs were let go
    assert recent.usual("lab/b") == {}
