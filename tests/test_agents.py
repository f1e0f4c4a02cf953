"""Tests of the agent supervisor: process groups, adoption, logs, GPUs, a real `wandb agent`."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wandb_client.agents import (
    AgentProcess,
    AgentSupervisor,
    descendants,
    is_alive,
    pid_alive,
    read_cmdline,
    split_count,
    tail_log,
)

# Stands in for `wandb` on the command line: `fake agent --count N sweep`. Like the real
# agent it starts a "run" in a process group of its own, plus a helper in its own group.
FAKE_AGENT = textwrap.dedent(
    """\
    #!{python}
    import os, signal, subprocess, sys, time
    mode = os.environ.get("FAKE_MODE", "polite")
    print("argv", " ".join(sys.argv[1:]), flush=True)
    print("cuda", os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
    if mode == "exit":
        sys.exit(int(os.environ.get("FAKE_EXIT", "3")))
    child = (
        "import os, signal, time\\n"
        "if os.environ.get('FAKE_MODE') == 'stubborn':\\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "print('ready', flush=True)\\n"
        "while True:\\n"
        "    time.sleep(0.05)\\n"
    )
    helper = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE)
    run = subprocess.Popen([sys.executable, "-c", child], process_group=0, stdout=subprocess.PIPE)
    # Said only once both children run their loop: a signal that came while one was still
    # starting Python would end it by a fatal error in its start-up, not as a run ends.
    assert helper.stdout.readline() == run.stdout.readline() == b"ready\\n"
    if mode == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("children", helper.pid, run.pid, flush=True)
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        run.wait()
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


@pytest.fixture
def fake_wandb(tmp_path: Path) -> str:
    path = tmp_path / "fake-wandb"
    path.write_text(FAKE_AGENT.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}


async def until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def children_from_log(agent: AgentProcess) -> tuple[int, int] | None:
    for line in tail_log(agent.log_path, 50):
        if line.startswith("children "):
            _, helper, run = line.split()
            return int(helper), int(run)
    return None


@pytest.mark.parametrize(
    ("total", "agents", "expected"),
    [
        (10, 1, [10]),
        (10, 3, [4, 3, 3]),
        (9, 3, [3, 3, 3]),
        (2, 4, [1, 1]),
        (1, 1, [1]),
    ],
)
def test_split_count_adds_up_to_total_without_idle_agents(total, agents, expected):
    assert split_count(total, agents) == expected
    assert sum(split_count(total, agents)) == total


@pytest.mark.parametrize(("total", "agents"), [(0, 1), (3, 0)])
def test_split_count_rejects_non_positive(total, agents):
    with pytest.raises(ValueError):
        split_count(total, agents)


async def test_start_spreads_gpus_splits_count_and_logs_each_agent(fake_wandb, tmp_path, base_env):
    supervisor = AgentSupervisor(executable=fake_wandb, stagger_s=0.3)
    began = time.monotonic()
    agents = await supervisor.start(
        "lab/wine/abc123",
        count=7,
        agents=3,
        gpus=[0, 1],
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "exit", "FAKE_EXIT": "0"},
        log_dir=tmp_path / "logs",
    )
    assert time.monotonic() - began >= 0.6  # two gaps of 0.3 s between three starts
    codes = await asyncio.gather(*(supervisor.wait(a) for a in agents))
    assert codes == [0, 0, 0]
    assert [a.gpus for a in agents] == [(0,), (1,), (0,)]
    assert [a.count for a in agents] == [3, 2, 2]
    assert [a.index for a in agents] == [0, 1, 2]
    assert agents[0].started_at < agents[1].started_at < agents[2].started_at
    for agent, gpu, count in zip(agents, "010", (3, 2, 2), strict=True):
        assert agent.pgid == agent.pid
        assert agent.log_path.parent == tmp_path / "logs"
        assert agent.log_path.name.startswith(f"abc123-{agent.index}-")
        assert agent.cmdline[-5:] == (fake_wandb, "agent", "--count", str(count), "lab/wine/abc123")
        lines = tail_log(agent.log_path)
        assert f"argv agent --count {count} lab/wine/abc123" in lines
        assert f"cuda {gpu}" in lines
        assert agent.log_path.stat().st_mode & 0o777 == 0o600  # the lab's logs only
    assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700
    assert supervisor.agents == []


