"""From a run's end at W&B to the bot's notification: p50 and p95, idle and active projects.

50 projects, 5 of them with running runs (active), the rest quiet (idle). Short runs end
at random moments in both kinds. Time is simulated so that a 30 s interval needs no 30 s
waits: the bot's real scheduler (bot/polling.py) and monitor run against the local W&B
server through the real client, on a job queue whose clock jumps to the next job; each
poll's real duration is added to that clock. A run's latency is the simulated moment the
poll that first returned it finished, less the moment the run ended.
- naive: every interval, `wandb.Api()`, then each project in turn: list its runs and read
  each running run's summary (real requests, timed the same way);
- ours: the bot with its default settings but the interval, projects batched per request.
The same simulation counts W&B requests (bench/poll_cost.py) and CPU per round.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bench.common import ENTITY, RemoteWandb, Row, naive_api, percentile, sdk_environment
from bench.proc import tree_cpu_seconds
from bot.domain.events import StallPolicy
from bot.monitor import Monitor
from bot.polling import Cadence, PollScheduler
from bot.store import Store
from config import Settings, parse_lab
from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import API_KEY
from wandb_client import ChangedRunsQuery, RunSnapshot, WandbClient

RUNS_PER_PROJECT = 20


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated stretch of time: how many projects, which interval, how long."""

    projects: int
    active: int
    interval: float
    duration: float
    events: int


@dataclass(frozen=True, slots=True)
class Ended:
    """A short run that ends at simulated second `at` in one project."""

    at: float
    project: str
    run: str
    active: bool


@dataclass(order=True)
class _Job:
    at: float
    seq: int
    callback: Callable[[Any], Awaitable[None]] = field(compare=False)
    data: Any = field(compare=False)
    removed: bool = field(default=False, compare=False)

    def schedule_removal(self) -> None:
        self.removed = True


@dataclass
class _Context:
    job: _Job


class WandbLike(Protocol):
    """The local W&B server, in this process (ServerThread) or its own (RemoteWandb)."""

    base_url: str

    def seed(self, spec: dict[str, Any]) -> Any: ...

    def request_counts(self) -> dict[str, int]: ...

    def reset_requests(self) -> None: ...


class SimClock:
    """Simulated seconds since the start, and the matching wall-clock datetime."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.seconds = 0.0

    def now(self) -> datetime:
        """Return the simulated moment as a datetime."""
        return self.start + timedelta(seconds=self.seconds)

    def iso(self, at: float) -> str:
        """Return simulated second `at` as W&B writes times."""
        return (self.start + timedelta(seconds=at)).isoformat()


class SimJobQueue:
    """The part of PTB's JobQueue the scheduler uses, on simulated time."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._heap: list[_Job] = []
        self._seq = itertools.count()

    def run_once(
        self,
        callback: Any,
        when: float,
        *,
        data: Any = None,
        name: str | None = None,
        job_kwargs: dict[str, Any] | None = None,
    ) -> _Job:
        """Queue `callback` to run `when` simulated seconds from now."""
        job = _Job(self._clock.seconds + when, next(self._seq), callback, data)
        heapq.heappush(self._heap, job)
        return job

    def get_jobs_by_name(self, name: str) -> tuple[_Job, ...]:
        """Return no jobs: the scheduler finds its jobs through its batches."""
        return ()

    def pop(self) -> _Job | None:
        """Return the next job that was not removed."""
        while self._heap:
            job = heapq.heappop(self._heap)
            if not job.removed:
                return job
        return None


class SeenRuns:
    """The client the monitor polls through, noting which runs each poll returned."""

    def __init__(self, client: WandbClient) -> None:
        self._client = client
        self.seen: set[str] = set()

    def _note(self, runs: Sequence[RunSnapshot]) -> None:
        self.seen.update(run.id for run in runs)

    async def changed_runs(
        self, entity: str, project: str, since: datetime | None, also: Sequence[str] = ()
    ) -> list[RunSnapshot]:
        """List one project's changed runs."""
        runs = await self._client.changed_runs(entity, project, since, also)
        self._note(runs)
        return runs

    async def changed_runs_many(self, queries: Sequence[ChangedRunsQuery]) -> list[Any]:
        """List many projects' changed runs in one request."""
        answers = await self._client.changed_runs_many(queries)
        for answer in answers:
            if isinstance(answer, list):
                self._note(answer)
        return answers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def names(scenario: Scenario) -> list[str]:
    """Return the scenario's project names; the first `active` ones have running runs."""
    return [f"p{i:03d}" for i in range(scenario.projects)]


def seed_lab(server: WandbLike, scenario: Scenario, clock: SimClock) -> None:
    """Seed every project with finished runs, and a long running run in active ones."""
    runs = []
    for index, name in enumerate(names(scenario)):
        for r in range(RUNS_PER_PROJECT):
            running = index < scenario.active and r == 0
            runs.append(
                {
                    "entity": ENTITY,
                    "project": name,
                    "name": f"{name}-old{r:03d}",
                    "state": "running" if running else "finished",
                    "createdAt": clock.iso(-7200),
                    "updatedAt": clock.iso(-3600),
                }
            )
    server.seed({"runs": runs})


