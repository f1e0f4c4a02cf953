"""The Slurm launcher against a real Slurm: one array per start, states, ends, stop, adopt."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wandb_client.errors import AgentError
from wandb_client.launcher import LaunchedAgent, LaunchRequest
from wandb_client.slurm import SlurmClient
from wandb_client.slurm_launcher import SlurmLauncher, sbatch_options, task_of

pytestmark = pytest.mark.usefixtures("slurm")

# A stand-in for `wandb agent --count N PATH`: says what it was given, then sleeps or fails.
FAKE_AGENT = """#!/bin/bash
echo "agent $* in $(pwd) key=$WANDB_API_KEY"
trap 'echo interrupted; exit 130' INT
sleep "${FAKE_AGENT_SLEEP:-0}" & wait $!
exit "${FAKE_AGENT_EXIT:-0}"
"""


@pytest.fixture
def fake_agent(tmp_path: Path) -> str:
    path = tmp_path / "wandb"
    path.write_text(FAKE_AGENT)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
async def launcher(fake_agent: str) -> AsyncIterator[SlurmLauncher]:
    launcher = SlurmLauncher(SlurmClient(), executable=fake_agent, poll_interval_s=0.3)
    yield launcher
    jobs = {task_of(a)[0] for a in launcher._agents.values()}
    for job in jobs:  # a failed test leaves no job in the queue
        subprocess.run(["scancel", job], check=False, capture_output=True)


def request(tmp_path: Path, **kw: object) -> LaunchRequest:
    env = {"PATH": os.environ["PATH"], "WANDB_API_KEY": "k-123", **dict(kw.pop("env", {}))}  # type: ignore[call-overload]
    defaults: dict[str, object] = {
        "sweep_path": "lab/proj/abc123",
        "count": 3,
        "agents": 2,
        "workdir": tmp_path,
        "env": env,
        "log_dir": tmp_path / "logs",
    }
    return LaunchRequest(**{**defaults, **kw})  # type: ignore[arg-type]


def queued(job: str) -> str:
    out = subprocess.run(["squeue", "--noheader", f"--jobs={job}"], capture_output=True, text=True)
    return out.stdout.strip()


async def test_one_start_is_one_array_whose_tasks_run_their_share(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    seen: list[LaunchedAgent] = []
    agents = await launcher.start(request(tmp_path), seen.append)
    assert seen == agents
    assert [a.count for a in agents] == [2, 1]
    jobs = {task_of(a)[0] for a in agents}
    assert len(jobs) == 1
    job = jobs.pop()
    assert [a.where for a in agents] == [f"{job}_0", f"{job}_1"]
    ends = await asyncio.wait_for(asyncio.gather(*(launcher.wait(a) for a in agents)), 240)
    assert [(e.code, e.reason) for e in ends] == [(0, "COMPLETED"), (0, "COMPLETED")]
    logs = [a.log_path.read_text() for a in agents]
    assert logs[0].strip() == f"agent agent --count 2 lab/proj/abc123 in {tmp_path} key=k-123"
    assert logs[1].strip() == f"agent agent --count 1 lab/proj/abc123 in {tmp_path} key=k-123"


async def test_pending_tasks_say_why_and_one_squeue_answers_for_all(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    agents = await launcher.start(request(tmp_path, options={"extra": ["--hold"]}))
    job = task_of(agents[0])[0]
    calls = launcher._client.calls
    states = await launcher.states(agents)
    assert launcher._client.calls == calls + 1
    assert [(s.phase, s.reason) for s in states] == [("pending", "JobHeldUser")] * 2
    waits = [asyncio.ensure_future(launcher.wait(a)) for a in agents]
    subprocess.run(["scontrol", "release", job], check=True, capture_output=True)
    ends = await asyncio.wait_for(asyncio.gather(*waits), 240)
    assert {e.reason for e in ends} == {"COMPLETED"}
    assert [s.phase for s in await launcher.states(agents)] == ["ended", "ended"]


async def test_a_task_in_a_missing_workdir_fails_with_the_reason_in_its_log(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    agents = await launcher.start(request(tmp_path, workdir=tmp_path / "gone", agents=1))
    end = await asyncio.wait_for(launcher.wait(agents[0]), 240)
    assert (end.code, end.reason) == (1, "FAILED")
    assert "No such file or directory" in agents[0].log_path.read_text()


async def test_a_failing_agent_ends_with_its_exit_code(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    agents = await launcher.start(request(tmp_path, agents=1, env={"FAKE_AGENT_EXIT": "3"}))
    end = await asyncio.wait_for(launcher.wait(agents[0]), 240)
    assert (end.code, end.reason) == (3, "FAILED")


async def test_stop_interrupts_running_tasks_and_cancels_pending_ones(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    # Two CPUs on the test node: tasks of 2 CPUs run one at a time, the other pends.
    req = request(
        tmp_path, env={"FAKE_AGENT_SLEEP": "300"}, options={"cpus_per_agent": os.cpu_count()}
    )
    agents = await launcher.start(req)
    job = task_of(agents[0])[0]

    async def one_running() -> bool:
        return "running" in [s.phase for s in await launcher.states(agents)]

    for _ in range(2400):  # other tests' tasks may hold the node's CPUs for a while
        if await one_running():
            break
        await asyncio.sleep(0.1)
    phases = sorted(s.phase for s in await launcher.states(agents))
    assert phases == ["pending", "running"]
    waiting = asyncio.ensure_future(launcher.wait(agents[0]))
    ends = await launcher.stop(agents, timeout_s=10)
    assert queued(job) == ""
    assert sorted(e.reason for e in ends) == ["CANCELLED", "FAILED"]
    interrupted = next(a for a, e in zip(agents, ends, strict=True) if e.reason == "FAILED")
    assert "interrupted" in interrupted.log_path.read_text()
    assert (await asyncio.wait_for(waiting, 5)).reason in ("CANCELLED", "FAILED")


async def test_a_new_launcher_adopts_a_pending_array_and_sees_its_end(
    launcher: SlurmLauncher, fake_agent: str, tmp_path: Path
) -> None:
    agents = await launcher.start(request(tmp_path, options={"extra": ["--hold"]}))
    after_restart = SlurmLauncher(SlurmClient(), executable=fake_agent, poll_interval_s=0.3)
    assert all([await after_restart.adopt(a) for a in agents])
    waits = [asyncio.ensure_future(after_restart.wait(a)) for a in agents]
    subprocess.run(["scontrol", "release", task_of(agents[0])[0]], check=True)
    ends = await asyncio.wait_for(asyncio.gather(*waits), 240)
    assert [(e.code, e.reason) for e in ends] == [(0, "COMPLETED")] * 2


async def test_a_task_slurm_never_knew_is_not_adopted(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    ghost = LaunchedAgent(
        kind="slurm",
        sweep_path="lab/proj/abc123",
        index=0,
        handle='{"job": "999997", "task": 0}',
        log_path=tmp_path / "abc123-999997_0.log",
        started_at=__import__("datetime").datetime.now(),
    )
    assert not await launcher.adopt(ghost)


async def test_gpu_ids_are_refused_because_slurm_assigns_gpus(
    launcher: SlurmLauncher, tmp_path: Path
) -> None:
    with pytest.raises(AgentError, match="gpus_per_agent"):
        await launcher.start(request(tmp_path, gpus=(0, 1)))


def test_the_lab_files_slurm_block_becomes_sbatch_options() -> None:
    args, directives = sbatch_options(
        {
            "partition": "gpu",
            "time": "2:00:00",
            "gpus_per_agent": 1,
            "cpus_per_agent": 8,
            "mem": "32G",
            "account": "ml",
            "qos": None,
            "extra": ("--constraint=a100",),
        }
    )
    assert args == [
        "--partition=gpu",
        "--time=2:00:00",
        "--mem=32G",
        "--account=ml",
        "--cpus-per-task=8",
        "--gres=gpu:1",
    ]
    assert directives == ["--constraint=a100"]
    with pytest.raises(AgentError, match="several lines"):
        sbatch_options({"extra": ["--x=1\nrm -rf /"]})
