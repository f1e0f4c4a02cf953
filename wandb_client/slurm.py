"""Talk to Slurm through its command line: submit job arrays, read their tasks, cancel them.

Every call is one `sbatch`, `squeue`, `scontrol` or `scancel` process started with
`asyncio.create_subprocess_exec`, arguments never through a shell. No accounting database
is needed: `squeue --states=all` still lists a task for `MinJobAge` (300 s by default)
after it ended, and the batch script this module writes leaves each task's exit code in a
file beside its log for the time after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wandb_client.errors import AgentError

#: States after which a task never runs again (Slurm's `JOB_STATE_BASE` ends and `SE`).
ENDED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
# One line per task: array job id, task id, state, reason, node list.
_SQUEUE_FORMAT = "%F|%K|%T|%r|%N"
_NOT_FOUND = "Invalid job id"


class SlurmError(AgentError):
    """A Slurm command failed or is missing; the message says which and why."""


@dataclass(frozen=True, slots=True)
class TaskState:
    """One task of a job array as `squeue` shows it."""

    job: str
    task: int
    state: str
    reason: str = ""
    node: str = ""

    @property
    def ended(self) -> bool:
        """Say whether the task has ended for good."""
        return self.state in ENDED_STATES

    @property
    def pending(self) -> bool:
        """Say whether the task still waits for a node."""
        return self.state in PENDING_STATES


def parse_squeue(text: str) -> dict[tuple[str, int], TaskState]:
    """Parse `squeue -h -r -o '%F|%K|%T|%r|%N'` output into tasks by (array job, task)."""
    tasks: dict[tuple[str, int], TaskState] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != len(_SQUEUE_FORMAT.split("|")) or not parts[1].isdigit():
            continue  # a job that is not an array task is none of ours
        job, task, state, reason, node = parts
        # `CANCELLED by 0` and the like: the first word is the state.
        state = state.split()[0] if state.strip() else "UNKNOWN"
        reason = "" if reason in ("None", "(null)") else reason
        node = "" if node in ("(null)", "n/a") else node
        tasks[(job, int(task))] = TaskState(job, int(task), state, reason, node)
    return tasks


def parse_job_id(text: str) -> str:
    """Return the job id from `sbatch --parsable` output (`4711` or `4711;cluster`)."""
    job = text.strip().split(";", 1)[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {text.strip()[:200]!r}, not a job id")
    return job


def task_file(folder: Path, prefix: str, job: str, task: int, suffix: str) -> Path:
    """Return a task's own file (`.log`, `.exit`): `<folder>/<prefix>-<job>_<task><suffix>`."""
    return folder / f"{prefix}-{job}_{task}{suffix}"


def output_pattern(folder: Path, prefix: str) -> str:
    """Return sbatch's `--output` pattern that names each task's log as `task_file` does."""
    return str(folder / f"{prefix}-%A_%a.log")


def batch_script(
    *,
    argv: Sequence[str],
    counts: Sequence[int],
    workdir: Path,
    folder: Path,
    prefix: str,
    directives: Sequence[str] = (),
) -> str:
    """Return a bash batch script whose task i runs `argv` with `{count}` as counts[i].

    `argv` is the agent command, e.g. `["wandb", "agent", "--count", "{count}", "e/p/s"]`,
    run in `workdir`; the task then leaves its exit code in its `.exit` file in `folder`.
    `directives` become `#SBATCH` lines (the caller validated them).
    """
    words = " ".join(
        '"${counts[$SLURM_ARRAY_TASK_ID]}"' if part == "{count}" else shlex.quote(part)
        for part in argv
    )
    exit_file = (
        shlex.quote(f"{folder / prefix}-") + '"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.exit"'
    )
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {d}" for d in directives),
        "# Written by wandb-telegram-bot: task i of this array runs one `wandb agent`.",
        f"counts=({' '.join(str(int(c)) for c in counts)})",
        f"run() {{ cd -- {shlex.quote(str(workdir))} && {words}; }}",
        "run",
        "rc=$?",
        "# The exit code outlives Slurm's memory of the task (MinJobAge).",
        f'echo "$rc" > {exit_file}',
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)


def read_exit_code(path: Path) -> int | None:
    """Return the exit code a task left in `path`, or None when it left none."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def submit_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for `sbatch`: `env` without the submitter's own job's SLURM_*.

    A bot that itself runs inside a Slurm allocation would otherwise hand its job's
    settings (partition, task counts) to every array it submits.
    """
    return {k: v for k, v in env.items() if not k.startswith("SLURM_")}


class SlurmClient:
    """Run Slurm's commands for the launcher: one process per call, bounded in time."""

    def __init__(self, *, timeout_s: float = 30.0, bin_dir: Path | None = None) -> None:
        """Keep the time limit per command; `bin_dir` holds Slurm's commands (else PATH)."""
        self._timeout_s = timeout_s
        self._bin_dir = bin_dir
        self.calls = 0

    def _command(self, name: str) -> str:
        return str(self._bin_dir / name) if self._bin_dir is not None else name

    async def _run(
        self, name: str, *args: str, env: Mapping[str, str] | None = None
    ) -> tuple[int, str, str]:
        argv = [self._command(name), *args]
        self.calls += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env) if env is not None else None,
            )
        except OSError as exc:
            raise SlurmError(
                f"cannot run {name}: {exc.strerror or exc} (is the Slurm client installed?)"
            ) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self._timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise SlurmError(f"{name} did not answer within {self._timeout_s:g} s") from None
        code = proc.returncode if proc.returncode is not None else -1
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    async def submit(
        self,
        script: Path,
        *,
        tasks: int,
        options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Submit `script` as ONE array of `tasks` tasks; return the array's job id."""
        if tasks < 1:
            raise ValueError("a job array needs at least one task")
        code, out, err = await self._run(
            "sbatch",
            "--parsable",
            f"--array=0-{tasks - 1}",
            *options,
            str(script),
            env=submit_env(env if env is not None else os.environ),
        )
        if code != 0:
            raise SlurmError(f"sbatch refused the job: {_one_line(err or out)}")
        return parse_job_id(out)

    async def tasks(self, jobs: Sequence[str]) -> dict[tuple[str, int], TaskState]:
        """Return every task Slurm still knows of these array jobs, in ONE `squeue` call.

        A job Slurm has forgotten (ended more than `MinJobAge` ago) is simply absent.
        """
        if not jobs:
            return {}
        code, out, err = await self._run(
            "squeue",
            "--noheader",
            "--array",
            "--states=all",
            f"--jobs={','.join(sorted(set(jobs)))}",
            f"--format={_SQUEUE_FORMAT}",
        )
        if code != 0:
            if _NOT_FOUND in err:
                return {}  # every one of them is forgotten: all have ended
            raise SlurmError(f"squeue failed: {_one_line(err or out)}")
        return parse_squeue(out)

    async def signal(self, ids: Sequence[str], signal_name: str = "INT") -> None:
        """Send a signal to every process of these running jobs or tasks (`scancel --full`)."""
        if ids:
            # Pending tasks have no process to signal; scancel says so and that is fine.
            await self._run("scancel", f"--signal={signal_name}", "--full", *ids)

    async def cancel(self, ids: Sequence[str], *, pending_only: bool = False) -> None:
        """Cancel these jobs or tasks (`12`, `12_0`): all, or only those still pending."""
        if not ids:
            return
        only = ["--state=PENDING"] if pending_only else []
        code, out, err = await self._run("scancel", *only, *ids)
        if code != 0 and _NOT_FOUND not in err:
            raise SlurmError(f"scancel failed: {_one_line(err or out)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "no message"
