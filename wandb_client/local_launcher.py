"""The `local` launcher: `wandb agent` process groups on the bot's own host."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Sequence

from wandb_client.agents import AgentProcess, AgentSupervisor
from wandb_client.launcher import AgentEnd, AgentState, LaunchedAgent, LaunchRequest

KIND = "local"


def local_handle(pid: int, pgid: int, cmdline: Sequence[str]) -> str:
    """Return the handle of a local agent: what finds its process again after a restart."""
    return json.dumps({"pid": pid, "pgid": pgid, "cmdline": list(cmdline)})


def process_of(agent: LaunchedAgent) -> AgentProcess:
    """Return the supervisor's record of a local agent from its handle."""
    data = json.loads(agent.handle)
    return AgentProcess(
        pid=int(data["pid"]),
        pgid=int(data["pgid"]),
        sweep_path=agent.sweep_path,
        index=agent.index,
        log_path=agent.log_path,
        started_at=agent.started_at,
        cmdline=tuple(str(part) for part in data["cmdline"]),
        gpus=agent.gpus,
        count=agent.count,
    )


class LocalLauncher:
    """Run agents on this host through an `AgentSupervisor` (its behaviour, unchanged)."""

    def __init__(self, supervisor: AgentSupervisor, *, host: str | None = None) -> None:
        """Wrap the supervisor; `host` names this machine in the chat (default: hostname)."""
        self._supervisor = supervisor
        self._host = host or socket.gethostname()

    @property
    def kind(self) -> str:
        """Return `local`."""
        return KIND

    @property
    def supervisor(self) -> AgentSupervisor:
        """Return the supervisor that owns the processes."""
        return self._supervisor

    def _launched(self, process: AgentProcess) -> LaunchedAgent:
        return LaunchedAgent(
            kind=KIND,
            sweep_path=process.sweep_path,
            index=process.index,
            handle=local_handle(process.pid, process.pgid, process.cmdline),
            log_path=process.log_path,
            started_at=process.started_at,
            gpus=process.gpus,
            count=process.count,
            pid=process.pid,
            where=self._host,
        )

    async def start(
        self,
        request: LaunchRequest,
        on_started: Callable[[LaunchedAgent], None] | None = None,
    ) -> list[LaunchedAgent]:
        """Start the agents `stagger` apart in their own process groups."""

        def started(process: AgentProcess) -> None:
            if on_started is not None:
                on_started(self._launched(process))

        processes = await self._supervisor.start(
            request.sweep_path,
            count=request.count,
            agents=request.agents,
            gpus=request.gpus,
            workdir=request.workdir,
            env=request.env,
            log_dir=request.log_dir,
            on_started=started,
            capped=request.capped,
            first_index=request.first_index,
        )
        return [self._launched(p) for p in processes]

    async def adopt(self, agent: LaunchedAgent) -> bool:
        """Track an agent if its PID still runs the same command line."""
        return self._supervisor.adopt(process_of(agent))

    async def wait(self, agent: LaunchedAgent) -> AgentEnd:
        """Wait for the process; an adopted one (not our child) ends with no known code."""
        return AgentEnd(await self._supervisor.wait(process_of(agent)))

    async def states(self, agents: Sequence[LaunchedAgent]) -> list[AgentState]:
        """Return running or ended for each agent (a local agent is never pending)."""
        return [
            AgentState(
                "running" if self._supervisor.is_alive(process_of(a)) else "ended",
                where=self._host,
            )
            for a in agents
        ]

    async def stop(self, agents: Sequence[LaunchedAgent], timeout_s: float) -> list[AgentEnd]:
        """Stop each agent's process tree (SIGINT, SIGTERM, SIGKILL), all at once."""
        processes = [process_of(a) for a in agents]
        results = await asyncio.gather(
            *(self._supervisor.stop(p, timeout_s) for p in processes), return_exceptions=True
        )
        ends: list[AgentEnd] = []
        for process, result in zip(processes, results, strict=True):
            if isinstance(result, BaseException):
                # Whether it still runs is unknown: say so, as a survivor, to be logged.
                ends.append(AgentEnd(None, f"stop failed: {result}", (process.pid,)))
            else:
                ends.append(AgentEnd(result.returncode, result.outcome, result.survivors))
        return ends
