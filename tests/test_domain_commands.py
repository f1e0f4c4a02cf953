"""Command arguments parse into requests, and every bad argument gets a clear refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.commands import (
    BEST_USAGE,
    BestRequest,
    PlotRequest,
    ProjectRef,
    RunRef,
    RunsRequest,
    SilenceRequest,
    SweepPause,
    SweepRef,
    SweepResume,
    SweepStart,
    SweepStatus,
    SweepStop,
    UsageError,
    parse_best,
    parse_duration,
    parse_plot,
    parse_project_arg,
    parse_run_ref,
    parse_runs,
    parse_silence,
    parse_sweep,
)
from config.lab import LabConfig

LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "chats": [{"id": 1, "projects": ["wine-quality-dev", "abcd1234"]}],
        "projects": {"teamproj": {"entity": "team"}},
        "sweeps": {
            "wine": {"file": Path("wine.yaml"), "project": "wine-quality-dev"},
            "iris": {"file": Path("iris.yaml"), "project": "iris", "entity": "other"},
        },
    }
)


def sweep(text):
    return parse_sweep(text.split(), LAB, max_count=500, max_agents=4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start wine", SweepStart("wine", 10, 1, (), "wine-quality-dev", "lab")),
        (
            "start wine count=20 agents=2 gpus=0,1 project=wine-prod",
            SweepStart("wine", 20, 2, (0, 1), "wine-prod", "lab"),
        ),
        ("START iris COUNT=500 agents=4", SweepStart("iris", 500, 4, (), "iris", "other")),
        (
            "start wine sweep=k3x9qabc",
            SweepStart("wine", 10, 1, (), "wine-quality-dev", "lab", "k3x9qabc"),
        ),
        ("stop k3x9qabc", SweepStop(SweepRef("k3x9qabc"))),
        ("cancel wine", SweepStop(SweepRef(name="wine"), cancel=True)),
        (
            "pause lab/wine-quality-dev/k3x9qabc",
            SweepPause(SweepRef("k3x9qabc", "wine-quality-dev", "lab")),
        ),
        ("resume wine-quality-dev/k3x9qabc", SweepResume(SweepRef("k3x9qabc", "wine-quality-dev"))),
        (
            "status https://wandb.example.org/lab/p/sweeps/k3x9qabc?workspace=x#top",
            SweepStatus(SweepRef("k3x9qabc", "p", "lab")),
        ),
        ("status lab/p/sweeps/k3x9qabc", SweepStatus(SweepRef("k3x9qabc", "p", "lab"))),
        ("status", SweepStatus(None)),
    ],
)
def test_parse_sweep_accepts(text, expected):
    assert sweep(text) == expected


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("", "Say what to do"),
        ("launch wine", 'Unknown sweep action "launch"'),
        ("start", "Known: iris, wine"),
        ("start nosuch", 'Unknown sweep "nosuch". Known: iris, wine.'),
        ("start wine count=abc", 'count must be a whole number from 1 to 500, not "abc"'),
        ("start wine count=-1", 'not "-1"'),
        ("start wine count=0", "count must be from 1 to 500, not 0"),
        (f"start wine count={10**9}", "count must be"),
        ("start wine count=501", "not 501"),
        ("start wine count=1e3", 'not "1e3"'),
        ("start wine agents=5", "agents must be from 1 to 4, not 5"),
        ("start wine agents=", "agents must be a whole number"),
        ("start wine gpus=x", 'gpus must be a comma list of GPU numbers such as 0,1, not "x"'),
        ("start wine gpus=0,,1", "gpus must be a comma list"),
        ("start wine gpus=-1", "gpus must be a comma list"),
        ("start wine gpus=1,1", "lists a GPU twice"),
        ("start wine project=../../etc", 'Project "../../etc" may use only'),
        ("start wine project=a/b", "may use only"),
        ("start wine sweep=../x", "is not a W&B sweep id"),
        (
            "start wine colour=red",
            'Unknown option "colour". Known: count, agents, gpus, project, sweep.',
        ),
        ("start wine count=2 count=3", "count is given twice"),
        ("start wine 20", 'Expected key=value, got "20"'),
        ("stop", "Say which sweep"),
        ("stop a b", "Give one sweep"),
        ("stop nosuch-sweep", 'Unknown sweep "nosuch-sweep"'),
        ("pause https://evil/x/y/runs/abc", "is not a link to a W&B sweep"),
        ("status ftp://h/lab/p/sweeps/abcd", "is not a W&B link"),
        ("resume a/b/c/d/e", "is not a sweep reference"),
    ],
)
def test_parse_sweep_refuses(text, reason_part):
    with pytest.raises(UsageError) as info:
        sweep(text)
    assert reason_part in info.value.reason
    assert str(info.value).endswith(f"Usage: {info.value.usage}")
    assert info.value.usage.startswith("/sweep")


def test_count_defaults_within_the_cap():
    request = parse_sweep(["start", "wine"], LAB, max_count=3, max_agents=1)
    assert isinstance(request, SweepStart)
    assert request.count == 3


@pytest.mark.parametrize(
    ("text", "project", "expected"),
    [
        ("abc123", "wine", RunRef("lab", "wine", "abc123")),
        ("wine/abc123", None, RunRef("lab", "wine", "abc123")),
        ("team/wine/abc123", None, RunRef("team", "wine", "abc123")),
        ("team/wine/runs/abc123", None, RunRef("team", "wine", "abc123")),
        ("https://wandb.ai/team/wine/runs/abc123", None, RunRef("team", "wine", "abc123")),
        (
            "http://127.0.0.1:8080/team/wine/runs/abc123/overview?nw=1#x",
            None,
            RunRef("team", "wine", "abc123"),
        ),
        ("  abc-12_3  ", "wine", RunRef("lab", "wine", "abc-12_3")),
        # Display names are free text in W&B: dots, accents and other scripts are names too.
        ("wine/bert.v2", None, RunRef("lab", "wine", "bert.v2")),
        ("ünïcødé", "wine", RunRef("lab", "wine", "ünïcødé")),
        ("wine/lr=0.01,bs=32", None, RunRef("lab", "wine", "lr=0.01,bs=32")),
    ],
)
def test_parse_run_ref_accepts(text, project, expected):
    assert parse_run_ref(text, "lab", project) == expected


@pytest.mark.parametrize(
    ("text", "project", "reason_part"),
    [
        ("abc123", None, "needs its project"),
        ("", "wine", "Say which run"),
        ("wine/abc<b>", None, "is not a W&B run id or name"),
        ("../../etc/passwd", None, "is not a run reference"),
        ("../etc/passwd", None, 'Entity ".." may use only'),
        ("a/b/c/d", None, "is not a run reference"),
        ("https://wandb.ai/team/wine/sweeps/abc", None, "is not a link to a W&B run"),
        ("https://wandb.ai/team", None, "is not a link to a W&B run"),
        ("javascript://x/a/b/runs/c", None, "is not a W&B link"),
        ("wine/a b", None, "is not a W&B run id or name"),
        ("wine/-rf", None, "is not a W&B run id or name"),
    ],
)
def test_parse_run_ref_refuses(text, project, reason_part):
    with pytest.raises(UsageError) as info:
        parse_run_ref(text, "lab", project)
    assert reason_part in info.value.reason


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["wine-quality-dev"],
            BestRequest("lab/wine-quality-dev", False, None, None, "lab", "wine-quality-dev"),
        ),
        (["wine", "accuracy"], BestRequest("lab/wine", False, "accuracy", None, "lab", "wine")),
        (
            ["wine", "val/loss", "min"],
            BestRequest("lab/wine", False, "val/loss", "minimize", "lab", "wine"),
        ),
        (["wine", "MAX"], BestRequest("lab/wine", False, None, "maximize", "lab", "wine")),
        (["teamproj"], BestRequest("team/teamproj", False, None, None, "team", "teamproj")),
        (["k3x9qabc"], BestRequest("k3x9qabc", True, None, None, None, None, "k3x9qabc")),
        # a project the lab knows wins over the sweep-id look
        (["abcd1234"], BestRequest("lab/abcd1234", False, None, None, "lab", "abcd1234")),
        (
            ["lab/p/sweeps/k3x9qabc", "acc"],
            BestRequest("lab/p/k3x9qabc", True, "acc", None, "lab", "p", "k3x9qabc"),
        ),
        (
            ["https://wandb.ai/lab/p/sweeps/k3x9qabc?x=1"],
            BestRequest("lab/p/k3x9qabc", True, None, None, "lab", "p", "k3x9qabc"),
        ),
    ],
)
def test_parse_best_accepts(args, expected):
    assert parse_best(args, LAB) == expected


def test_parse_best_without_arguments_means_the_chats_only_project():
    assert parse_best([], LAB, default_project="wine") == parse_best(["wine"], LAB)
    assert parse_best(["other"], LAB, default_project="wine").project == "other"


@pytest.mark.parametrize(
    ("args", "reason_part"),
    [
        ([], "Say which project or sweep"),
        (["wine", "acc", "up"], 'Expected min or max, not "up"'),
        (["wine", "a", "b", "c"], "Too many"),
        (["wine", "<b>"], "is not a metric name"),
        (["../../etc"], "is not a project"),
        (["lab/p/sweeps/K3X!"], "is not a W&B sweep id"),
    ],
)
def test_parse_best_refuses(args, reason_part):
    with pytest.raises(UsageError) as info:
        parse_best(args, LAB)
    assert reason_part in info.value.reason
    assert info.value.usage == BEST_USAGE


@pytest.mark.parametrize(
    ("args", "default", "expected"),
    [
        (["wine"], None, RunsRequest("wine", "lab", None, 10)),
        (["wine", "failed", "5"], None, RunsRequest("wine", "lab", "failed", 5)),
        (["other/wine", "20", "RUNNING"], None, RunsRequest("wine", "other", "running", 20)),
        ([], "wine", RunsRequest("wine", "lab", None, 10)),
        (["crashed"], "wine", RunsRequest("wine", "lab", "crashed", 10)),
        (["wine", "branch=sweep"], None, RunsRequest("wine", "lab", None, 10, "sweep")),
        (["branch=feat/x", "5"], "wine", RunsRequest("wine", "lab", None, 5, "feat/x")),
    ],
)
def test_parse_runs_accepts(args, default, expected):
    assert parse_runs(args, LAB, default_project=default) == expected


@pytest.mark.parametrize(
    ("args", "reason_part"),
    [
        ([], "Say which project"),
        (["wine", "51"], "limit must be from 1 to 50"),
        (["wine", "0"], "limit must be from 1 to 50"),
        (["wine", "99999999999999999999"], "limit must be a whole number from 1 to 50"),
        (["wine", "sleeping"], "is neither a run state"),
        (["wine", "failed", "failed"], "is neither"),
        (["../../etc"], "is not a project"),
        (["wine", "branch="], "Say which branch"),
        (["wine", "branch=a", "branch=b"], "is neither"),
    ],
)
def test_parse_runs_refuses(args, reason_part):
    with pytest.raises(UsageError) as info:
        parse_runs(args, LAB)
    assert reason_part in info.value.reason


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["wine"], ProjectRef("lab", "wine")),
        (["team/wine"], ProjectRef("team", "wine")),
        (["teamproj"], ProjectRef("team", "teamproj")),
        (["https://wandb.ai/team/wine/workspace"], ProjectRef("team", "wine")),
    ],
)
def test_parse_project_arg_accepts(args, expected):
    assert parse_project_arg(args, LAB) == expected


@pytest.mark.parametrize(
    ("args", "reason_part"),
    [
        ([], "Say which project"),
        (["a", "b"], "exactly one"),
        (["../../etc"], "is not a project"),
        (["wine;rm"], "may use only"),
        (["https://wandb.ai/"], "is not a link to a W&B project"),
    ],
)
def test_parse_project_arg_refuses(args, reason_part):
    with pytest.raises(UsageError) as info:
        parse_project_arg(args, LAB, "unwatch")
    assert reason_part in info.value.reason
    assert info.value.usage == "/unwatch <project|entity/project>"


def test_parse_plot():
    assert parse_plot(["wine/abc", "loss", "acc"], LAB) == PlotRequest(
        RunRef("lab", "wine", "abc"), ("loss", "acc")
    )
    with pytest.raises(UsageError, match="needs its project"):
        parse_plot(["abc"], LAB)
    with pytest.raises(UsageError, match="not a metric"):
        parse_plot(["wine/abc", "<x>"], LAB)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("2H", 7200),
        ("", None),
        ("x", None),
        ("5", None),
        ("-1h", None),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("args", "result"),
    [
        (["wine", "2h"], SilenceRequest(ProjectRef("lab", "wine"), 7200.0)),
        (["wine"], "Give a project and a duration"),
        (["wine", "soon"], "is not a duration"),
        (["wine", "8d"], "at most 7d"),
        (["wine", "0s"], "is not a duration"),
    ],
)
def test_parse_silence(args, result):
    if isinstance(result, str):
        with pytest.raises(UsageError, match=result):
            parse_silence(args, LAB)
    else:
        assert parse_silence(args, LAB) == result


def test_long_hostile_argument_is_shortened_in_the_reason():
    with pytest.raises(UsageError) as info:
        sweep("start " + "<b>" * 500)
    assert len(info.value.reason) < 200