async def test_start_without_gpus_leaves_cuda_visible_devices_unset(fake_wandb, tmp_path, base_env):
    supervisor = AgentSupervisor(executable=fake_wandb, stagger_s=0)
    [agent] = await supervisor.start(
        "lab/wine/abc123",
        count=1,
        agents=1,
        gpus=[],
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "exit", "FAKE_EXIT": "4"},
        log_dir=tmp_path,
    )
    assert await supervisor.wait(agent) == 4
    assert "cuda <unset>" in tail_log(agent.log_path)
    assert agent.gpus == ()


async def test_stop_interrupts_agent_and_the_runs_in_their_own_groups(
    fake_wandb, tmp_path, base_env
):
    supervisor = AgentSupervisor(executable=fake_wandb, stagger_s=0)
    [agent] = await supervisor.start(
        "lab/wine/s1",
        count=2,
        agents=1,
        gpus=[],
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "polite"},
        log_dir=tmp_path,
    )
    helper, run = await until(lambda: children_from_log(agent))
    assert os.getpgid(helper) == agent.pgid
    assert os.getpgid(run) == run != agent.pgid  # the "run" has a group of its own
    assert set(descendants(agent.pid)) >= {helper, run}

    result = await supervisor.stop(agent, timeout_s=10)

    # Every process of the agent and its run's own group is gone, whichever step did it.
    assert not pid_alive(agent.pid) and not pid_alive(helper) and not pid_alive(run)
    assert not supervisor.is_alive(agent)
    # SIGINT is what ends a polite agent and its runs, cleanly.
    assert result.outcome == "interrupted", result
    assert result.returncode == 130
    log = tail_log(agent.log_path, 500)
    assert "interrupted" in log and not any("Fatal Python error" in line for line in log), log


async def test_stop_escalates_to_sigkill_for_a_group_that_ignores_signals(
    fake_wandb, tmp_path, base_env
):
    supervisor = AgentSupervisor(executable=fake_wandb, stagger_s=0)
    [agent] = await supervisor.start(
        "lab/wine/s2",
        count=1,
        agents=1,
        gpus=[],
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "stubborn"},
        log_dir=tmp_path,
    )
    helper, run = await until(lambda: children_from_log(agent))
    began = time.monotonic()

    result = await supervisor.stop(agent, timeout_s=0.4)

    assert result.outcome == "killed"
    assert result.returncode == -9
    assert result.survivors == ()
    assert time.monotonic() - began < 5
    await until(lambda: not (pid_alive(helper) or pid_alive(run)), timeout=3)


async def test_stop_of_an_ended_agent_reports_its_exit(fake_wandb, tmp_path, base_env):
    supervisor = AgentSupervisor(executable=fake_wandb, stagger_s=0)
    [agent] = await supervisor.start(
        "lab/wine/s3",
        count=1,
        agents=1,
        gpus=[],
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "exit", "FAKE_EXIT": "0"},
        log_dir=tmp_path,
    )
    await until(lambda: not pid_alive(agent.pid))
    result = await supervisor.stop(agent, timeout_s=1)
    assert (result.outcome, result.returncode) == ("exited", 0)


async def test_adopt_requires_the_recorded_command_line_not_just_the_pid(
    fake_wandb, tmp_path, base_env
):
    starter = AgentSupervisor(executable=fake_wandb, stagger_s=0)
    [agent] = await starter.start(
        "lab/wine/s4",
        count=1,
        agents=1,
        gpus=[],
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "polite"},
        log_dir=tmp_path,
    )
    await until(lambda: children_from_log(agent))
    assert read_cmdline(agent.pid) == agent.cmdline

    restarted = AgentSupervisor(executable=fake_wandb, check_interval_s=0.05)
    other_sweep = AgentProcess(
        pid=agent.pid,
        pgid=agent.pgid,
        sweep_path="lab/wine/other",
        index=0,
        log_path=agent.log_path,
        started_at=datetime.now(UTC),
        cmdline=(*agent.cmdline[:-1], "lab/wine/other"),
    )
    gone = AgentProcess(
        pid=2**22 + 7,
        pgid=2**22 + 7,
        sweep_path=agent.sweep_path,
        index=0,
        log_path=agent.log_path,
        started_at=agent.started_at,
        cmdline=agent.cmdline,
    )
    assert not restarted.adopt(other_sweep)
    assert not restarted.adopt(gone)
    assert restarted.adopt(agent)
    assert restarted.agents == [agent]
    assert is_alive(agent.pid, agent.cmdline)

    waiter = asyncio.create_task(restarted.wait(agent))
    result = await restarted.stop(agent, timeout_s=10)
    assert result.outcome == "interrupted"
    assert result.returncode is None  # not our child: the exit status is unknown
    assert await asyncio.wait_for(waiter, 5) is None
    assert await starter.wait(agent) == 130


