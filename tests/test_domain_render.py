"""Every message renders as short, valid Telegram HTML, whatever W&B sends."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.commands import UsageError
from bot.domain.events import RunEvent
from bot.domain.format import esc, split_message, truncate, utf16_len
from bot.domain.render import (
    ProjectHealth,
    render_agent_exit,
    render_burst,
    render_crash_loop_alert,
    render_run_event,
    render_runs_list,
    render_status,
    render_sweep_card,
    render_usage_error,
)
from config.lab import ProjectConfig
from wandb_client.models import RunSnapshot, SweepSnapshot

T0 = datetime(2024, 11, 23, 14, 2, tzinfo=UTC)
UI = "https://wandb.ai"
HOSTILE = '<b>&"x'
ALLOWED = {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}


class TelegramHtmlChecker(HTMLParser):
    """Fail on any tag Telegram refuses, unbalanced tags, or links without href."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        assert tag in ALLOWED, f"tag <{tag}> not allowed"
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"], attrs
        else:
            assert attrs == [], attrs
        self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> in {self.stack}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_html(text: str) -> str:
    """Assert text is Telegram HTML within the limit; return its visible text."""
    assert utf16_len(text) <= 4096
    # Telegram knows only these named entities; everything else must be numeric.
    for entity in re.findall(r"&([A-Za-z]+);", text):
        assert entity in {"lt", "gt", "amp", "quot"}, entity
    assert not re.search(r"&(?![A-Za-z]+;|#\d+;|#x[0-9a-fA-F]+;)", text), "bare &"
    checker = TelegramHtmlChecker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], checker.stack
    return "".join(checker.text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("<b>x</b> <a href='u'>l</a>", True),
        ("<div>x</div>", False),
        ("<b>x", False),
        ("a & b", False),
        ("a &nbsp; b", False),
    ],
)
def test_html_checker_itself(text, ok):
    if ok:
        check_html(text)
    else:
        with pytest.raises(AssertionError):
            check_html(text)


def make_run(state="finished", **kw):
    summary = {"_step": 880, "_runtime": 134.0, "accuracy": 0.97222, "f1": 0.97191}
    summary.update(kw.pop("summary", {}))
    base = dict(
        entity="lab",
        project="wine-quality-dev",
        id="abc123",
        display_name="rf-grid-7",
        state=state,
        url="https://wandb.ai/lab/wine-quality-dev/runs/abc123",
        created_at=T0 - timedelta(hours=1),
        updated_at=T0 - timedelta(minutes=5),
        heartbeat_at=T0 - timedelta(minutes=12),
        sweep="k3x9q",
        tags=("baseline",),
        config={"n_estimators": 200, "max_depth": 10, "_wandb": {"x": 1}},
        summary=summary,
        host="gpu-02",
        git_commit="3f2a1c9deadbeef",
        git_branch="main",
    )
    base.update(kw)
    return RunSnapshot(**base)


def make_event(kind="finished", run=None, **kw):
    state = {"stalled": "running", "recovered": "running"}.get(kind, kind)
    return RunEvent(kind=kind, run=run or make_run(state), previous_state="running", at=T0, **kw)


PROJECT = ProjectConfig(metric="accuracy")
KINDS = ["finished", "failed", "crashed", "killed", "stalled", "recovered"]

