"""Per-agent control with a fake launcher: list, stop one, scale; parsing and rendering."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.domain.agent_control import (
    AgentLine,
    current_run,
    gpus_for_new_agents,
    render_agent_list,
    render_agent_stop_prompt,
    render_scaled,
)
from bot.domain.commands import SweepAgents, SweepRef, SweepScale, UsageError, parse_sweep
from bot.store import Store
from bot.sweeps.agents import AgentWatch
from bot.sweeps.breaker import CrashLoopBreaker
from bot.sweeps.common import SweepError, Tasks
from bot.sweeps.control import AgentControl
from bot.sweeps.launchers import LauncherRegistry
from config import Settings, parse_lab
from config.lab import CrashLoopConfig
from tests.test_sweep_parts import (
    PATH,
    T0,
    UI,
    Clock,
    FakeDelivery,
    FakeLauncher,
    FakeWandb,
    Parts,
    eventually,
    failed,
    run,
    settle,
    sweep_record,
)
from wandb_client.launcher import AgentEnd, LaunchedAgent, LaunchRequest, agent_counts
from wandb_client.models import SweepSnapshot

LINES = ["wandb: Starting wandb agent", "INFO - Running runs: []"]


class CountingLauncher(FakeLauncher):
    """The fake launcher, numbering agents from `first_index` and keeping each request."""

    def __init__(self) -> None:
        super().__init__("local")
        self.requests: list[LaunchRequest] = []

    async def start(
        self, request: LaunchRequest, on_started: Callable[[LaunchedAgent], None] | None = None
    ) -> list[LaunchedAgent]:
        self.requests.append(request)
        request.log_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for position in range(request.agents):
            index = request.first_index + position
            agent = LaunchedAgent(
                kind="local",
                sweep_path=request.sweep_path,
                index=index,
                handle=f'{{"job": "77", "task": {index}}}',
                log_path=request.log_dir / f"{index}.log",
                started_at=T0,
                gpus=(request.gpus[position % len(request.gpus)],) if request.gpus else (),
                where=f"node{index}",
            )
            agent.log_path.write_text("\n".join(LINES) + "\n")
            self.alive.add(agent.handle)
            if on_started is not None:
                on_started(agent)
            started.append(agent)
        return started


@dataclass
class CappedWandb(FakeWandb):
    """W&B with the sweep's run cap set, as the bot creates its sweeps."""

    run_cap: int | None = 4

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot:
        snapshot = await super().sweep(entity, project, sweep_id)
        return dataclasses.replace(snapshot, run_cap=self.run_cap)


@dataclass
class Control:
    parts: Parts
    launcher: CountingLauncher
    wandb: CappedWandb
    control: AgentControl


@pytest.fixture
async def ctl(tmp_path: Path):
    store = Store(tmp_path / "bot.sqlite3")
    store.sweeps.add(dataclasses.replace(sweep_record(), gpus="0,1", launcher="local"))
    launcher, clock, tasks, wandb = CountingLauncher(), Clock(), Tasks(), CappedWandb()
    changed: list[str] = []
    delivery = FakeDelivery()
    agents = AgentWatch(
        store=store,
        wandb=wandb,
        launchers=LauncherRegistry([launcher]),
        delivery=delivery,  # type: ignore[arg-type]
        clock=clock,
        tasks=tasks,
        on_change=changed.append,
        stop_timeout_s=1.0,
    )
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("method: random\n")
    lab = parse_lab(
        {
            "entity": "lab",
            "sweeps": {"wine": {"file": str(sweep_file), "project": "wine", "launcher": "local"}},
        }
    )
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_BOT_TOKEN="1:a",
        WANDB_API_KEY="k",
        WTB_DATA_DIR=str(tmp_path / "data"),
    )
    control = AgentControl(
        settings=settings, lab=lab, store=store, wandb=wandb, agents=agents, clock=clock
    )
    parts = Parts(store, wandb, launcher, clock, tasks, agents, delivery, changed)
    request = LaunchRequest(sweep_path=PATH, count=4, agents=2, log_dir=tmp_path, gpus=(0, 1))
    await agents.launch("local", request)
    yield Control(parts, launcher, wandb, control)
    await tasks.close()
    store.close()


def breaker_of(parts: Parts) -> CrashLoopBreaker:
    return CrashLoopBreaker(
        policy=CrashLoopConfig(failures=1, window=600),
        store=parts.store,
        wandb=parts.wandb,
        agents=parts.agents,
        delivery=parts.delivery,  # type: ignore[arg-type]
        clock=parts.clock,
        tasks=parts.tasks,
    )