def test_tail_log_returns_last_lines_and_nothing_for_a_missing_file(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "progress\rdone\n")
    assert tail_log(log, 3) == ["line 99", "progress", "done"]
    assert tail_log(tmp_path / "missing.log") == []


@pytest.mark.slow
async def test_real_wandb_agent_runs_the_wine_sweep_against_the_local_server(tmp_path):
    """Real `wandb agent` processes, real examples/wine/train.py, the local W&B server."""
    import yaml

    from tests.servers.wandb import ServerThread, WandbServer, sdk_env

    wine = Path(__file__).resolve().parents[1] / "examples" / "wine"
    config = yaml.safe_load((wine / "sweep-grid.yaml").read_text())
    with ServerThread(WandbServer()) as server:
        server.server.seed(
            {"sweeps": [{"entity": "lab", "project": "wine", "name": "grid0001", "config": config}]}
        )
        supervisor = AgentSupervisor(stagger_s=0.2)  # the real `wandb` beside python
        agents = await supervisor.start(
            "lab/wine/grid0001",
            count=2,
            agents=2,
            gpus=[],
            workdir=wine,
            env=sdk_env(server.base_url, tmp_path),
            log_dir=tmp_path / "logs",
        )
        assert [a.count for a in agents] == [1, 1]
        codes = await asyncio.wait_for(
            asyncio.gather(*(supervisor.wait(a) for a in agents)), timeout=40
        )
        logs = [tail_log(a.log_path, 40) for a in agents]
        assert codes == [0, 0], logs
        runs = server.server.list_runs("lab", "wine")
        assert len(runs) == 2
        assert {r["state"] for r in runs} == {"finished"}
        assert {r["sweep"] for r in runs} == {"grid0001"}
        assert all("accuracy" in r["summary"] for r in runs)


async def test_local_launcher_starts_adopts_and_stops_through_its_handle(
    fake_wandb, tmp_path, base_env
):
    from wandb_client.launcher import LaunchRequest
    from wandb_client.local_launcher import LocalLauncher, process_of

    launcher = LocalLauncher(AgentSupervisor(executable=fake_wandb, stagger_s=0), host="box")
    seen: list[Any] = []
    request = LaunchRequest(
        sweep_path="lab/wine/abc123",
        count=3,
        agents=2,
        gpus=(1,),
        workdir=tmp_path,
        env={**base_env, "FAKE_MODE": "polite"},
        log_dir=tmp_path / "logs",
    )
    agents = await launcher.start(request, seen.append)
    assert seen == agents and [a.count for a in agents] == [2, 1]
    assert all(a.kind == "local" and a.where == "box" and a.gpus == (1,) for a in agents)
    assert [process_of(a).pid for a in agents] == [a.pid for a in agents]
    states = await launcher.states(agents)
    assert [s.phase for s in states] == ["running", "running"]
    for agent in agents:
        await until(lambda agent=agent: children_from_log(process_of(agent)))
    # A new bot process finds them from their handles alone.
    fresh = LocalLauncher(AgentSupervisor(executable=fake_wandb, check_interval_s=0.05))
    assert [await fresh.adopt(a) for a in agents] == [True, True]
    ends = await launcher.stop(agents, 5.0)
    assert [e.code for e in ends] == [130, 130] and all(e.reason == "interrupted" for e in ends)
    assert [s.phase for s in await launcher.states(agents)] == ["ended", "ended"]
    # The adopted copies end with no exit code: it belonged to the other process.
    assert [(await fresh.wait(a)).known for a in agents] == [False, False]
    assert not await fresh.adopt(agents[0])