HOSTILE_RUNS: dict[str, dict[str, Any]] = {
    "hostile names": dict(
        display_name=HOSTILE,
        project="p",
        host=HOSTILE,
        tags=(HOSTILE, "a&b"),
        git_branch=HOSTILE,
        git_commit="<script>",
        config={HOSTILE: HOSTILE, "nested": {"deep": {HOSTILE: 1}}},
        summary={HOSTILE: 1.5, "accuracy": "<i>"},
    ),
    "nan and inf": dict(summary={"accuracy": math.nan, "loss": math.inf, "neg": -math.inf}),
    "missing metrics": dict(summary={"_step": None}, config={}),
    "no step no runtime": dict(summary={}, heartbeat_at=None, host=None, sweep=None, tags=()),
    "300-char names": dict(
        display_name="n" * 300,
        host="h" * 300,
        tags=tuple("t" * 300 for _ in range(20)),
        config={f"k{i}" * 50: "v" * 300 for i in range(40)},
        summary={f"m{i}" * 50: float(i) for i in range(40)},
        sweep="s" * 300,
    ),
    "escaping blow-up": dict(
        display_name='"' * 300,
        config={'"' * 200: '"' * 200} | {f"{i}" + "&" * 60: "<" * 60 for i in range(30)},
        summary={"&" * 200 + str(i): 1.0 for i in range(30)},
        tags=tuple("&" * 100 + str(i) for i in range(10)),
    ),
    "odd values": dict(
        summary={"accuracy": True, "table": {"_type": "table"}, "lst": [1, 2], "big": 1e30},
        config={"v": {"value": 3, "desc": "wrapped"}, "none": None, "list": [1, 2, 3]},
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(HOSTILE_RUNS))
def test_every_event_kind_renders_safely(kind, case):
    state = {"stalled": "running", "recovered": "running"}.get(kind, kind)
    run = make_run(state, **HOSTILE_RUNS[case])
    event = make_event(kind, run, idle_for=840.0, cadence=30.0, stalled_by="step")
    for project in (PROJECT, ProjectConfig(key_metrics=("accuracy", "missing", HOSTILE))):
        text, buttons = render_run_event(event, project, UI, UTC)
        visible = check_html(text)
        assert text.count("\n") < 8
        assert "<script>" not in text and "<b>&" not in text
        assert visible.splitlines()[0].split(" ")[1] == kind
        assert all(b.target == run.path for row in buttons for b in row)


def test_finished_run_shows_what_decides():
    text, buttons = render_run_event(make_event("finished"), PROJECT, UI, UTC)
    visible = check_html(text)
    assert visible.splitlines() == [
        "✅ finished · wine-quality-dev",
        "rf-grid-7 (sweep k3x9q) · 2m 14s",
        "accuracy 0.9722 · f1 0.9719",
        "max_depth=10 · n_estimators=200",
        "#baseline",
        "branch main · commit 3f2a1c9",
    ]
    assert '<a href="https://wandb.ai/lab/wine-quality-dev/sweeps/k3x9q">k3x9q</a>' in text
    assert [[b.action for b in row] for row in buttons] == [["config", "plot"]]


def test_hostile_run_name_is_escaped_and_linked():
    run = make_run(display_name=HOSTILE)
    text, _ = render_run_event(make_event("finished", run), PROJECT, UI, UTC)
    assert f'<a href="{run.url}">{esc(HOSTILE)}</a>' in text


def test_long_name_is_truncated_before_escaping():
    run = make_run(display_name="&" * 300)
    text, _ = render_run_event(make_event("finished", run), PROJECT, UI, UTC)
    assert esc(truncate("&" * 300, 64)) in text
    assert "&" * 65 not in check_html(text)


@pytest.mark.parametrize(
    ("kind", "expected_line"),
    [
        ("failed", "rf-grid-7 (sweep k3x9q) · after 2m 14s at step 880 · host gpu-02"),
        (
            "crashed",
            "rf-grid-7 (sweep k3x9q) · no heartbeat since 13:50 (12 min) · step 880 · host gpu-02",
        ),
        ("killed", "rf-grid-7 (sweep k3x9q) · stopped after 2m 14s at step 880"),
        (
            "stalled",
            "rf-grid-7 (sweep k3x9q) · no new step for 14 min (usually every 30s) · last heartbeat 13:50",
        ),
        ("recovered", "rf-grid-7 (sweep k3x9q) · moving again at step 880 after 14 min idle"),
    ],
)
def test_event_second_line(kind, expected_line):
    event = make_event(kind, idle_for=840.0, cadence=30.0, stalled_by="step")
    text, _ = render_run_event(event, PROJECT, UI, UTC)
    assert check_html(text).splitlines()[1] == expected_line


def test_failed_run_shows_exit_code_and_last_metric():
    run = make_run("failed", summary={"_exit_code": 1, "loss": 0.421})
    text, _ = render_run_event(make_event("failed", run), ProjectConfig(metric="loss"), UI, UTC)
    lines = check_html(text).splitlines()
    assert "exit 1 after" in lines[1]
    assert lines[2] == "last: loss 0.4210 · accuracy 0.9722"


def test_a_run_that_failed_at_once_says_within_1s():
    for summary, expected in (({"_exit_code": 1}, "exit 1 within 1s"), ({}, "within 1s")):
        run = make_run("failed", summary={"_runtime": 0.4, **summary})
        text, _ = render_run_event(make_event("failed", run), PROJECT, UI, UTC)
        line = check_html(text).splitlines()[1]
        assert expected in line and "under" not in line, line


def test_stalled_run_still_heartbeating_and_its_buttons():
    run = make_run("running", heartbeat_at=T0 - timedelta(seconds=20))
    event = make_event("stalled", run, idle_for=840.0, cadence=30.0, stalled_by="step")
    text, buttons = render_run_event(event, PROJECT, UI, UTC)
    assert "process still heartbeating" in check_html(text)
    assert [[b.action for b in row] for row in buttons] == [["stop", "plot"]]


def test_preempted_run_says_so():
    text, _ = render_run_event(make_event("killed", make_run("preempted")), PROJECT, UI, UTC)
    assert check_html(text).startswith("🛑 killed (preempted) · ")


def test_many_params_end_with_ellipsis():
    run = make_run(config={f"p{i}": i for i in range(10)})
    text, _ = render_run_event(make_event("finished", run), PROJECT, UI, UTC)
    assert check_html(text).splitlines()[3].endswith("p5=5 · …")


def _burst_events(n, kinds=("finished", "failed"), name="r"):
    events = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        run = make_run(
            kind,
            id=f"id{i}",
            display_name=f"{name}{i}",
            url=f"https://wandb.ai/lab/wine-quality-dev/runs/id{i}",
            summary={"accuracy": i / 100, "_exit_code": 1},
        )
        events.append(RunEvent(kind, run, "running", T0 + timedelta(seconds=i)))
    return events


def test_burst_counts_names_best_and_failures():
    texts = render_burst(_burst_events(12), PROJECT, UI)
    assert len(texts) == 1
    lines = check_html(texts[0]).splitlines()
    assert lines[0] == "📦 wine-quality-dev · sweep k3x9q · 12 runs ended in the last 11s"
    assert lines[1] == "✅ 6 finished · ❌ 6 failed"
    assert lines[2] == "best: r10 accuracy 0.1000"
    assert lines[3].startswith("❌ r1 (exit 1")
    assert len(lines) == 3 + 6


@pytest.mark.parametrize("name", ["x", HOSTILE * 50, "n" * 300])
def test_long_burst_splits_into_few_valid_messages(name):
    texts = render_burst(_burst_events(60, ("failed", "crashed", "stalled"), name), PROJECT, UI)
    assert 1 <= len(texts) <= 5
    for text in texts:
        check_html(text)
    if len(texts) > 1:
        assert "(1/" in texts[0] and "continued (2/" in texts[1]


def test_sweep_card_while_running_and_finished():
    sweep = SweepSnapshot(
        entity="lab",
        project="wine-quality-dev",
        id="k3x9q",
        display_name="k3x9q",
        state="RUNNING",
        method="random",
        url="https://wandb.ai/lab/wine-quality-dev/sweeps/k3x9q",
    )
    best = make_run(display_name="rf-random-19", summary={"accuracy": 0.97777})
    kw: dict[str, Any] = dict(
        lab_name="wine", done=14, count=20, failed=1, agents=2, elapsed_s=1080.0
    )
    text, buttons = render_sweep_card(sweep, best=best, metric="accuracy", finished=False, **kw)
    assert check_html(text).splitlines() == [
        "🧹 sweep k3x9q · wine → wine-quality-dev · random",
        "▓▓▓▓▓▓▓░░░ 14/20 · 1 failed · 2 agents · 18 min",
        "best accuracy 0.9778 · rf-random-19 (max_depth=10, n_estimators=200)".replace(", ", " · "),
    ]
    assert [[b.action for b in row] for row in buttons] == [["sweep_stop", "sweep_pause"]]
    text, buttons = render_sweep_card(sweep, best=None, metric=None, finished=True, **kw)
    assert "finished" in check_html(text).splitlines()[0]
    assert buttons == ()


def test_runs_list_is_compact_and_bounded():
    runs = [
        make_run(s, id=f"r{i}", display_name=f"{HOSTILE}{i}" * 20)
        for i, s in enumerate(["running", "failed"] * 100)
    ]
    text = render_runs_list("wine-quality-dev", runs, UI, T0, settings=PROJECT)
    visible = check_html(text)
    assert visible.splitlines()[0] == "📋 runs in wine-quality-dev · 200"
    assert "more" in visible.splitlines()[-1]
    assert check_html(render_runs_list("empty", [], UI, T0, entity="lab")) == "📋 no runs in empty"
    page = render_runs_list("wine-quality-dev", runs[:10], UI, T0, settings=PROJECT, total=1340)
    assert check_html(page).splitlines()[0] == "📋 runs in wine-quality-dev · 10 of 1,340"
    # A total no larger than the page says nothing new.
    whole = render_runs_list("wine-quality-dev", runs[:10], UI, T0, settings=PROJECT, total=10)
    assert check_html(whole).splitlines()[0] == "📋 runs in wine-quality-dev · 10"


def test_agent_exit_and_crash_loop_alert():
    text = render_agent_exit(
        "lab/p/k3x9q", agent=2, returncode=1, ran_for_s=180, log_tail=[HOSTILE] * 500, ui_url=UI
    )
    assert check_html(text).startswith("⚠️ agent 2 of sweep k3x9q exited with 1 after 3m 00s")
    assert "<pre>" in text
    assert "is done" in render_agent_exit(
        "lab/p/k3x9q", agent=1, returncode=0, ran_for_s=5, ui_url=UI
    )
    text, buttons = render_crash_loop_alert(
        "lab/p/k3x9q", failures=[make_run("failed")] * 3, window_s=600, paused=True, ui_url=UI
    )
    assert check_html(text).splitlines()[1] == "3 runs failed within 10 min"
    assert [b.action for b in buttons[0]] == ["sweep_stop"]
    # Resume alone goes on (it starts agents for the runs left): no second command to type.
    assert "/sweep resume k3x9q</code> goes on" in text and "sweep=" not in text


def test_status_lists_projects_and_health():
    items = [
        ProjectHealth("wine", T0 - timedelta(seconds=30), running=2),
        ProjectHealth(HOSTILE, None, error=HOSTILE),
    ]
    text = render_status(
        items, now=T0, outbox_depth=3, wandb_ok=False, wandb_error="W&B did not answer", tz=UTC
    )
    assert check_html(text).splitlines() == [
        "⚠️ W&B did not answer",
        "wine: polled 14:01 (30s ago) · 2 running",
        f"{HOSTILE}: not polled yet · ⚠️ {HOSTILE}",
        "outbox: 3 waiting · agents: 0",
    ]


def test_status_before_any_answer_does_not_claim_w_and_b_is_reachable():
    items = [ProjectHealth("wine", T0, missing=True)]
    text = render_status(items, now=T0, outbox_depth=0, wandb_ok=True, wandb_checked=False)
    assert check_html(text).splitlines()[:2] == [
        "⏳ W&B not asked yet",
        "wine: polled 14:02 (under 1s ago) · ⚠️ not found in W&B (no run logged there yet?)",
    ]


def test_usage_error_is_one_escaped_line():
    text = render_usage_error(UsageError('Unknown sweep "<x>".', "/sweep start <name>"))
    assert "\n" not in text
    assert check_html(text) == 'Unknown sweep "<x>". Usage: /sweep start <name>'


names = st.text(min_size=0, max_size=400)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=100),
    st.none(),
    st.booleans(),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    name=names,
    kind=st.sampled_from(KINDS),
    summary=st.dictionaries(st.text(max_size=80), values, max_size=12),
    config=st.dictionaries(
        st.text(max_size=80),
        st.one_of(values, st.dictionaries(st.text(max_size=20), values, max_size=3)),
        max_size=12,
    ),
    tags=st.lists(st.text(max_size=80), max_size=10).map(tuple),
)
def test_any_run_renders_within_limits(name, kind, summary, config, tags):
    state = {"stalled": "running", "recovered": "running"}.get(kind, kind)
    run = make_run(
        state, display_name=name, summary=summary, config=config, tags=tags, host=name or None
    )
    event = make_event(kind, run, idle_for=100.0, cadence=1.0, stalled_by="heartbeat")
    text, _ = render_run_event(event, PROJECT, UI, UTC)
    check_html(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=5000), max_size=30), st.integers(min_value=10, max_value=4096))
