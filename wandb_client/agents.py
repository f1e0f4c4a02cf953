"""Start, adopt, watch and stop real `wandb agent` processes.

Each agent runs in its own session and process group, its output in a log file. The
training programs an agent starts are NOT in its group: `wandb agent` gives every run its
own process group (`process_group=0` in wandb 0.31), so stopping signals the agent's group
and the group of every process descended from it.

`--count`: the caller's N is the sweep's total. K agents get counts that add up to exactly
N (N // K each, the first N % K one more; no agent with nothing to do is started), so the
sweep runs N times even if the server knows no `run_cap`; callers should still create the
sweep with `run_cap: N` so that a restarted agent cannot overshoot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from wandb_client.errors import AgentError
from wandb_client.files import open_private, private_dir
from wandb_client.launcher import agent_counts, split_count
from wandb_client.processes import wandb_executable

__all__ = ["AgentProcess", "AgentSupervisor", "StopResult", "split_count", "tail_log"]

StopOutcome = Literal["not_running", "exited", "interrupted", "terminated", "killed"]
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class AgentProcess:
    """Record one `wandb agent` process: enough to find it again after a restart."""

    pid: int
    pgid: int
    sweep_path: str
    index: int
    log_path: Path
    started_at: datetime
    cmdline: tuple[str, ...]
    gpus: tuple[int, ...] = ()
    count: int | None = None

    @property
    def sweep_id(self) -> str:
        """Return the sweep's id, the last part of its path."""
        return self.sweep_path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class StopResult:
    """Say how an agent ended when asked to stop."""

    outcome: StopOutcome
    returncode: int | None
    survivors: tuple[int, ...] = field(default=())


def read_cmdline(pid: int) -> tuple[str, ...] | None:
    """Return a live process's command line, or None if it is gone or a zombie."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # zombies and kernel threads have an empty command line
    return tuple(part.decode(errors="surrogateescape") for part in raw.rstrip(b"\0").split(b"\0"))


def _stat(pid: int) -> tuple[str, int, int] | None:
    """Return (state, ppid, pgid) of a process from /proc, or None if it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def pid_alive(pid: int) -> bool:
    """Say whether a process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in {"Z", "X"}


def is_alive(pid: int, cmdline: Sequence[str]) -> bool:
    """Say whether `pid` is alive AND still runs `cmdline` (a reused PID is not our agent)."""
    return pid_alive(pid) and read_cmdline(pid) == tuple(cmdline)


def descendants(pid: int) -> list[int]:
    """Return the live descendants of a process, found by walking /proc."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    todo = deque(children.get(pid, []))
    while todo:
        child = todo.popleft()
        found.append(child)
        todo.extend(children.get(child, []))
    return [p for p in found if pid_alive(p)]


def _is_wandb_core(pid: int) -> bool:
    cmdline = read_cmdline(pid)
    return cmdline is not None and Path(cmdline[0]).name.startswith("wandb-core")


async def _exec_cmdline(pid: int, argv: Sequence[str], wait_s: float = 2.0) -> tuple[str, ...]:
    """Return the kernel's view of a new process's command line, once it has exec'd.

    A script runs as `python script ...`, and that is what `adopt` will compare against
    after a restart; right after the spawn /proc may still be empty for a moment.
    """
    deadline = time.monotonic() + wait_s
    tail = tuple(argv[1:])
    while True:
        cmdline = read_cmdline(pid)
        if cmdline is not None and cmdline[len(cmdline) - len(tail) :] == tail:
            return cmdline
        if (cmdline is None and not pid_alive(pid)) or time.monotonic() > deadline:
            return tuple(argv)
        await asyncio.sleep(0.01)


