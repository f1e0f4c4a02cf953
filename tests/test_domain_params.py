"""Which parameters a message shows, and in what order."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.params import shown_params


@pytest.mark.parametrize(
    ("config", "first", "expected"),
    [
        ({"a": 1, "_x": 2, "_wandb": {"v": 1}}, (), [("a", 1)]),
        ({"opt": {"lr": 0.1, "betas": {"b1": 0.9}}}, (), [("opt.betas.b1", 0.9), ("opt.lr", 0.1)]),
        ({"lr": {"value": 0.1, "desc": None}}, (), [("lr", 0.1)]),
        ({"fail_at": None, "hang": False, "depth": 3}, (), [("depth", 3), ("hang", False)]),
        (
            {"dataset": "wine", "max_depth": 4, "n_estimators": 50, "seed": 0},
            ("n_estimators", "max_depth", "missing"),
            [("n_estimators", 50), ("max_depth", 4), ("dataset", "wine"), ("seed", 0)],
        ),
        ({}, ("a",), []),
    ],
)
def test_shown_params_drop_unset_values_and_lead_with_the_given_keys(
    config: dict[str, Any], first: tuple[str, ...], expected: list[tuple[str, Any]]
) -> None:
    assert shown_params(config, first) == expected