def test_split_message_respects_limit_and_keeps_text(lines, limit):
    parts = split_message(lines, limit=limit)
    assert all(utf16_len(p) <= limit for p in parts)
    # No characters lost: the parts hold every line's characters, in order.
    assert "".join(parts).replace("\n", "") == "".join(lines).replace("\n", "")


def test_a_finished_run_reads_quietly_counters_out_numbers_as_written():
    run = make_run(
        summary={"epoch": 9, "trainer/global_step": 880, "loss": 0.25, "val_acc": 0.9},
        config={"lr": 0.01, "hang": False, "fail_at": None, "weight_decay": 1e-05},
        sweep=None,
        heartbeat_at=T0 - timedelta(hours=1) + timedelta(seconds=0.4),
    )
    run = RunSnapshot(
        **{**{f: getattr(run, f) for f in run.__slots__}, "summary": {**run.summary, "_runtime": 0}}
    )
    text, _ = render_run_event(make_event(run=run), ProjectConfig(), UI, UTC)
    lines = check_html(text).splitlines()
    assert lines[1] == "rf-grid-7 · under 1s"
    assert lines[2] == "accuracy 0.9722 · f1 0.9719 · loss 0.2500 · val_acc 0.9000"
    assert lines[3] == "lr=0.01 · weight_decay=1e-05"
    # A counter the lab names is shown.
    named, _ = render_run_event(make_event(run=run), ProjectConfig(key_metrics=("epoch",)), UI)
    assert check_html(named).splitlines()[2] == "epoch 9"


def test_a_failed_runs_message_says_why():
    from bot.domain.why import explain

    why = explain(
        ["Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory"]
    )
    text, _ = render_run_event(make_event("failed", why=why), PROJECT, UI, UTC)
    assert "out of memory · torch.OutOfMemoryError: CUDA out of memory" in check_html(text)


def test_a_failed_run_says_how_far_it_got_in_its_own_counter():
    run = make_run("failed", summary={"_step": 0, "epoch": 1})
    text, _ = render_run_event(make_event("failed", run), PROJECT, UI, UTC)
    assert "at epoch 1" in check_html(text).splitlines()[1]
