"""Which parameters a message shows, and in what order."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.params import shown_params, usual_values


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
