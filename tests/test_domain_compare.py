"""Tests for /rerun and /compare parsing and the pure parts of /compare."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain.best import GoalChoice
from bot.domain.commands import (
    CompareRequest,
    RerunRequest,
    RunRef,
    UsageError,
    parse_compare,
    parse_rerun,
)
from bot.domain.compare import (
    Comparison,
    config_differences,
    differences_line,
    pick_metric,
    render_compare_caption,
    run_labels,
    unknown_metric_text,
    verdict,
)
from bot.domain.format import TELEGRAM_CAPTION_LIMIT, utf16_len
from config.lab import LabConfig, ProjectConfig
from tests.servers.telegram.html import parse_html
from wandb_client.models import RunSnapshot

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "chats": [{"id": 1, "projects": ["wine"]}],
        "sweeps": {"wine": {"file": Path("wine.yaml"), "project": "wine"}},
    }
)
MAX = GoalChoice("maximize", "from the lab file")
MIN = GoalChoice("minimize", "by its name")


def run(rid: str, *, project: str = "wine", name: str | None = None, config=None, summary=None):
    return RunSnapshot(
        entity="lab",
        project=project,
        id=rid,
        display_name=name or f"rf-{rid}",
        state="finished",
        url="",
        created_at=T0,
        config=config or {},
        summary=summary or {},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", RerunRequest(RunRef("lab", "wine", "abc"), 3, 3)),
        ("abc seeds=5", RerunRequest(RunRef("lab", "wine", "abc"), 5, 5)),
        ("abc seeds=5 count=2", RerunRequest(RunRef("lab", "wine", "abc"), 5, 2)),
        ("p/abc sweep=wine", RerunRequest(RunRef("lab", "p", "abc"), 3, 3, "wine")),
        ("abc SEEDS=20", RerunRequest(RunRef("lab", "wine", "abc"), 20, 20)),
    ],
)
def test_parse_rerun_accepts(text: str, expected: RerunRequest) -> None:
    request = parse_rerun(text.split(), LAB, default_project="wine")
    assert request == expected
    # The arguments a Yes button keeps give the same request back.
    assert parse_rerun(request.arguments(), LAB) == request


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Say which run."),
        ("seeds=3", "Say which run."),
        ("abc seeds=0", "seeds must be from 1 to 20, not 0."),
        ("abc seeds=abc", 'seeds must be a whole number from 1 to 20, not "abc".'),
        ("abc seeds=21", "seeds must be from 1 to 20, not 21."),
        ("abc seeds=99999999999", "seeds must be a whole number from 1 to 20"),
        ("abc seeds=-1", "seeds must be a whole number"),
        ("abc count=4", "count must be from 1 to 3, not 4."),
        ("abc seeds=2 count=0", "count must be from 1 to 2, not 0."),
        ("abc sweep=nosuch", 'Unknown lab sweep "nosuch". Known: wine.'),
        ("abc agents=2", 'Unknown option "agents"'),
        ("abc seeds=2 seeds=3", "seeds is given twice."),
        ("abc 5", 'Expected key=value, got "5".'),
        ("a/b/c/d", "is not a run reference"),
    ],
)
def test_parse_rerun_refuses_with_the_usage(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_rerun(text.split(), LAB, default_project="wine")
    assert reason in caught.value.reason
    assert caught.value.usage.startswith("/rerun <run> [seeds=N, default 3, at most 20]")


def test_parse_compare_keeps_both_runs_and_the_metric() -> None:
    request = parse_compare(["a1", "p/b2", "val/acc"], LAB, default_project="wine")
    assert request == CompareRequest(
        RunRef("lab", "wine", "a1"), RunRef("lab", "p", "b2"), "val/acc"
    )
    assert parse_compare(request.arguments(), LAB) == request


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Say which two runs."),
        ("a1", "Name two runs."),
        ("a1 a1", "same run twice"),
        ("a1 wine/a1", "same run twice"),
        ("a1 b2 m n", "at most one metric"),
        ("a1 b2 <b>", "is not a metric name"),
    ],
)
def test_parse_compare_refuses_with_the_usage(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_compare(text.split(), LAB, default_project="wine")
    assert reason in caught.value.reason and caught.value.usage == "/compare <run> <run> [metric]"


def test_run_labels_use_the_path_only_when_projects_differ() -> None:
    assert run_labels(run("a", name="x"), run("b", name="y")) == ("x", "y")
    assert run_labels(run("a", name="x"), run("b", name="x")) == ("x (a)", "x (b)")
    assert run_labels(run("a", name="x"), run("b", project="prod", name="y")) == (
        "wine/x",
        "prod/y",
    )


@pytest.mark.parametrize(
    ("projects", "asked", "expected"),
    [
        ((ProjectConfig(metric="accuracy"),), None, "accuracy"),
        ((ProjectConfig(metric="accuracy"),), "loss", "loss"),
        # The lab's metric is not logged by both: a key metric both logged is next.
        ((ProjectConfig(metric="f1", key_metrics=("loss",)),), None, "loss"),
        # Nothing named: the first shared metric that is not a counter.
        ((ProjectConfig(),), None, "accuracy"),
    ],
)
def test_pick_metric(projects, asked, expected) -> None:
    a = run("a", summary={"epoch": 3, "accuracy": 0.9, "loss": 0.2, "f1": 0.8, "_step": 3})
    b = run("b", summary={"epoch": 3, "accuracy": 0.8, "loss": 0.3})
    assert pick_metric(a, b, projects, asked) == expected


def test_pick_metric_is_none_and_says_so_when_nothing_is_shared() -> None:
    a, b = run("a", summary={"acc": 0.9}), run("b", summary={"loss": 0.1})
    assert pick_metric(a, b, [ProjectConfig()]) is None
    assert "logged no metric in common" in unknown_metric_text(a, b, None)
    text = unknown_metric_text(
        run("a", summary={"x": 1.0, "y": 2}), run("b", summary={"y": 1}), "z"
    )
    assert text.endswith('do not both have history for "z". Metrics both logged: y.')


def test_config_differences_name_only_keys_that_differ() -> None:
    a = {"lr": {"value": 0.01}, "opt": {"name": "adam", "beta": 0.9}, "seed": 1, "_wandb": {}}
    b = {"lr": 0.1, "opt": {"name": "adam", "beta": 0.99}, "seed": 1, "extra": True}
    assert config_differences(a, b) == [
        ("extra", "—", True),
        ("lr", 0.01, 0.1),
        ("opt.beta", 0.9, 0.99),
    ]
    assert differences_line(config_differences(a, a)) == "same config"
    many = [(f"k{i}", i, i + 1) for i in range(11)]
    line = differences_line(many)
    assert line.startswith("differs: k0 0 → 1 · ") and line.endswith("· +3 more")


@pytest.mark.parametrize(
    ("a", "b", "goal", "expected"),
    [
        (0.9, 0.912, MAX, "B is 0.0120 better (+0.0120)"),
        (0.9, 0.888, MAX, "B is 0.0120 worse (−0.0120)"),
        (0.3, 0.25, MIN, "B is 0.0500 better (−0.0500)"),
        (0.5, 0.5, MAX, "a tie at 0.5000"),
        (None, 0.5, MAX, "no final value to compare"),
    ],
)
def test_verdict_follows_the_goal(a, b, goal, expected) -> None:
    assert verdict(a, b, goal) == expected


def test_caption_fits_telegram_with_hostile_names_and_wide_configs() -> None:
    wide = {f"<key>&{i}" + "x" * 60: "<b>" * 30 for i in range(60)}
    a = run("a", name="<b>&" * 40, config=wide, summary={"acc": 0.5})
    b = run("b", name="</pre>" * 40, config={}, summary={"acc": 0.7})
    caption = render_compare_caption(
        Comparison(a, b, "acc", MAX, [(0.0, 0.5)], [(0.0, 0.7)]), "https://wandb.ai"
    )
    parse_html(caption)  # raises on anything Telegram would refuse
    assert utf16_len(caption) <= TELEGRAM_CAPTION_LIMIT
    assert "B is 0.2000 better" in caption
    assert caption.splitlines()[-1].startswith("differs: ") and caption.endswith(" more")