async def test_stopping_one_agent_ends_it_alone_quietly_and_its_run_is_no_crash(
    ctl: Control,
) -> None:
    parts, launcher, control = ctl.parts, ctl.launcher, ctl.control
    _first, second = parts.store.agents.all(sweep_path=PATH)
    Path(second.log_path).write_text("Running runs: []\nRunning runs: ['r2']\n")
    parts.wandb.runs = [run("r1", "running"), run("r2", "running")]

    stopped = await control.stop(second.id)

    assert (stopped.index, stopped.left) == (1, 1)
    assert launcher.stopped == [second.handle]
    assert [a.idx for a in parts.store.agents.all(live_only=True, sweep_path=PATH)] == [0]
    assert parts.wandb.actions == []  # W&B's sweep is left as it was: RUNNING
    sweep = parts.store.sweeps.get(PATH)
    assert sweep is not None and sweep.finished_at is None and sweep.agents == 1
    await settle()
    assert parts.messages() == []  # no agent-exit message for a stop asked for
    # The run it was on ends failed: no sign of a crash loop, though 1 failure would trip it.
    breaker = breaker_of(parts)
    assert not breaker.count(sweep, failed("r2", parts.clock))
    assert parts.store.sweeps.get(PATH).failures == ()  # type: ignore[union-attr]
    # The watcher of the stopped agent is gone: a late end from its launcher says nothing.
    await parts.agents.ended(second, AgentEnd(1))
    assert parts.messages() == []
    # Another run's failure still counts.
    assert breaker.count(parts.store.sweeps.get(PATH), failed("r1", parts.clock))  # type: ignore[arg-type]
    await eventually(lambda: len(launcher.stopped) == 2)


async def test_the_last_agent_and_an_ended_one_cannot_be_stopped_alone(ctl: Control) -> None:
    parts, control = ctl.parts, ctl.control
    first, second = parts.store.agents.all(sweep_path=PATH)
    await control.stop(second.id)
    with pytest.raises(SweepError, match="already ended"):
        await control.stop(second.id)
    with pytest.raises(SweepError, match="last one"):
        await control.stop(first.id)
    with pytest.raises(SweepError, match="no such agent"):
        await control.stop(999)


async def test_lines_say_where_gpus_pid_and_the_run_now(ctl: Control) -> None:
    parts, control = ctl.parts, ctl.control
    first, _second = parts.store.agents.all(sweep_path=PATH)
    Path(first.log_path).write_text("Running runs: ['r1']\n")
    parts.wandb.runs = [run("r1", "running")]
    parts.clock.advance(90)
    one, two = await control.lines(PATH)
    assert (one.index, one.gpus, one.where, one.up_s, one.run_id) == (
        0,
        "0",
        "node0",
        90,
        "r1",
    )
    assert (two.index, two.gpus, two.run_id, two.run_for_s) == (1, "1", None, None)
    text, buttons = render_agent_list(PATH, [one, two], ui_url=UI, admin=True)
    assert "<b>agent 0</b> · node0 · GPU 0 · up 1m 30s · on <a href=" in text, text
    assert "on <a href=" in text and "run-r1" in text and "between runs" in text
    assert [b.label for row in buttons for b in row] == ["Stop agent 0", "Stop agent 1"]
    assert render_agent_list(PATH, [one], ui_url=UI, admin=False)[1] == ()
    # The last agent gets no Stop button: the text says what stops it instead.
    last, none = render_agent_list(PATH, [one], ui_url=UI, admin=True)
    assert none == () and "/sweep pause" in last and "/sweep stop" in last


async def test_scale_up_adds_numbered_agents_on_free_gpus_with_the_runs_left(
    ctl: Control,
) -> None:
    parts, launcher, control = ctl.parts, ctl.launcher, ctl.control
    first, _second = parts.store.agents.all(sweep_path=PATH)
    await control.stop(first.id)  # frees GPU 0
    parts.wandb.runs = [run("r1", "failed"), run("r2", "running")]

    scaled = await control.scale(PATH, 3, ())

    assert (scaled.before, scaled.after, scaled.started) == (1, 3, (2, 3))
    request = launcher.requests[-1]
    # 4 runs, 1 ended, 1 running: 2 left for the new agents, both may take either.
    assert (request.count, request.agents, request.capped, request.first_index) == (2, 2, True, 2)
    assert request.gpus == (0, 1)  # the free GPU first
    live = parts.store.agents.all(live_only=True, sweep_path=PATH)
    assert [(a.idx, a.gpus) for a in live] == [(1, "1"), (2, "0"), (3, "1")]
    assert parts.store.sweeps.get(PATH).agents == 3  # type: ignore[union-attr]

    down = await control.scale(PATH, 1, ())
    assert (down.before, down.after, down.stopped) == (3, 1, (2, 3))
    assert [a.idx for a in parts.store.agents.all(live_only=True, sweep_path=PATH)] == [1]
    assert (await control.scale(PATH, 1, ())).started == ()
    assert parts.wandb.actions == []