def plan_endings(scenario: Scenario, seed: int = 7) -> list[Ended]:
    """Return the short runs that end during the scenario, half in active projects."""
    rng = random.Random(seed)
    projects = names(scenario)
    warmup = 2 * scenario.interval
    last = scenario.duration - 3 * scenario.interval
    out = []
    for i in range(scenario.events):
        active = i % 2 == 0 and scenario.active > 0
        pool = projects[: scenario.active] if active else projects[scenario.active :]
        out.append(Ended(rng.uniform(warmup, last), rng.choice(pool), f"ev{i:04d}", active))
    return sorted(out, key=lambda e: e.at)


class Endings:
    """Seed each planned run into W&B once the simulated clock passes its end."""

    def __init__(self, server: WandbLike, clock: SimClock, plan: Sequence[Ended]) -> None:
        self._server = server
        self._clock = clock
        self._pending = list(plan)

    def release(self) -> None:
        """Seed every run that has ended by now (simulated)."""
        due = [e for e in self._pending if e.at <= self._clock.seconds]
        if not due:
            return
        self._pending = self._pending[len(due) :]
        self._server.seed(
            {
                "runs": [
                    {
                        "entity": ENTITY,
                        "project": e.project,
                        "name": e.run,
                        "state": "finished",
                        "createdAt": self._clock.iso(e.at - 20),
                        "updatedAt": self._clock.iso(e.at),
                        "heartbeatAt": self._clock.iso(e.at),
                    }
                    for e in due
                ]
            }
        )


@dataclass
class Result:
    """Latencies by project kind, W&B requests a minute, CPU seconds per poll round."""

    idle: list[float]
    active: list[float]
    per_minute: float
    cpu_per_round: float


class CpuMeter:
    """CPU of this process and wandb-core, from the end of the first round on."""

    def __init__(self, scenario: Scenario, exclude: frozenset[int]) -> None:
        self._scenario = scenario
        self._exclude = exclude
        self._start: float | None = None
        self._from = 0.0

    def tick(self, at: float) -> None:
        """Start counting once the baseline round is over (at simulated second `at`)."""
        if self._start is None and at >= self._scenario.interval:
            self._start, self._from = tree_cpu_seconds(exclude=self._exclude), at

    def per_round(self, at: float) -> float:
        """Return CPU seconds per interval between the start and simulated second `at`."""
        if self._start is None or at <= self._from:
            return float("nan")
        rounds = (at - self._from) / self._scenario.interval
        return (tree_cpu_seconds(exclude=self._exclude) - self._start) / rounds


def _result(
    plan: Sequence[Ended], detected: dict[str, float], requests: int, at: float, cpu: float
) -> Result:
    missing = [e.run for e in plan if e.run not in detected]
    if missing:
        raise RuntimeError(f"runs never reported: {missing}")
    idle = [detected[e.run] - e.at for e in plan if not e.active]
    active = [detected[e.run] - e.at for e in plan if e.active]
    return Result(idle, active, requests / (at / 60), cpu)


async def ours(
    server: WandbLike, scenario: Scenario, plan: Sequence[Ended], exclude: frozenset[int]
) -> Result:
    """Simulate the bot over the scenario; return its latencies and costs."""
    clock = SimClock()
    seed_lab(server, scenario, clock)
    defaults = Settings.model_fields
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    lab = parse_lab(
        {"entity": ENTITY, "chats": [{"id": -1, "projects": names(scenario)}]}, "lab", tmp
    )
    client = WandbClient(
        API_KEY,
        base_url=server.base_url,
        default_entity=ENTITY,
        timeout=60,
        batch_size=defaults["wandb_batch_size"].default,
    )
    source = SeenRuns(client)
    monitor = Monitor(
        Store(tmp / "s.db"),
        source,
        lab,
        clock.now,
        ui_url=server.base_url,
        overlap=defaults["watermark_overlap"].default,
        stall_policy=StallPolicy(floor=3600, factor=10),
    )
    idle_default = defaults["idle_poll_interval"].default
    cadence = Cadence(
        scenario.interval,
        idle_default or scenario.interval,
        defaults["max_backoff"].default,
    )
    jobs = SimJobQueue(clock)
    scheduler = PollScheduler(
        monitor,
        jobs,
        cadence,
        on_enqueued=lambda: None,
        batch_size=defaults["wandb_batch_size"].default,
        clock=lambda: clock.seconds,
    )
    await client.viewer()
    endings = Endings(server, clock, plan)
    wanted = {e.run for e in plan}
    detected: dict[str, float] = {}
    cpu = CpuMeter(scenario, exclude)
    scheduler.start()
    server.reset_requests()
    try:
        while (job := jobs.pop()) is not None and job.at <= scenario.duration:
            clock.seconds = max(clock.seconds, job.at)
            cpu.tick(clock.seconds)
            endings.release()
            source.seen.clear()
            started = time.perf_counter()
            await job.callback(_Context(job))
            clock.seconds += time.perf_counter() - started
            for run in (source.seen & wanted) - detected.keys():
                detected[run] = clock.seconds
        requests = sum(n for op, n in server.request_counts().items() if op != "Viewer")
        per_round = cpu.per_round(clock.seconds)
    finally:
        await client.close()
    return _result(plan, detected, requests, max(clock.seconds, scenario.duration), per_round)


