"""The `slurm` launcher: a sweep's K agents are the K tasks of ONE Slurm job array.

Each task runs `wandb agent --count n_i <sweep>` in the sweep's workdir with the sweep's
environment (sbatch passes on the environment it was started with), its output in
`<log_dir>/<sweep>-<job>_<task>.log`. One `squeue` per poll answers for every task of
every array the bot watches; a stop sends SIGINT to each running task's processes
(`scancel --signal=INT --full`) so runs end cleanly, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from wandb_client.errors import AgentError
from wandb_client.launcher import (
    AgentEnd,
    AgentState,
    LaunchedAgent,
    LaunchRequest,
    agent_counts,
)
from wandb_client.processes import wandb_executable
from wandb_client.slurm import (
    SlurmClient,
    SlurmError,
    TaskState,
    batch_script,
    output_pattern,
    read_exit_code,
    task_file,
)

log = logging.getLogger(__name__)

KIND = "slurm"
TaskKey = tuple[str, int]
# The lab file's `slurm:` names and the sbatch options they become.
_FLAGS = (
    ("partition", "--partition"),
    ("time", "--time"),
    ("mem", "--mem"),
    ("account", "--account"),
    ("qos", "--qos"),
)
_STOP_CHECK_S = 0.2


def _int(options: Mapping[str, object], key: str, default: int) -> int:
    value = options.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def sbatch_options(options: Mapping[str, object]) -> tuple[list[str], list[str]]:
    """Return (sbatch arguments, `#SBATCH` directives) for a lab file's `slurm:` block."""
    args = [f"{flag}={options[key]}" for key, flag in _FLAGS if options.get(key)]
    args.append(f"--cpus-per-task={_int(options, 'cpus_per_agent', 1)}")
    gpus = _int(options, "gpus_per_agent", 0)
    if gpus:
        args.append(f"--gres=gpu:{gpus}")
    extra = options.get("extra") or ()
    directives = [str(line) for line in extra] if isinstance(extra, Iterable) else []
    # The lab file was validated at start; a newline here would still start a command.
    if any(c in line for line in directives for c in "\r\n\0"):
        raise AgentError("an sbatch line of the lab file spans several lines")
    return args, directives


def task_of(agent: LaunchedAgent) -> TaskKey:
    """Return the (array job, task) of a Slurm agent from its handle."""
    data = json.loads(agent.handle)
    return str(data["job"]), int(data["task"])


def _ids(keys: Iterable[TaskKey]) -> list[str]:
    return [f"{job}_{task}" for job, task in keys]


def agent_state(state: TaskState | None) -> AgentState:
    """Return the launcher's view of a task as squeue shows it (None: Slurm forgot it)."""
    if state is None:
        return AgentState("ended")
    if state.pending:
        return AgentState("pending", state.reason)
    if state.ended:
        return AgentState("ended", state.state, state.node)
    return AgentState("running", "" if state.state == "RUNNING" else state.state, state.node)