async def test_scale_up_is_refused_without_a_run_cap_or_once_the_sweep_ended(
    ctl: Control,
) -> None:
    parts, control = ctl.parts, ctl.control
    ctl.wandb.run_cap = None
    with pytest.raises(SweepError, match="no run cap"):
        await control.scale(PATH, 3, ())
    ctl.wandb.run_cap = 4
    parts.wandb.runs = [run(f"r{i}", "finished") for i in range(3)] + [run("r4", "running")]
    with pytest.raises(SweepError, match="Every run of sweep sw1 has started"):
        await control.scale(PATH, 3, ())
    parts.store.sweeps.update(PATH, finished_at=parts.clock())
    with pytest.raises(SweepError, match="has ended"):
        await control.scale(PATH, 3, ())


# -- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], None),
        (["Running runs: []"], None),
        (["Running runs: ['ab12']", "x"], "ab12"),
        (["Running runs: ['ab12']", "Running runs: []"], None),
        (["Agent Starting Run: zz9 with config:"], "zz9"),
        (["Running runs: ['a1', 'b2']"], "b2"),
    ],
)
def test_current_run_is_the_last_the_agent_log_names(
    lines: list[str], expected: str | None
) -> None:
    assert current_run(lines) == expected


@pytest.mark.parametrize(
    ("pool", "in_use", "expected"),
    [
        ((0, 1), (1,), (0, 1)),
        ((0, 1, 2), (0, 0, 1), (2, 1, 0)),
        ((), (), ()),
        ((3,), (3,), (3,)),
    ],
)
def test_new_agents_take_free_gpus_first(pool, in_use, expected) -> None:
    assert gpus_for_new_agents(pool, in_use) == expected


@pytest.mark.parametrize(
    ("total", "agents", "capped", "expected"),
    [(4, 2, False, [2, 2]), (4, 2, True, [4, 4]), (2, 3, True, [2, 2]), (5, 2, False, [3, 2])],
)
def test_capped_agents_may_each_take_every_run(total, agents, capped, expected) -> None:
    assert agent_counts(total, agents, capped=capped) == expected


def test_stop_prompt_and_scaled_answers_escape_and_count() -> None:
    line = AgentLine(7, 1, "gpu<box>", "0", 42, 10.0, run_id="r<1>", run_name="n<1>", run_for_s=3)
    text, buttons = render_agent_stop_prompt(PATH, line, ui_url=UI, ttl_s=60)
    assert "stop agent 1 of sweep" in text and "n&lt;1&gt;" in text and "freeing GPU 0" in text
    assert [(b.label, b.action, b.target) for b in buttons[0]] == [
        ("Yes, stop agent 1", "agent_stop_yes", "7"),
        ("No", "agent_stop_no", "7"),
    ]
    assert "1 → 2 agents · started agent 1" in render_scaled(
        PATH, before=1, after=2, started=(1,), stopped=(), ui_url=UI
    )
    assert "3 → 1 agent · stopped agents 1, 2" in render_scaled(
        PATH, before=3, after=1, started=(), stopped=(1, 2), ui_url=UI
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["scale"], "Say which sweep."),
        (["scale", "abcd1234"], "Say how many agents"),
        (["scale", "abcd1234", "agents=0"], "at least 1 agent"),
        (["scale", "abcd1234", "agents=00"], "at least 1 agent"),
        (["scale", "abcd1234", "agents=-1"], "whole number"),
        (["scale", "abcd1234", "agents=9"], "from 1 to 8"),
        (["scale", "abcd1234", "agents=2", "gpus=a"], "gpus must be"),
        (["scale", "abcd1234", "agents=2", "agents=3"], "given twice"),
        (["scale", "agents=2"], "Say which sweep."),
        (["agents"], "Say which sweep."),
        (["agents", "a", "b"], "Give one sweep."),
    ],
)
def test_bad_agents_and_scale_input_gets_the_usage(lab_file, args: list[str], reason: str) -> None:
    with pytest.raises(UsageError, match=reason) as caught:
        parse_sweep(args, lab_file, max_count=100, max_agents=8)
    assert f"/sweep {args[0]} <" in caught.value.usage


def test_agents_and_scale_parse(lab_file) -> None:
    lab = lab_file
    assert parse_sweep(["agents", "abcd1234"], lab, max_count=9, max_agents=8) == SweepAgents(
        SweepRef(sweep_id="abcd1234")
    )
    assert parse_sweep(
        ["scale", "wine", "agents=3", "gpus=0,2"], lab, max_count=9, max_agents=8
    ) == SweepScale(SweepRef(name="wine"), 3, (0, 2))


@pytest.fixture
def lab_file(tmp_path: Path):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("method: random\n")
    return parse_lab(
        {"entity": "lab", "sweeps": {"wine": {"file": str(sweep_file), "project": "wine"}}}
    )
