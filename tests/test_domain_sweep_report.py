"""A sweep's end: top runs ordered right, what mattered found, the message readable."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.importance import parameter_importance, pearson
from bot.domain.sweep_report import (
    SweepEnd,
    differing,
    failure_reasons,
    render_sweep_end,
    top_runs,
)
from tests.test_domain_render import check_html
from wandb_client.models import RunSnapshot

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def run(i: int, state: str, acc: float | None, **config: object) -> RunSnapshot:
    return RunSnapshot(
        entity="lab",
        project="wine",
        id=f"r{i}",
        display_name=f"run-<{i}>",
        state=state,
        url=f"https://wandb.example/lab/wine/runs/r{i}",
        created_at=T0 + timedelta(seconds=i),
        sweep="sw1",
        config={k: {"value": v} for k, v in config.items()},
        summary={"accuracy": acc} if acc is not None else {},
    )


@pytest.mark.parametrize(("goal", "order"), [("maximize", [2, 3, 0]), ("minimize", [0, 2, 3])])
def test_top_runs_rank_finished_runs_and_break_ties_by_age(goal: str, order: list[int]) -> None:
    runs = [
        run(0, "finished", 0.5),
        run(1, "failed", 0.99),  # a failed run never ranks
        run(2, "finished", 0.9),
        run(3, "finished", 0.9),  # a tie: the earlier run first
        run(4, "finished", None),
    ]
    assert [r.id for r in top_runs(runs, "accuracy", goal, k=3)] == [f"r{i}" for i in order]


def test_differing_keeps_only_parameters_that_vary() -> None:
    runs = [run(0, "finished", 1, lr=0.1, depth=4), run(1, "finished", 1, lr=0.2, depth=4)]
    assert differing(runs, ["lr", "depth"]) == ["lr"]


def test_importance_finds_the_parameter_that_drives_the_metric() -> None:
    rng = random.Random(7)
    rows: list[tuple[dict[str, object], float]] = []
    for _ in range(60):
        lr = rng.uniform(0, 1)
        config: dict[str, object] = {"lr": lr, "noise": rng.random(), "opt": rng.choice("ab")}
        rows.append((config, 3 * lr + rng.gauss(0, 0.05)))
    rows.append(({"lr": 0.5, "noise": 0.5, "opt": "a", "same": 1}, 1.5))
    found = parameter_importance(rows, ["lr", "noise", "opt", "constant"])
    assert found[0].name == "lr"
    assert found[0].importance > 0.7 and (found[0].correlation or 0) > 0.9
    assert abs(sum(i.importance for i in found) - 1) < 1e-9
    assert next(i for i in found if i.name == "opt").correlation is None  # categorical
    assert "constant" not in [i.name for i in found]  # never varied: left out
    assert parameter_importance(rows, ["lr"]) == parameter_importance(rows, ["lr"])  # seeded


def test_pearson_of_a_constant_is_none() -> None:
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


def test_end_message_lists_top_five_failures_and_buttons_escaped() -> None:
    runs = [run(i, "finished", 0.5 + i / 100, lr=i / 10, depth=4) for i in range(7)]
    runs.append(run(9, "failed", None, lr=0.9, depth=4))
    lines = ["Traceback (most recent call last):", "RuntimeError: boom <x>"] * 1
    end = SweepEnd(
        path="lab/wine/sw1",
        url="https://wandb.example/lab/wine/sweeps/sw1",
        name="wine",
        project="wine",
        phase="finished",
        note="",
        count=8,
        runs=tuple(runs),
        metric="accuracy",
        goal="maximize",
        params=("lr", "depth"),
        elapsed_s=250,
    )
    text, buttons = render_sweep_end(end, failure_reasons(lines))
    shown = check_html(text).splitlines()
    assert shown[0] == "🧹 sweep sw1 finished · wine → wine"
    assert shown[1] == "8/8 runs in 4m 10s"
    assert shown[3].startswith("1. 0.5600 run-<6>") and "lr=0.6" in shown[3]
    assert "depth" not in text  # the same in every top run: not worth a column
    assert [line[:2] for line in shown[3:8]] == ["1.", "2.", "3.", "4.", "5."]
    assert "failed: 1 of 8 (12 %) · RuntimeError: boom <x>" in shown
    assert [b.action for row in buttons for b in row] == [
        "sweep_rerun",
        "sweep_narrow",
        "sweep_plot",
    ]
    assert failure_reasons(["x", "ValueError: a", "ValueError: a"]) == Counter({"ValueError: a": 2})