def naive(
    server: WandbLike, scenario: Scenario, plan: Sequence[Ended], exclude: frozenset[int]
) -> Result:
    """Simulate the naive poller over the scenario; return its latencies and costs."""
    clock = SimClock()
    seed_lab(server, scenario, clock)
    cpu = CpuMeter(scenario, exclude)
    endings = Endings(server, clock, plan)
    wanted = {e.run for e in plan}
    detected: dict[str, float] = {}
    server.reset_requests()
    round_start = 0.0
    while round_start <= scenario.duration:
        clock.seconds = max(clock.seconds, round_start)
        cpu.tick(clock.seconds)
        round_start = clock.seconds + scenario.interval
        started = time.perf_counter()
        api = naive_api(server.base_url)
        clock.seconds += time.perf_counter() - started
        for project in names(scenario):
            endings.release()
            started = time.perf_counter()
            seen = set()
            for run in api.runs(f"{ENTITY}/{project}"):
                seen.add(run.name)
                if run.state == "running":
                    _ = run.summary.get("accuracy")
            clock.seconds += time.perf_counter() - started
            for run in (seen & wanted) - detected.keys():
                detected[run] = clock.seconds
    requests = sum(server.request_counts().values())
    return _result(plan, detected, requests, clock.seconds, cpu.per_round(clock.seconds))


async def simulate(scenario: Scenario) -> tuple[Result, Result]:
    """Run the scenario for the bot, then for the naive poller, each on a fresh server."""
    plan = plan_endings(scenario)
    mine = await _in_thread_server(scenario, plan, ours_way=True)
    theirs = await _in_thread_server(scenario, plan, ours_way=False)
    return mine, theirs


async def measure(scenarios: Sequence[Scenario]) -> list[Row]:
    """Return p50 and p95 latency rows per scenario, idle and active projects apart."""
    rows: list[Row] = []
    for scenario in scenarios:
        mine, theirs = await simulate(scenario)
        label = f"{scenario.interval:g} s interval"
        how = f"{scenario.projects} projects, {scenario.active} active; simulated time"
        for kind in ("idle", "active"):
            for q in (50, 95):
                rows.append(
                    Row(
                        f"latency p{q}, {kind} project, {label}",
                        percentile(getattr(mine, kind), q),
                        percentile(getattr(theirs, kind), q),
                        "s",
                        how,
                    )
                )
    return rows


async def _in_thread_server(scenario: Scenario, plan: Sequence[Ended], *, ours_way: bool) -> Result:
    with ServerThread(WandbServer(heartbeat_timeout=10**6)) as thread:
        server = _ThreadServer(thread)
        with sdk_environment(thread.base_url):
            if ours_way:
                return await ours(server, scenario, plan, frozenset())
            await asyncio.to_thread(_warm, server.base_url)
            return await asyncio.to_thread(naive, server, scenario, plan, frozenset())


def _warm(base_url: str) -> None:
    """Start wandb-core and log in once: a script polls for hours, its start is not counted."""
    _ = naive_api(base_url).viewer


async def cpu_row(scenario: Scenario) -> Row:
    """Return CPU seconds per poll round, with the W&B server in its own process."""
    results = []
    for ours_way in (True, False):
        with RemoteWandb() as server, sdk_environment(server.base_url):
            exclude = frozenset({server.pid})
            if ours_way:
                results.append(await ours(server, scenario, [], exclude))
            else:
                await asyncio.to_thread(_warm, server.base_url)
                results.append(await asyncio.to_thread(naive, server, scenario, [], exclude))
    return Row(
        f"CPU per poll round, {scenario.projects} projects",
        results[0].cpu_per_round,
        results[1].cpu_per_round,
        "s",
        "process + wandb-core, W&B server apart",
    )


class _ThreadServer:
    """A ServerThread seen as WandbLike."""

    def __init__(self, thread: ServerThread) -> None:
        self.base_url = thread.base_url
        self._server = thread.server

    def seed(self, spec: dict[str, Any]) -> Any:
        return self._server.seed(spec)

    def request_counts(self) -> dict[str, int]:
        return self._server.request_counts()

    def reset_requests(self) -> None:
        self._server.reset_requests()
