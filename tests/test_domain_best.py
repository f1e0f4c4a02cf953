"""Tests for picking the best run and rendering /best and Config."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from bot.domain.best import (
    BestAnswer,
    best_answer,
    choose_goal,
    fmt_change,
    logged_metrics,
    render_best,
    render_config,
    render_no_best,
)
from bot.domain.format import utf16_len
from bot.domain.params import flatten_config
from bot.domain.render import Button
from config.lab import ProjectConfig
from tests.servers.telegram.html import parse_html
from wandb_client.models import RunSnapshot

T0 = datetime(2025, 11, 23, 9, 0, tzinfo=UTC)
ALLOWED = {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}
HOSTILE = '<script>&"x"</b>'


def make_run(rid: str, acc: object = None, *, config=None, name=None, summary=None) -> RunSnapshot:
    s = dict(summary or {})
    if acc is not None:
        s["accuracy"] = acc
    return RunSnapshot(
        entity="lab",
        project="wine-quality-dev",
        id=rid,
        display_name=name or f"rf-{rid}",
        state="finished",
        url=f"https://wandb.ai/lab/wine-quality-dev/runs/{rid}",
        created_at=T0,
        config=config or {},
        summary=s,
    )


def assert_telegram_html(text: str) -> None:
    assert utf16_len(text) <= 4096
    parsed = parse_html(text)  # raises on anything Telegram would refuse
    kinds = {e["type"] for e in parsed.entities}
    assert kinds <= {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "code",
        "pre",
        "text_link",
        "blockquote",
    }
    import re

    tags = set(re.findall(r"</?([a-zA-Z-]+)", text))
    assert tags <= ALLOWED, tags


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {}),
        ({"b": 2, "a": 1}, {"a": 1, "b": 2}),
        ({"opt": {"lr": 0.1, "betas": {"b1": 0.9}}}, {"opt.betas.b1": 0.9, "opt.lr": 0.1}),
        ({"_wandb": {"x": 1}, "wandb_version": 1, "_private": 3, "lr": 1}, {"lr": 1}),
        ({"lr": {"value": 0.01, "desc": None}}, {"lr": 0.01}),
        ({"lr": {"value": 0.01}}, {"lr": 0.01}),
        ({"model": {"value": {"depth": 3, "_hidden": 1}, "desc": "m"}}, {"model.depth": 3}),
        ({"layers": [1, 2]}, {"layers": [1, 2]}),
        ({"value": 3, "other": 4}, {"other": 4, "value": 3}),
        ({"not_wrapper": {"value": 1, "min": 0}}, {"not_wrapper.min": 0, "not_wrapper.value": 1}),
        ({"empty": {}}, {"empty": {}}),
        ({1: "int key"}, {"1": "int key"}),
    ],
)
def test_flatten_config_cases(config, expected):
    flat = flatten_config(config)
    assert flat == expected
    assert list(flat) == sorted(flat)


@pytest.mark.parametrize(
    ("values", "goal", "best", "runner_up"),
    [
        ([0.97, 0.96, 0.95], "maximize", 0, 1),
        ([0.1, 0.2, 0.3], "minimize", 0, 1),
        ([math.nan, 0.9, 0.8], "maximize", 1, 2),
        ([math.inf, 0.9, 0.8], "maximize", 1, 2),
        ([-math.inf, 0.3, 0.4], "minimize", 1, 2),
        ([None, "text", True, 0.5, 0.7], "maximize", 4, 3),
        ([0.5, 0.7], "max", 1, 0),
        ([0.5, 0.7], "min", 0, 1),
        ([0.9, 0.9], "maximize", 0, 1),
        ([3, 2], "maximize", 0, 1),
    ],
)
def test_best_answer_picks_best_finite(values, goal, best, runner_up):
    runs = [make_run(str(i), v) for i, v in enumerate(values)]
    answer = best_answer(runs, "accuracy", goal)
    assert answer is not None
    assert answer.run is runs[best]
    assert answer.runner_up is runs[runner_up]
    assert answer.delta == pytest.approx(float(values[runner_up]) - float(values[best]))


@pytest.mark.parametrize("values", [[], [None], [math.nan, math.inf], ["x"]])
def test_best_answer_none_without_finite_values(values):
    assert (
        best_answer([make_run(str(i), v) for i, v in enumerate(values)], "accuracy", "max") is None
    )


def test_best_answer_single_run_has_no_runner_up():
    answer = best_answer([make_run("a", 0.9)], "accuracy", "maximize")
    assert answer is not None
    assert answer.runner_up is None and answer.delta is None
    text, _ = render_best(answer, scope="wine-quality-dev", ui_url="https://wandb.ai")
    assert "runner-up" not in text and "only run so far" in text


def test_best_answer_reads_nested_metric():
    run = make_run("a", summary={"eval": {"acc": 0.8}})
    answer = best_answer([run], "eval.acc", "maximize")
    assert answer is not None and answer.value == 0.8


def test_render_best_matches_sketch():
    runs = [
        make_run(
            "19",
            0.9778,
            config={
                "max_depth": 12,
                "n_estimators": 350,
                "dataset": "wine",
                "_wandb": {"cli_version": "0.31"},
            },
            name="rf-random-19",
            summary={"f1": 0.97, "_step": 3},
        ),
        make_run("7", 0.9722),
    ]
    answer = best_answer(runs, "accuracy", "maximize")
    assert answer is not None
    text, buttons = render_best(answer, scope="wine-quality-dev", ui_url="https://wandb.ai")
    lines = text.splitlines()
    assert lines[0] == "🏆 <b>best in wine-quality-dev</b> by accuracy (max)"
    assert 'href="https://wandb.ai/lab/wine-quality-dev/runs/19">rf-random-19</a>' in lines[1]
    assert "0.9778" in lines[1] and "runner-up 0.9722 (−0.0056)" in lines[1]
    assert "dataset=wine · max_depth=12 · n_estimators=350" in text
    assert "_wandb" not in text and "cli_version" not in text
    assert "f1 0.9700" in text and "_step" not in text
    assert buttons == (
        (
            Button("Config", "config", "lab/wine-quality-dev/19"),
            Button("Plot", "plot", "lab/wine-quality-dev/19"),
        ),
    )
    assert_telegram_html(text)


def test_render_best_minimize_says_min():
    answer = best_answer([make_run("a", 0.1), make_run("b", 0.2)], "accuracy", "minimize")
    assert answer is not None
    text, _ = render_best(answer, scope="p", ui_url="https://wandb.ai")
    assert "(min)" in text and "(+0.1000)" in text


def test_render_best_uses_key_metrics_when_given():
    run = make_run("a", 0.9, summary={"f1": 0.8, "loss": 0.3, "zeta": 1.0})
    answer = BestAnswer("accuracy", "maximize", run, 0.9)
    text, _ = render_best(answer, scope="p", ui_url="", key_metrics=("loss", "accuracy"))
    assert "loss 0.3000" in text and "f1" not in text and "zeta" not in text


def test_render_best_escapes_hostile_strings_and_caps_length():
    config = {HOSTILE * 20: HOSTILE * 200, **{f"k{i}{HOSTILE}": HOSTILE for i in range(200)}}
    run = make_run("x", 0.5, config=config, name=HOSTILE * 100, summary={HOSTILE * 50: 1.0})
    answer = BestAnswer(HOSTILE * 30, "maximize", run, 0.5, make_run("y", 0.4), 0.4)
    text, _ = render_best(answer, scope=HOSTILE * 60, ui_url="https://wandb.ai")
    assert "<script>" not in text
    assert "…" in text
    assert len(text.splitlines()) <= 8
    assert_telegram_html(text)


def test_render_best_builds_url_from_ui_when_run_url_is_relative():
    run = RunSnapshot(
        entity="lab",
        project="p",
        id="r1",
        display_name="r",
        state="finished",
        url="",
        created_at=T0,
        summary={"accuracy": 1.0},
    )
    answer = best_answer([run], "accuracy", "max")
    assert answer is not None
    text, _ = render_best(answer, scope="p", ui_url="https://ui.example/")
    assert 'href="https://ui.example/lab/p/runs/r1"' in text


def test_render_no_best_escapes():
    text = render_no_best(HOSTILE, "acc<1>")
    assert text == (
        "🏆 no run in <b>&lt;script&gt;&amp;&quot;x&quot;&lt;/b&gt;</b> has logged acc&lt;1&gt; yet"
    )
    assert_telegram_html(text)


def test_no_best_names_the_metrics_runs_log_and_the_likeliest_typo():
    runs = [
        RunSnapshot(
            entity="lab",
            project="wine",
            id="r1",
            display_name="r1",
            state="finished",
            url="",
            created_at=T0,
            summary={"accuracy": 0.9, "loss": 0.3, "_step": 4, "done": True, "note": "x"},
        )
    ]
    logged = logged_metrics(runs)
    assert logged == ("accuracy", "loss")
    text = render_no_best("wine", "acuracy", logged)
    assert text == (
        "🏆 no run in <b>wine</b> has logged acuracy yet. Did you mean accuracy? "
        "Its runs log: accuracy, loss."
    )
    assert render_no_best("wine", "zzz", logged).endswith("yet. Its runs log: accuracy, loss.")
    assert_telegram_html(text)


@pytest.mark.parametrize(
    ("change", "reference", "expected"),
    [
        (-0.0056, 0.9778, "−0.0056"),
        (0.0056, 0.9778, "+0.0056"),
        (0.0, 0.9778, "+0"),
        (12.5, 1234.0, "+12.50"),
        (1e-7, 0.9, "+0.00000010"),
        (math.nan, 0.9, "NaN"),
    ],
)
def test_fmt_change_matches_reference_decimals(change, reference, expected):
    assert fmt_change(change, reference) == expected


def test_render_config_small_is_one_pre_block():
    run = make_run("a", config={"lr": {"value": 0.001, "desc": None}, "opt": {"name": "<adam>"}})
    messages = render_config(run)
    assert len(messages) == 1
    assert "<pre>lr = 0.001\nopt.name = &lt;adam&gt;</pre>" in messages[0]
    assert_telegram_html(messages[0])


def test_render_config_empty():
    assert render_config(make_run("a")) == [
        "⚙️ config of <b>rf-a</b> · wine-quality-dev\nno config logged"
    ]


def test_render_config_large_splits_into_valid_blocks_and_keeps_everything():
    config = {f"param_{i:04d}": HOSTILE * 5 for i in range(600)}
    config["huge"] = "&" * 5000
    messages = render_config(make_run("a", config=config))
    assert len(messages) > 1
    for message in messages:
        assert_telegram_html(message)
        assert message.count("<pre>") == 1
    joined = "".join(messages)
    assert all(f"param_{i:04d} = " in joined for i in range(600))
    assert joined.count("&amp;") >= 5000 + 600 * 5


@pytest.mark.parametrize(
    ("metric", "kwargs", "goal", "source"),
    [
        ("loss", {}, "minimize", "by its name"),
        ("val/loss", {}, "minimize", "by its name"),
        ("train_mse", {}, "minimize", "by its name"),
        ("eval.perplexity", {}, "minimize", "by its name"),
        ("accuracy", {}, "maximize", "by its name"),
        ("lossless_ratio", {}, "maximize", "by its name"),
        ("loss", {"sweep_metric": "accuracy", "sweep_goal": "maximize"}, "minimize", "by its name"),
        (
            "score",
            {"sweep_metric": "score", "sweep_goal": "minimize"},
            "minimize",
            "from the sweep",
        ),
        (
            "score",
            {
                "lab": ProjectConfig(metric="score", goal="maximize"),
                "sweep_metric": "score",
                "sweep_goal": "minimize",
            },
            "maximize",
            "from the lab file",
        ),
        # A lab entry that names the metric but leaves the goal at its default says nothing.
        ("loss", {"lab": ProjectConfig(metric="loss")}, "minimize", "by its name"),
        ("loss", {"asked": "maximize"}, "maximize", "as asked"),
    ],
)
def test_goal_comes_from_the_lab_then_the_sweep_then_the_name(metric, kwargs, goal, source):
    choice = choose_goal(metric, **kwargs)
    assert (choice.goal, choice.source) == (goal, source)


def test_a_tie_says_tie_and_constants_of_the_top_runs_stay_out():
    runs = [
        make_run("a", 0.97, config={"seed": 1, "dataset": "wine"}),
        make_run("b", 0.97, config={"seed": 2, "dataset": "wine"}),
        make_run("c", 0.95, config={"seed": 3, "dataset": "wine"}),
    ]
    answer = best_answer(runs, "accuracy", "maximize")
    assert answer is not None
    usual = {"dataset": "wine"}
    text, _ = render_best(answer, scope="wine-quality-dev", ui_url="https://wandb.ai", usual=usual)
    plain = parse_html(text).text
    assert "runner-up 0.9700 (tie)" in plain
    assert "seed=1" in plain and "dataset=" not in plain
