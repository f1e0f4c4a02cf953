"""The poll scheduler: per-project cadence, batches, spread first polls, coalesced refreshes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bot.domain.keys import ProjectKey
from bot.monitor import PollOutcome
from bot.polling import Cadence, PollScheduler, ProjectCoordinator

CADENCE = Cadence(interval=30, idle_interval=300, max_backoff=600, refresh_cooldown=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Job:
    def __init__(self, queue: FakeJobQueue, callback: Any, at: float, data: Any) -> None:
        self.queue, self.callback, self.at, self.data, self.removed = (
            queue,
            callback,
            at,
            data,
            False,
        )

    def schedule_removal(self) -> None:
        self.removed = True


class FakeJobQueue:
    """Hold run_once jobs; `advance` runs those due in time order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.jobs: list[Job] = []

    def run_once(
        self,
        callback: Any,
        when: float,
        *,
        data: Any = None,
        name: Any = None,
        job_kwargs: Any = None,
    ) -> Job:
        assert job_kwargs == {"misfire_grace_time": None}  # a late poll must still run
        job = Job(self, callback, self.clock.now + when, data)
        self.jobs.append(job)
        return job

    def pending(self) -> list[Job]:
        return [j for j in self.jobs if not j.removed]

    async def advance(self, until: float) -> None:
        while True:
            due = sorted((j for j in self.pending() if j.at <= until), key=lambda j: j.at)
            if not due:
                break
            job = due[0]
            self.jobs.remove(job)
            self.clock.now = max(self.clock.now, job.at)
            await job.callback(type("Ctx", (), {"job": job})())
        self.clock.now = until


class FakeMonitor:
    """Answer polls from a table: which projects fail, which are active."""

    def __init__(self, projects: Sequence[str]) -> None:
        self.projects = {ProjectKey("lab", p) for p in projects}
        self.batches: list[tuple[tuple[str, float], ...]] = []
        self.failing: set[str] = set()
        self.active: set[str] = set()
        self.forgotten: list[str] = []
        self.clock: Clock | None = None

    def watched(self) -> set[tuple[str, str]]:
        return {(k.entity, k.project) for k in self.projects}

    def forget(self, entity: str, project: str) -> None:
        self.forgotten.append(project)

    async def poll_batch(self, keys: Sequence[ProjectKey]) -> list[PollOutcome]:
        assert self.clock is not None
        self.batches.append(tuple((k.project, self.clock.now) for k in keys))
        return [
            PollOutcome(k, ok=k.project not in self.failing, active=k.project in self.active)
            for k in keys
        ]


def make(projects: Sequence[str], batch_size: int = 1, stagger: float = 0.5):
    clock = Clock()
    queue = FakeJobQueue(clock)
    monitor = FakeMonitor(projects)
    monitor.clock = clock
    enqueued: list[int] = []
    scheduler = PollScheduler(
        monitor,  # type: ignore[arg-type]
        queue,
        CADENCE,
        on_enqueued=lambda: enqueued.append(1),
        batch_size=batch_size,
        stagger=stagger,
        clock=clock,
    )
    return scheduler, queue, monitor, clock


@pytest.mark.parametrize(
    ("failures", "active", "delay"),
    [(0, False, 300), (0, True, 30), (1, True, 60), (2, False, 120), (5, False, 600)],
)
def test_next_delay_is_cadence_then_backoff(failures: int, active: bool, delay: float) -> None:
    coordinator = ProjectCoordinator(ProjectKey("lab", "p"), 0)
    coordinator.failures, coordinator.active = failures, active
    assert CADENCE.next_delay(coordinator) == delay


async def test_first_polls_spread_over_at_most_one_interval() -> None:
    names = [f"p{i:03d}" for i in range(500)]
    scheduler, queue, monitor, clock = make(names)
    scheduler.start()
    await queue.advance(clock.now + 30)
    assert len(monitor.batches) == 500  # every project polled within the first interval
    last = max(at for batch in monitor.batches for _, at in batch)
    assert last - 1000 < 30


async def test_small_labs_keep_the_half_second_stagger() -> None:
    scheduler, queue, monitor, clock = make(["a", "b", "c"])
    scheduler.start()
    await queue.advance(clock.now + 5)
    assert [b[0][1] - 1000 for b in monitor.batches] == [0, 0.5, 1.0]


async def test_a_batch_polls_its_members_together_at_the_active_interval() -> None:
    scheduler, queue, monitor, clock = make(["a", "b", "c", "d", "e"], batch_size=2)
    monitor.active = {"a", "b", "c", "d", "e"}
    scheduler.start()
    await queue.advance(clock.now + 95)
    groups = [tuple(name for name, _ in batch) for batch in monitor.batches]
    assert groups[:3] == [("a", "b"), ("c", "d"), ("e",)]
    assert len(groups) == 12  # three batches, four rounds: t=0, 30, 60 and 90
    assert len(queue.pending()) == 3  # one job per batch, never one per project


async def test_a_failing_project_backs_off_alone_in_its_batch() -> None:
    scheduler, queue, monitor, clock = make(["a", "b"], batch_size=2)
    monitor.active, monitor.failing = {"a", "b"}, {"b"}
    scheduler.start()
    await queue.advance(clock.now + 100)
    polled = [name for batch in monitor.batches for name, _ in batch]
    assert polled.count("a") == 4 and polled.count("b") == 2  # b: t=0, then 60 s later
    coordinator = scheduler.coordinator("lab", "b")
    assert coordinator is not None and coordinator.failures == 2


async def test_refresh_requests_in_a_burst_make_one_poll() -> None:
    scheduler, queue, monitor, clock = make(["a"])
    scheduler.start()
    await queue.advance(clock.now + 1)
    assert len(monitor.batches) == 1
    for _ in range(50):
        scheduler.request_refresh("lab", "a")
        clock.now += 0.01
    await queue.advance(clock.now + 3)
    assert len(monitor.batches) == 2  # not 51: the burst coalesced into one poll
    assert len(queue.pending()) == 1


async def test_a_refresh_for_an_unknown_project_starts_polling_it() -> None:
    scheduler, queue, monitor, clock = make([])
    scheduler.start()
    scheduler.request_refresh("lab", "new")
    await queue.advance(clock.now + 0.1)
    assert [b[0][0] for b in monitor.batches] == ["new"]


async def test_ensure_is_idempotent_and_drop_forgets() -> None:
    scheduler, queue, monitor, clock = make(["a"])
    scheduler.start()
    assert scheduler.ensure("lab", "a") is False
    assert scheduler.ensure("lab", "z") is True
    monitor.projects.add(ProjectKey("lab", "z"))
    scheduler.drop("lab", "z")
    assert monitor.forgotten == ["z"] and scheduler.coordinator("lab", "z") is None
    await queue.advance(clock.now + 1)
    assert [b[0][0] for b in monitor.batches] == ["a"]


async def test_projects_nobody_watches_stop_being_polled_within_an_interval() -> None:
    scheduler, queue, monitor, clock = make(["a", "b"])
    monitor.active = {"a", "b"}
    scheduler.start()
    await queue.advance(clock.now + 1)
    monitor.projects.discard(ProjectKey("lab", "b"))  # its sweep ended
    await queue.advance(clock.now + 100)
    assert scheduler.coordinator("lab", "b") is None
    assert monitor.forgotten == []  # it keeps its memory: a new sweep picks up from there
    late = [name for batch in monitor.batches[-2:] for name, _ in batch]
    assert late == ["a", "a"]
