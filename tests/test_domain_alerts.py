"""Metric alert rules: parsing and pure evaluation, table-driven."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.alerts import AlertState, Baseline, evaluate, matches, metric_value
from config import LabFileError, parse_lab
from config.alerts import AlertRule
from wandb_client.models import RunSnapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rule(**data) -> AlertRule:
    return AlertRule.model_validate({"name": "r", **data})


def run(summary=None, state="running", **kw) -> RunSnapshot:
    return RunSnapshot(
        entity="lab",
        project="p",
        id=kw.pop("id", "r1"),
        display_name=kw.pop("display_name", "brave-owl-1"),
        state=state,
        url="u",
        created_at=T0,
        summary=summary or {},
        **kw,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (0.5, 0.5), ("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf)],
)
def test_metric_value_reads_numbers_and_wandbs_nonfinite_strings(value, expected):
    got = metric_value({"val/accuracy": value}, "val/accuracy")
    assert got is not None
    assert got == expected or (math.isnan(expected) and math.isnan(got))


@pytest.mark.parametrize("value", [None, True, "text", {"a": 1}])
def test_metric_value_ignores_what_is_not_a_number(value):
    assert metric_value({"m": value}, "m") is None


# (rule, summaries seen one poll after another, actions expected per poll)
CASES = [
    (
        "nan fires once",
        {"nan": ["loss"]},
        [{"loss": 1.0}, {"loss": "NaN"}, {"loss": "NaN"}],
        [None, "fire", None],
    ),
    ("nan on inf", {"nan": ["loss", "train/loss"]}, [{"train/loss": "Infinity"}], ["fire"]),
    (
        "threshold below fires and resolves",
        {"threshold": {"metric": "val/accuracy", "below": 0.5}},
        [
            {"val/accuracy": 0.6},
            {"val/accuracy": 0.4},
            {"val/accuracy": 0.3},
            {"val/accuracy": 0.7},
        ],
        [None, "fire", None, "resolve"],
    ),
    ("threshold above", {"threshold": {"metric": "loss", "above": 2}}, [{"loss": 3}], ["fire"]),
    (
        "threshold without the metric says nothing",
        {"threshold": {"metric": "loss", "above": 2}},
        [{"acc": 3}],
        [None],
    ),
    (
        "plateau in steps",
        {"plateau": {"metric": "acc", "no_improvement_for": "3 steps"}},
        [
            {"acc": 0.5, "_step": 1},
            {"acc": 0.6, "_step": 2},
            {"acc": 0.6, "_step": 4},
            {"acc": 0.55, "_step": 5},
            {"acc": 0.7, "_step": 6},
        ],
        [None, None, None, "fire", "resolve"],
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "summaries", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_rules_fire_once_and_resolve_when_they_clear(name, data, summaries, expected):
    r = rule(**data)
    state = AlertState()
    got = []
    for i, summary in enumerate(summaries):
        check = evaluate(r, run(summary), state, T0 + timedelta(minutes=i))
        state = check.state
        got.append(check.action)
    assert got == expected


def test_nan_reads_the_logged_values_as_wandb_drops_nan_from_the_summary():
    r = rule(nan=["loss"])
    first = evaluate(r, run({"acc": 1}), AlertState(), T0, history=[(3, 0.5), (4, 0.4)])
    second = evaluate(r, run({"acc": 1}), first.state, T0, history=[(4, 0.4), (5, math.nan)])
    quiet = evaluate(r, run({"acc": 1}), second.state, T0, history=[])
    assert (first.action, second.action, quiet.action) == (None, "fire", None)
    assert second.detail == "loss is NaN at step 5"
    later = evaluate(r, run({"acc": 1}), second.state, T0, history=[(6, 0.3)])
    assert later.action == "resolve"


@pytest.mark.parametrize(("last", "expected"), [(0.7, "resolve"), (0.3, None), (None, None)])
def test_an_alert_ends_with_its_run_resolved_only_when_the_last_value_clears(last, expected):
    r = rule(threshold={"metric": "acc", "below": 0.5})
    firing = evaluate(r, run({"acc": 0.3}), AlertState(), T0).state
    final = {} if last is None else {"acc": last}
    ended = evaluate(r, run(final, state="finished"), firing, T0)
    assert (ended.action, ended.state.firing) == (expected, False)
    assert evaluate(r, run(final, state="finished"), ended.state, T0).action is None


def test_a_firing_alert_repeats_only_after_its_repeat_interval():
    r = rule(nan=["loss"], repeat="4h")
    state = AlertState()
    actions = []
    for minutes in (0, 60, 239, 240, 300, 480):
        check = evaluate(r, run({"loss": "NaN"}), state, T0 + timedelta(minutes=minutes))
        state = check.state
        actions.append(check.action)
    assert actions == ["fire", None, None, "repeat", None, "repeat"]


def test_plateau_in_time_fires_after_the_span_without_improvement():
    r = rule(plateau={"metric": "loss", "no_improvement_for": "30m", "goal": "minimize"})
    state = AlertState()
    actions = []
    for minutes, loss in ((0, 1.0), (10, 0.9), (30, 0.95), (41, 0.92), (50, 0.5)):
        check = evaluate(r, run({"loss": loss}), state, T0 + timedelta(minutes=minutes))
        state = check.state
        actions.append(check.action)
    assert actions == [None, None, None, "fire", "resolve"]


@pytest.mark.parametrize(
    ("data", "history", "expected"),
    [
        # mean of the last 3 logged values, not the summary's last one
        (
            {"threshold": {"metric": "loss", "above": 1, "over": 3, "agg": "mean"}},
            [(1, 0.5), (2, 2.0), (3, 2.0)],
            "fire",
        ),
        (
            {"threshold": {"metric": "loss", "above": 1, "over": 3, "agg": "min"}},
            [(1, 0.5), (2, 2.0), (3, 2.0)],
            None,
        ),
        ({"threshold": {"metric": "loss", "above": 1, "over": 3}}, [(1, 2.0), (2, 2.0)], None),
        (
            {
                "change": {
                    "metric": "loss",
                    "window": 2,
                    "against": 2,
                    "by": "10%",
                    "direction": "up",
                }
            },
            [(1, 1.0), (2, 1.0), (3, 1.2), (4, 1.2)],
            "fire",
        ),
        (
            {
                "change": {
                    "metric": "loss",
                    "window": 2,
                    "against": 2,
                    "by": "50%",
                    "direction": "up",
                }
            },
            [(1, 1.0), (2, 1.0), (3, 1.2), (4, 1.2)],
            None,
        ),
        (
            {
                "change": {
                    "metric": "acc",
                    "window": 1,
                    "against": 1,
                    "by": 0.05,
                    "direction": "down",
                }
            },
            [(1, 0.9), (2, 0.8)],
            "fire",
        ),
    ],
)
def test_history_rules_read_the_logged_values(data, history, expected):
    check = evaluate(
        rule(**data), run({"loss": 0.1, "acc": 0.1}), AlertState(), T0, history=history
    )
    assert check.action == expected


def test_history_windows_take_only_steps_not_seen_before():
    r = rule(threshold={"metric": "loss", "above": 1, "over": 2, "agg": "mean"})
    first = evaluate(r, run(), AlertState(), T0, history=[(1, 0.0), (2, 0.0)])
    again = evaluate(r, run(), first.state, T0, history=[(1, 5.0), (2, 5.0), (3, 0.0)])
    assert again.state.window == (0.0, 0.0) and again.state.last_step == 3


BASE = Baseline((("a", 0.80), ("b", 0.82), ("c", 0.81), ("d", 0.79)))


@pytest.mark.parametrize(
    ("data", "value", "state", "expected"),
    [
        ({"zscore": {"metric": "acc", "above": 3}}, 0.5, "finished", "fire"),
        ({"zscore": {"metric": "acc", "above": 3}}, 0.805, "finished", None),
        ({"zscore": {"metric": "acc", "above": 3}}, 0.5, "running", None),
        ({"new_best": {"metric": "acc"}}, 0.9, "finished", "fire"),
        ({"new_best": {"metric": "acc"}}, 0.81, "finished", None),
        ({"new_best": {"metric": "acc", "goal": "minimize"}}, 0.7, "finished", "fire"),
        ({"new_best": {"metric": "acc"}}, 0.9, "failed", None),
    ],
)
def test_baseline_rules_judge_a_finished_run_once(data, value, state, expected):
    check = evaluate(
        rule(**data), run({"acc": value}, state=state), AlertState(), T0, baseline=BASE
    )
    assert check.action == expected
    again = evaluate(rule(**data), run({"acc": value}, state=state), check.state, T0, baseline=BASE)
    assert again.action is None


def test_new_best_does_not_count_the_run_against_itself():
    base = Baseline((("r1", 0.95), ("a", 0.8)))
    assert (
        evaluate(
            rule(new_best={"metric": "acc"}),
            run({"acc": 0.95}, state="finished"),
            AlertState(),
            T0,
            baseline=base,
        ).action
        == "fire"
    )


@pytest.mark.parametrize(
    ("runs", "kw", "expected"),
    [
        ({"tags": ["prod"]}, {"tags": ("prod", "x")}, True),
        ({"tags": ["prod"]}, {"tags": ("dev",)}, False),
        ({"sweep": "abc"}, {"sweep": "abc"}, True),
        ({"sweep": "abc"}, {}, False),
        ({"name": "^brave"}, {}, True),
        ({"name": "^calm"}, {}, False),
        ({"group": "g1"}, {"group": "g1"}, True),
        ({"group": "g1"}, {"group": "g2"}, False),
    ],
)
def test_runs_filters_select_runs(runs, kw, expected):
    assert matches(rule(nan=["loss"], runs=runs), run(**kw)) is expected


def test_state_survives_a_round_trip_through_json_data():
    state = AlertState(True, T0, T0, "k", (1.0, 2.0), 3, 0.5, 2, T0, False)
    assert AlertState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "x"}, "exactly one of"),
        ({"name": "x", "nan": ["a"], "threshold": {"metric": "a", "above": 1}}, "exactly one of"),
        ({"name": "x", "threshold": {"metric": "a"}}, "exactly one of above or below"),
        ({"name": "x", "threshold": {"metric": "a", "above": 1, "wrong": 2}}, "Extra inputs"),
        ({"name": "x", "plateau": {"metric": "a", "no_improvement_for": "soon"}}, "not a duration"),
        ({"name": "x", "nan": ["val//acc"]}, "not a W&B metric name"),
        ({"name": "x", "change": {"metric": "a", "by": "-5%", "direction": "up"}}, "positive"),
        ({"name": "x", "nan": ["a"], "repeat": "often"}, "not a duration"),
        ({"name": "x", "nan": ["a"], "runs": {"name": "("}}, "not a regular expression"),
        ({"name": "x", "nan": ["a"], "chats": [42]}, "not a lab chat"),
    ],
)
def test_the_lab_file_refuses_bad_rules_naming_the_field(data, problem):
    lab = {"entity": "lab", "chats": [{"id": -1, "projects": ["p"]}], "alerts": [data]}
    with pytest.raises(LabFileError) as info:
        parse_lab(lab)
    assert problem in str(info.value) and "alerts" in str(info.value)


def test_project_rules_come_after_the_labs_and_names_must_differ():
    lab = parse_lab(
        {
            "entity": "lab",
            "alerts": [{"name": "nan-loss", "nan": ["loss"]}],
            "projects": {
                "p": {
                    "alerts": [
                        {"name": "low", "threshold": {"metric": "val/accuracy", "below": 0.5}}
                    ]
                }
            },
        }
    )
    assert [r.name for r in lab.alert_rules("p")] == ["nan-loss", "low"]
    assert [r.name for r in lab.alert_rules("q")] == ["nan-loss"]
    with pytest.raises(LabFileError, match="two alerts are named 'nan-loss'"):
        parse_lab(
            {
                "entity": "lab",
                "alerts": [{"name": "nan-loss", "nan": ["loss"]}],
                "projects": {"p": {"alerts": [{"name": "nan-loss", "nan": ["x"]}]}},
            }
        )


@pytest.mark.parametrize("metrics", [(), ("val/accuracy",), ("loss", "train/loss")])
def test_a_plot_buttons_target_carries_the_run_and_its_metrics(metrics) -> None:
    from bot.domain.plots import plot_target, read_plot_target

    target = plot_target("lab/wine/abc123", metrics)
    assert read_plot_target(target) == ("lab/wine/abc123", tuple(metrics))
    assert read_plot_target("lab/wine/abc123") == ("lab/wine/abc123", ())