def tail_log(path: Path, lines: int = 15) -> list[str]:
    """Return the last `lines` lines of a log file (empty if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return []
    text = data.decode(errors="replace").replace("\r", "\n")
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


def _signal_groups(pgids: Iterable[int], signum: int) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)


class AgentSupervisor:
    """Own the `wandb agent` processes of this bot: start, adopt, wait for and stop them."""

    def __init__(
        self,
        *,
        executable: str | None = None,
        stagger_s: float = 2.0,
        check_interval_s: float = 1.0,
    ) -> None:
        """Keep the knobs; `executable` defaults to the `wandb` script beside Python."""
        self._executable = executable
        self._stagger_s = stagger_s
        self._check_interval_s = check_interval_s
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._agents: dict[int, AgentProcess] = {}

    @property
    def agents(self) -> list[AgentProcess]:
        """Return the agents this supervisor started or adopted and still tracks."""
        return list(self._agents.values())

    async def start(
        self,
        sweep_path: str,
        *,
        count: int,
        agents: int = 1,
        gpus: Sequence[int] = (),
        workdir: Path,
        env: Mapping[str, str],
        log_dir: Path,
        on_started: Callable[[AgentProcess], None] | None = None,
        capped: bool = False,
        first_index: int = 0,
    ) -> list[AgentProcess]:
        """Start agents for a sweep, `stagger_s` apart, and return their records.

        `on_started` sees each agent as soon as it runs, so a caller can persist it before
        the next one starts (a crash mid-stagger then orphans nothing). `capped`: see
        `agent_counts`; `first_index` numbers agents added to a sweep after its first ones.
        """
        counts = agent_counts(count, agents, capped=capped)
        executable = self._executable or wandb_executable()
        await asyncio.to_thread(private_dir, log_dir)
        started: list[AgentProcess] = []
        for position, agent_count in enumerate(counts):
            if position and self._stagger_s > 0:
                # Staggering spreads the agents' first heartbeats and runs' start-up load.
                await asyncio.sleep(self._stagger_s)
            agent_gpus = (gpus[position % len(gpus)],) if gpus else ()
            agent = await self._spawn(
                executable,
                sweep_path,
                index=first_index + position,
                count=agent_count,
                gpus=agent_gpus,
                workdir=workdir,
                env=env,
                log_dir=log_dir,
            )
            started.append(agent)
            if on_started is not None:
                on_started(agent)
        return started

    async def _spawn(
        self,
        executable: str,
        sweep_path: str,
        *,
        index: int,
        count: int,
        gpus: tuple[int, ...],
        workdir: Path,
        env: Mapping[str, str],
        log_dir: Path,
    ) -> AgentProcess:
        argv = [executable, "agent", "--count", str(count), sweep_path]
        child_env = dict(env)
        if gpus:
            child_env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        started_at = datetime.now(UTC)
        sweep_id = sweep_path.rstrip("/").rsplit("/", 1)[-1]
        log_path = log_dir / f"{sweep_id}-{index}-{started_at:%Y%m%dT%H%M%S%fZ}.log"
        try:
            with open_private(log_path) as log_file:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=asyncio.subprocess.STDOUT,
                    cwd=workdir,
                    env=child_env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise AgentError(f"cannot start `{' '.join(argv)}`: {exc}") from exc
        cmdline = await _exec_cmdline(proc.pid, argv)
        agent = AgentProcess(
            pid=proc.pid,
            pgid=proc.pid,
            sweep_path=sweep_path,
            index=index,
            log_path=log_path,
            started_at=started_at,
            cmdline=cmdline,
            gpus=gpus,
            count=count,
        )
        self._processes[proc.pid] = proc
        self._agents[proc.pid] = agent
        return agent

    def adopt(self, record: AgentProcess) -> bool:
        """Track an agent a previous bot process started, if it still runs the same command."""
        if not is_alive(record.pid, record.cmdline):
            return False
        self._agents[record.pid] = record
        return True

    def is_alive(self, agent: AgentProcess) -> bool:
        """Say whether an agent still runs."""
        proc = self._processes.get(agent.pid)
        if proc is not None:
            return proc.returncode is None and pid_alive(agent.pid)
        return is_alive(agent.pid, agent.cmdline)

    async def wait(self, agent: AgentProcess) -> int | None:
        """Wait for an agent to end; return its exit code, or None if it was adopted."""
        proc = self._processes.get(agent.pid)
        if proc is not None:
            code = await proc.wait()
            self._forget(agent)
            return code
        # Not our child: no exit status to wait on, only its disappearance to notice.
        while True:
            if not is_alive(agent.pid, agent.cmdline):
                self._forget(agent)
                return None
            await asyncio.sleep(self._check_interval_s)

    def _forget(self, agent: AgentProcess) -> None:
        self._processes.pop(agent.pid, None)
        self._agents.pop(agent.pid, None)

    async def stop(self, agent: AgentProcess, timeout_s: float = 30.0) -> StopResult:
        """Stop an agent and every run it started: SIGINT, then SIGTERM, then SIGKILL.

        Each step signals the agent's group and the groups of its descendants, then waits
        up to `timeout_s` for all of them to end.
        """
        if not self.is_alive(agent):
            code = await self._reap(agent)
            self._forget(agent)
            return StopResult("not_running" if code is None else "exited", code)
        tree: set[int] = {agent.pid}
        steps: tuple[tuple[signal.Signals, StopOutcome], ...] = (
            (signal.SIGINT, "interrupted"),
            (signal.SIGTERM, "terminated"),
            (signal.SIGKILL, "killed"),
        )
        for signum, outcome in steps:
            # Runs started since the last step join the tree; dead ones drop out.
            tree = {p for p in tree | {agent.pid, *descendants(agent.pid)} if pid_alive(p)}
            if not tree:
                break
            # wandb-core processes flush their run's data and exit when their parent does;
            # only a kill that the grace period did not avoid may cut them short.
            groups = self._groups(agent, tree, with_core=signum == signal.SIGKILL)
            _signal_groups(groups, signum)
            if await self._wait_gone(agent, tree, timeout_s):
                code = await self._reap(agent)
                self._forget(agent)
                return StopResult(outcome, code)
        survivors = tuple(sorted(p for p in tree if pid_alive(p)))
        code = await self._reap(agent)
        self._forget(agent)
        return StopResult("killed", code, survivors)

    def _groups(self, agent: AgentProcess, pids: Iterable[int], *, with_core: bool) -> set[int]:
        groups = {agent.pgid}
        own = os.getpgrp()
        for pid in pids:
            stat = _stat(pid)
            if stat is None or stat[2] == own:
                continue
            if not with_core and _is_wandb_core(pid):
                continue
            groups.add(stat[2])
        return groups

    async def _wait_gone(self, agent: AgentProcess, pids: set[int], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        proc = self._processes.get(agent.pid)
        while True:
            alive = [p for p in pids if p != agent.pid and pid_alive(p)]
            agent_alive = proc.returncode is None if proc is not None else pid_alive(agent.pid)
            if not alive and not agent_alive:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(0.05, self._check_interval_s))

    async def _reap(self, agent: AgentProcess) -> int | None:
        proc = self._processes.get(agent.pid)
        if proc is None:
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(proc.wait(), 5.0)
        return None
