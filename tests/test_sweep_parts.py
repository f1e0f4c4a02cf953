"""Unit tests of the sweep service's parts with a fake launcher, a fake bot and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.domain.events import RunEvent
from bot.store import Store, SweepRecord
from bot.sweeps.agents import AgentWatch
from bot.sweeps.breaker import CrashLoopBreaker
from bot.sweeps.card import EditPacer, SweepCards
from bot.sweeps.common import Tasks
from bot.sweeps.launchers import LauncherRegistry
from config import parse_lab
from config.lab import CrashLoopConfig
from wandb_client.launcher import AgentEnd, AgentState, LaunchedAgent, LaunchRequest
from wandb_client.models import RunSnapshot, SweepSnapshot

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PATH = "lab/wine/sw1"
UI = "https://wandb.example"


class Clock:
    """A clock tests move by hand; `sleep` moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class FakeLauncher:
    """A launcher whose agents end when a test says so."""

    def __init__(self, kind: str = "fake", *, fail_after: int | None = None) -> None:
        self._kind = kind
        self.fail_after = fail_after
        self.ends: dict[str, asyncio.Future[AgentEnd]] = {}
        self.alive: set[str] = set()
        self.stopped: list[str] = []
        self.adopted: list[str] = []

    @property
    def kind(self) -> str:
        return self._kind

    async def start(
        self, request: LaunchRequest, on_started: Callable[[LaunchedAgent], None] | None = None
    ) -> list[LaunchedAgent]:
        started = []
        for index in range(request.agents):
            if self.fail_after is not None and index >= self.fail_after:
                raise OSError("no room")
            agent = LaunchedAgent(
                kind=self._kind,
                sweep_path=request.sweep_path,
                index=index,
                handle=f'{{"job": "77", "task": {index}}}',
                log_path=request.log_dir / f"{index}.log",
                started_at=T0,
                where=f"node{index}",
            )
            self.alive.add(agent.handle)
            if on_started is not None:
                on_started(agent)
            started.append(agent)
        return started

    def end(self, task: int, code: int | None) -> None:
        handle = f'{{"job": "77", "task": {task}}}'
        self.alive.discard(handle)
        self._future(handle).set_result(AgentEnd(code))

    def _future(self, handle: str) -> asyncio.Future[AgentEnd]:
        return self.ends.setdefault(handle, asyncio.get_running_loop().create_future())

    async def adopt(self, agent: LaunchedAgent) -> bool:
        self.adopted.append(agent.handle)
        return agent.handle in self.alive

    async def wait(self, agent: LaunchedAgent) -> AgentEnd:
        return await self._future(agent.handle)

    async def states(self, agents: Sequence[LaunchedAgent]) -> list[AgentState]:
        return [AgentState("running" if a.handle in self.alive else "ended") for a in agents]

    async def stop(self, agents: Sequence[LaunchedAgent], timeout_s: float) -> list[AgentEnd]:
        for agent in agents:
            self.stopped.append(agent.handle)
            self.alive.discard(agent.handle)
        return [AgentEnd(130, "interrupted") for _ in agents]


@dataclass
class FakeWandb:
    """The sweep's side of W&B, as data."""

    runs: list[RunSnapshot] = field(default_factory=list)
    state: str = "RUNNING"
    actions: list[str] = field(default_factory=list)
    ui_url: str = UI

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot:
        return SweepSnapshot(
            entity=entity,
            project=project,
            id=sweep_id,
            display_name=sweep_id,
            state=self.state,
            method="grid",
            url=f"{UI}/{entity}/{project}/sweeps/{sweep_id}",
            metric="accuracy",
            goal="maximize",
        )

    async def sweep_runs(self, entity: str, project: str, sweep_id: str) -> list[RunSnapshot]:
        return list(self.runs)

    async def set_sweep_state(self, entity: str, project: str, sweep_id: str, action: str) -> None:
        self.actions.append(action)
        self.state = {"pause": "PAUSED", "resume": "RUNNING"}.get(action, "FINISHED")

    async def create_sweep(self, config: Any, entity: str, project: str) -> str:
        return "new"

    def subprocess_env(self, extra: Any = None) -> dict[str, str]:
        return {}


class FakeDelivery:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