class SlurmLauncher:
    """Start, watch, stop and adopt agents as Slurm array tasks, one `squeue` per poll."""

    def __init__(
        self,
        client: SlurmClient,
        *,
        executable: str | None = None,
        poll_interval_s: float = 5.0,
    ) -> None:
        """Keep the client; `executable` is the `wandb` command the tasks run."""
        self._client = client
        self._executable = executable
        self._interval = poll_interval_s
        self._agents: dict[TaskKey, LaunchedAgent] = {}
        self._ends: dict[TaskKey, asyncio.Future[AgentEnd]] = {}
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None
        self._seen: dict[TaskKey, TaskState] = {}
        self._seen_jobs: frozenset[str] = frozenset()
        self._seen_at = float("-inf")
        self._query_lock = asyncio.Lock()

    @property
    def kind(self) -> str:
        """Return `slurm`."""
        return KIND

    async def start(
        self,
        request: LaunchRequest,
        on_started: Callable[[LaunchedAgent], None] | None = None,
    ) -> list[LaunchedAgent]:
        """Submit ONE array of K tasks; each task is an agent with its share of the count."""
        if request.gpus:
            raise AgentError("Slurm assigns GPUs itself: set slurm.gpus_per_agent instead")
        counts = agent_counts(request.count, request.agents, capped=request.capped)
        args, directives = sbatch_options(request.options)
        sweep_id = request.sweep_path.rstrip("/").rsplit("/", 1)[-1]
        folder = request.log_dir.absolute()
        started_at = datetime.now(UTC)
        executable = self._executable or wandb_executable()
        script = folder / f"{sweep_id}-{started_at:%Y%m%dT%H%M%S%fZ}.sbatch"
        text = batch_script(
            argv=[executable, "agent", "--count", "{count}", request.sweep_path],
            counts=counts,
            workdir=request.workdir.absolute(),
            folder=folder,
            prefix=sweep_id,
            directives=directives,
        )
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(script.write_text, text, encoding="utf-8")
        job = await self._client.submit(
            script,
            tasks=len(counts),
            options=[
                f"--job-name=wandb-agent-{sweep_id}",
                f"--output={output_pattern(folder, sweep_id)}",
                *args,
            ],
            env=request.env,
        )
        log.info("sweep %s: Slurm array %s of %d tasks", request.sweep_path, job, len(counts))
        agents: list[LaunchedAgent] = []
        for index, count in enumerate(counts):
            agent = LaunchedAgent(
                kind=KIND,
                sweep_path=request.sweep_path,
                # The chat's number; the handle, log and `where` keep the array task id.
                index=request.first_index + index,
                handle=json.dumps({"job": job, "task": index}),
                log_path=task_file(folder, sweep_id, job, index, ".log"),
                started_at=started_at,
                count=count,
                where=f"{job}_{index}",
            )
            self._track(agent)
            agents.append(agent)
            if on_started is not None:
                on_started(agent)
        return agents

    def _track(self, agent: LaunchedAgent) -> asyncio.Future[AgentEnd]:
        key = task_of(agent)
        self._agents[key] = agent
        future = self._ends.get(key)
        if future is None:
            future = self._ends[key] = asyncio.get_running_loop().create_future()
        return future

    async def adopt(self, agent: LaunchedAgent) -> bool:
        """Watch a task a previous bot process submitted; False when Slurm knows it no more."""
        key = task_of(agent)
        tasks = await self._query({key[0]})
        if key in tasks or await self._exit_code(agent) is not None:
            self._track(agent)
            return True
        return False

    async def wait(self, agent: LaunchedAgent) -> AgentEnd:
        """Return once the task has ended, with its exit code and Slurm's word for the end."""
        future = self._track(agent)
        self._waiters += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(
                self._poll_loop(), name="slurm-poll"
            )
        try:
            return await asyncio.shield(future)
        finally:
            self._waiters -= 1
            if not self._waiters and self._poller is not None:
                # Nobody waits: no squeue until someone does again.
                self._poller.cancel()
                self._poller = None

    async def _poll_loop(self) -> None:
        failing = False
        while True:
            try:
                await self._settle(await self._query(set()))
                if failing:
                    log.info("squeue answers again")
                failing = False
            except SlurmError as exc:
                if not failing:
                    log.warning("cannot read the Slurm queue: %s", exc)
                failing = True
            await asyncio.sleep(self._interval)

    async def _query(self, jobs: set[str]) -> dict[TaskKey, TaskState]:
        """Return the tasks of `jobs` and of every watched array: ONE squeue, or a fresh cache."""
        async with self._query_lock:
            wanted = frozenset(jobs | {job for job, _ in self._agents})
            fresh = time.monotonic() - self._seen_at < self._interval / 2
            if not (fresh and wanted <= self._seen_jobs):
                self._seen = await self._client.tasks(sorted(wanted))
                self._seen_jobs = wanted
                self._seen_at = time.monotonic()
            return self._seen

    async def _settle(self, tasks: Mapping[TaskKey, TaskState]) -> None:
        """Resolve the waits of tasks that ended (or that Slurm no longer knows)."""
        for key, agent in list(self._agents.items()):
            state = tasks.get(key)
            if state is not None and not state.ended:
                continue
            end = await self._end_of(agent, state)
            self._agents.pop(key, None)
            future = self._ends.pop(key, None)
            if future is not None and not future.done():
                future.set_result(end)

    async def _exit_code(self, agent: LaunchedAgent) -> int | None:
        return await asyncio.to_thread(read_exit_code, agent.log_path.with_suffix(".exit"))

    async def _end_of(self, agent: LaunchedAgent, state: TaskState | None) -> AgentEnd:
        code = await self._exit_code(agent)
        if state is None:
            # Forgotten by Slurm (MinJobAge): the exit file is all that is left.
            word = "" if code is None else ("COMPLETED" if code == 0 else "FAILED")
            return AgentEnd(code, word)
        if code is None and state.state == "COMPLETED":
            code = 0
        return AgentEnd(code, state.state)

    async def states(self, agents: Sequence[LaunchedAgent]) -> list[AgentState]:
        """Return each task's state now, from one `squeue` for all of them."""
        keys = [task_of(a) for a in agents]
        tasks = await self._query({job for job, _ in keys})
        states = []
        for agent, key in zip(agents, keys, strict=True):
            state = tasks.get(key)
            if state is None:
                # Forgotten by Slurm: its exit file still says how it ended.
                states.append(AgentState("ended", (await self._end_of(agent, None)).reason))
            else:
                states.append(agent_state(state))
        return states

    async def stop(self, agents: Sequence[LaunchedAgent], timeout_s: float) -> list[AgentEnd]:
        """Cancel pending tasks, interrupt running ones (runs end cleanly), then cancel all."""
        keys = [task_of(a) for a in agents]
        # Pending first, in the controller's one step: none of them starts after the SIGINT.
        await self._client.cancel(_ids(keys), pending_only=True)
        await self._client.signal(_ids(keys), "INT")
        await self._wait_states(keys, timeout_s, lambda s: s is None or s.ended)
        await self._client.cancel(_ids(keys))
        tasks = await self._wait_states(keys, timeout_s, lambda s: s is None or s.ended)
        ends: list[AgentEnd] = []
        for agent, key in zip(agents, keys, strict=True):
            state = tasks.get(key)
            if state is not None and not state.ended:
                log.error("Slurm task %s_%s is still %s after scancel", *key, state.state)
                ends.append(AgentEnd(None, f"{state.state} after scancel"))
                continue
            ends.append(await self._end_of(agent, state))
            self._agents.pop(key, None)
            future = self._ends.pop(key, None)
            if future is not None and not future.done():
                future.set_result(ends[-1])
        return ends

    async def _wait_states(
        self,
        keys: Sequence[TaskKey],
        timeout_s: float,
        done: Callable[[TaskState | None], bool],
    ) -> dict[TaskKey, TaskState]:
        jobs = sorted({job for job, _ in keys})
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(SlurmError):
                tasks = await self._client.tasks(jobs)
                if all(done(tasks.get(key)) for key in keys) or time.monotonic() > deadline:
                    return tasks
            if time.monotonic() > deadline:
                return {}
            await asyncio.sleep(_STOP_CHECK_S)
