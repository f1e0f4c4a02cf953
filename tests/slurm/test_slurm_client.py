"""The Slurm client against a real single-node Slurm: arrays, states, exit codes, cancel."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from wandb_client.slurm import (
    SlurmClient,
    SlurmError,
    TaskState,
    batch_script,
    output_pattern,
    read_exit_code,
    task_file,
)

pytestmark = pytest.mark.usefixtures("slurm")


@pytest.fixture
async def client() -> AsyncIterator[SlurmClient]:
    client = SlurmClient(timeout_s=20)
    submitted: list[str] = []
    original = client.submit

    async def tracked(*args: object, **kwargs: object) -> str:
        job = await original(*args, **kwargs)  # type: ignore[arg-type]
        submitted.append(job)
        return job

    client.submit = tracked  # type: ignore[method-assign]
    yield client
    for job in submitted:  # a failed test leaves no job in the queue
        subprocess.run(["scancel", job], check=False, capture_output=True)


def write_script(tmp: Path, argv: list[str], counts: list[int], workdir: Path) -> Path:
    script = tmp / "job.sh"
    script.write_text(
        batch_script(argv=argv, counts=counts, workdir=workdir, folder=tmp, prefix="t")
    )
    return script


async def wait_tasks(
    client: SlurmClient,
    job: str,
    condition: Callable[[dict[tuple[str, int], TaskState]], bool],
    timeout: float = 240,
) -> dict[tuple[str, int], TaskState]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        tasks = await client.tasks([job])
        if condition(tasks):
            return tasks
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"job {job}: {tasks}")
        await asyncio.sleep(0.2)


async def test_one_array_runs_each_task_with_its_count_and_records_exit_codes(
    client: SlurmClient, tmp_path: Path
) -> None:
    # Task 1 fails: its count (1) is its exit code.
    argv = [
        "/bin/sh",
        "-c",
        'echo "count=$1 in $(pwd)"; exit $(( $1 - 2 < 0 ? 1 : 0 ))',
        "sh",
        "{count}",
    ]
    script = write_script(tmp_path, argv, [2, 1], tmp_path)
    job = await client.submit(
        script,
        tasks=2,
        options=[f"--output={output_pattern(tmp_path, 't')}"],
        env={"PATH": "/usr/bin:/bin"},
    )
    tasks = await wait_tasks(
        client, job, lambda t: len(t) == 2 and all(s.ended for s in t.values())
    )
    assert tasks[(job, 0)].state == "COMPLETED"
    assert tasks[(job, 1)].state == "FAILED"
    assert task_file(tmp_path, "t", job, 0, ".log").read_text().strip() == f"count=2 in {tmp_path}"
    assert task_file(tmp_path, "t", job, 1, ".log").read_text().strip() == f"count=1 in {tmp_path}"
    assert read_exit_code(task_file(tmp_path, "t", job, 0, ".exit")) == 0
    assert read_exit_code(task_file(tmp_path, "t", job, 1, ".exit")) == 1


async def test_a_missing_workdir_fails_the_task_with_the_reason_in_its_log(
    client: SlurmClient, tmp_path: Path
) -> None:
    script = write_script(tmp_path, ["/bin/true", "{count}"], [1], tmp_path / "gone")
    job = await client.submit(
        script, tasks=1, options=[f"--output={output_pattern(tmp_path, 't')}"]
    )
    tasks = await wait_tasks(client, job, lambda t: bool(t) and t[(job, 0)].ended)
    assert tasks[(job, 0)].state == "FAILED"
    assert "No such file or directory" in task_file(tmp_path, "t", job, 0, ".log").read_text()
    assert read_exit_code(task_file(tmp_path, "t", job, 0, ".exit")) == 1


async def test_a_held_array_is_pending_with_its_reason_until_released(
    client: SlurmClient, tmp_path: Path
) -> None:
    script = write_script(tmp_path, ["/bin/true"], [1, 1, 1], tmp_path)
    job = await client.submit(
        script, tasks=3, options=["--hold", f"--output={output_pattern(tmp_path, 't')}"]
    )
    calls = client.calls
    tasks = await client.tasks([job, "999999"])
    assert client.calls == calls + 1  # one squeue for every task of every job
    assert sorted(tasks) == [(job, 0), (job, 1), (job, 2)]
    assert all(t.pending and t.reason == "JobHeldUser" for t in tasks.values())
    subprocess.run(["scontrol", "release", job], check=True, capture_output=True)
    tasks = await wait_tasks(
        client, job, lambda t: len(t) == 3 and all(s.ended for s in t.values())
    )
    assert {t.state for t in tasks.values()} == {"COMPLETED"}


async def test_interrupt_then_cancel_leaves_nothing_running(
    client: SlurmClient, tmp_path: Path
) -> None:
    marker = tmp_path / "interrupted"
    argv = ["/bin/sh", "-c", f"trap 'touch {marker}; exit 130' INT; while :; do sleep 0.1; done"]
    script = write_script(tmp_path, argv, [1, 1], tmp_path)
    job = await client.submit(
        script, tasks=2, options=[f"--output={output_pattern(tmp_path, 't')}"]
    )
    await wait_tasks(
        client, job, lambda t: len(t) == 2 and all(s.state == "RUNNING" for s in t.values())
    )
    await client.signal([job], "INT")
    tasks = await wait_tasks(client, job, lambda t: all(s.ended for s in t.values()))
    assert marker.exists()
    assert {t.state for t in tasks.values()} <= {"FAILED", "CANCELLED"}
    await client.cancel([job])  # nothing left to cancel is fine
    out = subprocess.run(["squeue", "--noheader", f"--jobs={job}"], capture_output=True, text=True)
    assert out.stdout.strip() == ""


async def test_unknown_jobs_are_simply_absent(client: SlurmClient) -> None:
    assert await client.tasks(["999998"]) == {}
    assert await client.tasks([]) == {}


async def test_a_refused_submission_says_why(client: SlurmClient, tmp_path: Path) -> None:
    script = write_script(tmp_path, ["/bin/true"], [1], tmp_path)
    with pytest.raises(SlurmError, match=r"sbatch refused the job: .*partition"):
        await client.submit(script, tasks=1, options=["--partition=nosuch"])


async def test_a_missing_slurm_client_is_one_clear_error(tmp_path: Path) -> None:
    client = SlurmClient(bin_dir=tmp_path)
    with pytest.raises(SlurmError, match=r"cannot run squeue: .*Slurm client installed"):
        await client.tasks(["1"])