class TwoAgents:
    """Two agents that run and log nothing."""

    def live(self, path: str) -> int:
        return 2

    async def log_tails(self, path: str) -> list[list[str]]:
        return [[], []]

    async def describe(self, path: str) -> tuple[str, str] | None:
        return None


@dataclass
class SentMessage:
    message_id: int


class FakeBot:
    """Records the card's sends and edits; can answer an edit with a flood pause."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.edits: list[str] = []
        self.flood: float | None = None

    async def send_message(
        self, chat_id: int, text: str, *, reply_markup: Any = None, message_thread_id: Any = None
    ) -> Any:
        self.sent.append(text)
        return SentMessage(100 + len(self.sent))

    async def edit_message_text(
        self, text: str, *, chat_id: int, message_id: int, reply_markup: Any = None
    ) -> bool:
        if self.flood is not None:
            pause, self.flood = self.flood, None
            raise RetryAfter(int(pause))
        self.edits.append(text)
        return True


def run(run_id: str, state: str, accuracy: float | None = None) -> RunSnapshot:
    return RunSnapshot(
        entity="lab",
        project="wine",
        id=run_id,
        display_name=f"run-{run_id}",
        state=state,
        url=f"{UI}/lab/wine/runs/{run_id}",
        created_at=T0,
        sweep="sw1",
        summary={"accuracy": accuracy} if accuracy is not None else {},
    )


def sweep_record(count: int = 4) -> SweepRecord:
    return SweepRecord(
        path=PATH,
        name="wine",
        chat_id=-1,
        count=count,
        agents=2,
        gpus="",
        started_by=1,
        started_at=T0,
        card_message_id=None,
        card_text=None,
        finished_at=None,
        failures=(),
        breaker_tripped=False,
        launcher="fake",
    )


@dataclass
class Parts:
    store: Store
    wandb: FakeWandb
    launcher: FakeLauncher
    clock: Clock
    tasks: Tasks
    agents: AgentWatch
    delivery: FakeDelivery
    changed: list[str]

    def messages(self) -> list[Any]:
        return self.store.outbox.due(self.clock() + timedelta(days=1))


@pytest.fixture
async def parts(tmp_path: Path):
    store = Store(tmp_path / "bot.sqlite3")
    store.sweeps.add(sweep_record())
    launcher = FakeLauncher()
    clock = Clock()
    tasks = Tasks()
    changed: list[str] = []
    wandb = FakeWandb()
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
    yield Parts(store, wandb, launcher, clock, tasks, agents, delivery, changed)
    await tasks.close()
    store.close()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds; the parts hop through threads (log tails)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def request(tmp_path: Path, agents: int = 2) -> LaunchRequest:
    return LaunchRequest(sweep_path=PATH, count=4, agents=agents, log_dir=tmp_path)


# -- the registry ---------------------------------------------------------------------------


def test_registry_picks_by_kind_and_names_what_is_missing(tmp_path: Path) -> None:
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("method: grid\n")
    lab = parse_lab(
        {
            "entity": "lab",
            "sweeps": {
                "a": {"file": str(sweep_file), "project": "p"},
                "b": {"file": str(sweep_file), "project": "p", "launcher": "slurm"},
            },
        }
    )
    registry = LauncherRegistry([FakeLauncher("local")])
    assert registry.get("local").kind == "local"
    assert registry.problems(lab) == [
        "sweeps.b.launcher: 'slurm' is not available here (available: local)"
    ]
    with pytest.raises(KeyError, match="no launcher 'slurm'"):
        registry.get("slurm")
    with pytest.raises(ValueError, match="two launchers"):
        LauncherRegistry([FakeLauncher("local"), FakeLauncher("local")])


def test_agents_stored_before_launchers_get_a_local_handle(tmp_path: Path) -> None:
    import json
    import sqlite3

    from bot.store import MIGRATIONS

    db = sqlite3.connect(tmp_path / "old.sqlite3")
    db.executescript(MIGRATIONS[0])
    db.execute(
        "INSERT INTO agents (sweep_path, idx, pid, pgid, cmdline, log_path, started_at)"
        " VALUES (?, 0, 4242, 4242, ?, 'a.log', ?)",
        (PATH, json.dumps(["python", "wandb", "agent"]), T0.isoformat()),
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = Store(tmp_path / "old.sqlite3")
    (agent,) = store.agents.all()
    store.close()
    assert agent.launcher == "local"
    assert json.loads(agent.handle) == {
        "pid": 4242,
        "pgid": 4242,
        "cmdline": ["python", "wandb", "agent"],
    }


# -- agents ---------------------------------------------------------------------------------


async def test_launch_stores_agents_with_handles_a_failed_end_is_one_message_a_clean_one_none(
    parts: Parts, tmp_path: Path
) -> None:
    views = await parts.agents.launch("fake", request(tmp_path))
    assert [v.index for v in views] == [0, 1]
    stored = parts.store.agents.all(sweep_path=PATH)
    assert [(a.launcher, a.handle, a.host) for a in stored] == [
        ("fake", '{"job": "77", "task": 0}', "node0"),
        ("fake", '{"job": "77", "task": 1}', "node1"),
    ]
    parts.wandb.runs = [run("a", "finished", 0.9), run("b", "finished", 0.8)]
    parts.launcher.end(0, 1)
    await eventually(parts.messages)
    texts = [m.text for m in parts.messages()]
    assert len(texts) == 1 and "agent 0 of sweep" in texts[0] and "exited with 1" in texts[0]
    assert parts.agents.live(PATH) == 1
    assert parts.store.sweeps.get(PATH).finished_at is None  # type: ignore[union-attr]
    parts.launcher.end(1, 0)
    await eventually(lambda: parts.agents.live(PATH) == 0)
    assert len(parts.messages()) == 1  # a clean exit folds into the card
    assert parts.store.sweeps.get(PATH).finished_at == T0  # type: ignore[union-attr]
    assert set(parts.changed) == {PATH}


async def test_launch_that_starts_nothing_raises_and_a_partial_one_keeps_what_started(
    parts: Parts, tmp_path: Path
) -> None:
    parts.launcher.fail_after = 0
    with pytest.raises(OSError, match="no room"):
        await parts.agents.launch("fake", request(tmp_path))
    parts.launcher.fail_after = 1
    views = await parts.agents.launch("fake", request(tmp_path))
    assert len(views) == 1 and parts.agents.live(PATH) == 1


async def test_stop_all_stops_through_the_launcher_and_reports_no_agent_end(
    parts: Parts, tmp_path: Path
) -> None:
    await parts.agents.launch("fake", request(tmp_path))
    assert await parts.agents.stop_all(PATH) == 2
    assert len(parts.launcher.stopped) == 2
    assert parts.agents.live(PATH) == 0
    assert {a.exit_code for a in parts.store.agents.all(sweep_path=PATH)} == {130}
    await settle()
    assert parts.messages() == []
    assert parts.agents.is_stopping(PATH)
    parts.agents.rearm(PATH)
    assert not parts.agents.is_stopping(PATH)


async def test_adoption_watches_live_agents_and_folds_those_gone_meanwhile_into_the_card(
    parts: Parts, tmp_path: Path
) -> None:
    await parts.agents.launch("fake", request(tmp_path))
    await parts.tasks.close()  # the old bot process is gone; its agents are not
    parts.launcher.alive.discard('{"job": "77", "task": 1}')
    parts.wandb.runs = [run("a", "running")]
    await parts.agents.adopt_all()
    assert len(parts.launcher.adopted) == 2
    # Gone while the bot was down: recorded, and the card (not a message) says so.
    assert parts.messages() == [] and parts.changed == [PATH]
    assert [a.ended_at is not None for a in parts.store.agents.all()] == [False, True]
    # The adopted one is watched again: its end is recorded, and the sweep then finishes.
    parts.wandb.runs = [run("a", "finished", 0.9)] * 4
    parts.launcher.end(0, None)
    await eventually(lambda: parts.agents.live(PATH) == 0)
    assert parts.store.sweeps.get(PATH).finished_at is not None  # type: ignore[union-attr]
    assert parts.messages() == []


# -- the crash-loop breaker -----------------------------------------------------------------


def failed(run_id: str, clock: Clock) -> RunEvent:
    return RunEvent("failed", run(run_id, "failed"), "running", clock())


async def test_breaker_trips_on_k_failures_in_the_window_only(parts: Parts, tmp_path: Path) -> None:
    await parts.agents.launch("fake", request(tmp_path))
    breaker = CrashLoopBreaker(
        policy=CrashLoopConfig(failures=2, window=60),
        store=parts.store,
        wandb=parts.wandb,
        agents=parts.agents,
        delivery=parts.delivery,  # type: ignore[arg-type]
        clock=parts.clock,
        tasks=parts.tasks,
    )
    sweep = lambda: parts.store.sweeps.get(PATH)  # noqa: E731
    assert not breaker.count(sweep(), failed("a", parts.clock))  # type: ignore[arg-type]
    parts.clock.advance(61)  # the first failure falls out of the window
    assert not breaker.count(sweep(), failed("b", parts.clock))  # type: ignore[arg-type]
    parts.clock.advance(30)
    assert breaker.count(sweep(), failed("c", parts.clock))  # type: ignore[arg-type]
    await eventually(lambda: parts.launcher.stopped)
    assert parts.wandb.actions == ["pause"]
    assert len(parts.launcher.stopped) == 2
    alerts = parts.messages()
    assert len(alerts) == 1 and alerts[0].kind == "crash-loop"
    assert "run-c" in alerts[0].text and "run-b" in alerts[0].text
    # Tripped once: later failures and the stopped agents' ends say nothing more.
    assert not breaker.count(sweep(), failed("d", parts.clock))  # type: ignore[arg-type]
    await settle()
    assert len(parts.messages()) == 1
    assert sweep().finished_at is not None  # type: ignore[union-attr]


# -- the live card --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shown", "text", "signature", "last", "worth"),
    [
        (None, "a", "a", None, True),  # no card yet: always send
        ("a", "a", "a", None, False),  # the chat shows it already
        ("a 1s", "a 2s", "a", "a", False),  # only the clock moved
        ("a 1s", "b 2s", "b", "a", True),  # something real changed
    ],
)
def test_pacer_lets_only_changes_of_substance_through(
    shown: str | None, text: str, signature: str, last: str | None, worth: bool
) -> None:
    pacer = EditPacer(5.0, Clock())
    if last is not None:
        pacer.shown("k", last)
    assert pacer.worth("k", text, signature, shown) is worth


def test_pacer_spaces_edits_and_honours_a_flood_pause() -> None:
    clock = Clock()
    pacer = EditPacer(5.0, clock)
    assert pacer.wait_s("k") == 0
    pacer.attempted("k")
    assert pacer.wait_s("k") == 5
    clock.advance(3)
    assert pacer.wait_s("k") == 2
    pacer.hold("k", 30)
    assert pacer.wait_s("k") == 30
    clock.advance(31)
    assert pacer.wait_s("k") == 0


async def test_card_is_sent_then_edited_paced_and_only_when_it_changed(parts: Parts) -> None:
    bot = FakeBot()
    cards = SweepCards(
        store=parts.store,
        wandb=parts.wandb,
        bot=bot,  # type: ignore[arg-type]
        clock=parts.clock,
        tasks=parts.tasks,
        interval_s=5.0,
        agents=TwoAgents(),
        sleep=parts.clock.sleep,
    )
    parts.wandb.runs = [run("a", "running")]
    cards.request_refresh(PATH)
    await settle()
    assert len(bot.sent) == 1 and "0/4" in bot.sent[0] and "2 agents" in bot.sent[0]
    # Two changes in a burst: one edit, a full interval after the send.
    parts.wandb.runs = [run("a", "finished", 0.9)]
    cards.request_refresh(PATH)
    cards.request_refresh(PATH)
    await settle()
    assert parts.clock.slept == [5.0]
    assert len(bot.edits) == 1 and "1/4" in bot.edits[0] and "best accuracy 0.9" in bot.edits[0]
    # Nothing of substance changed: time passing alone earns no edit.
    parts.clock.advance(60)
    cards.request_refresh(PATH)
    await settle()
    assert len(bot.edits) == 1
    # Telegram asks for a pause: the card waits it out, then shows the change.
    parts.wandb.runs = [run("a", "finished", 0.9), run("b", "failed")]
    bot.flood = 12
    cards.request_refresh(PATH)
    await settle()
    assert parts.clock.slept[-1] == 12
    assert len(bot.edits) == 2 and "1 failed" in bot.edits[1]
    assert parts.store.sweeps.get(PATH).card_text == bot.edits[1]  # type: ignore[union-attr]
