"""Create sweeps and change their state through W&B's own code, in child processes.

`wandb.sweep` and `wandb sweep --stop` read the key and server from the process's global
settings and environment, so each runs in a child whose environment carries exactly this
client's key and base URL; the bot's own process settings stay untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from wandb_client.error_mapping import error_class, redact
from wandb_client.errors import WandbRequestError, WandbUnavailableError
from wandb_client.processes import wandb_executable

SweepAction = Literal["stop", "cancel", "pause", "resume"]
SWEEP_ACTIONS: tuple[SweepAction, ...] = ("stop", "cancel", "pause", "resume")
_SWEEP_ID_MARKER = "WANDB_CLIENT_SWEEP_ID="
_SWEEP_ID = re.compile(rf"^{_SWEEP_ID_MARKER}(\S+)$", re.MULTILINE)
_TAIL_CHARS = 2000

# Runs in the child: the config arrives as JSON on stdin, so nothing is quoted or templated.
_CREATE_SWEEP_PROGRAM = f"""
import json, sys
import wandb
request = json.load(sys.stdin)
sweep_id = wandb.sweep(request["config"], entity=request["entity"], project=request["project"])
print("\\n{_SWEEP_ID_MARKER}" + sweep_id, flush=True)
"""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Hold what a finished child process printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str


async def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout_s: float,
    stdin: bytes | None = None,
    what: str,
) -> CommandResult:
    """Run a command without a shell in its own process group; kill the group on timeout."""
    with tempfile.TemporaryDirectory(prefix="wandb-client-") as workdir:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                cwd=workdir,
                start_new_session=True,
            )
        except OSError as exc:
            raise WandbRequestError(f"{what}: cannot start {argv[0]}: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise WandbUnavailableError(f"{what}: no answer within {timeout_s:.0f} s") from exc
    return CommandResult(
        returncode=proc.returncode if proc.returncode is not None else -1,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
    )


def _raise_for(result: CommandResult, what: str, secret: str | None) -> None:
    if result.returncode == 0:
        return
    tail = redact((result.stderr or result.stdout)[-_TAIL_CHARS:], secret).strip()
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
    raise error_class(tail)(f"{what}: exit {result.returncode}: {last.strip()}")


async def create_sweep(
    config: Mapping[str, Any],
    *,
    entity: str,
    project: str,
    env: Mapping[str, str],
    timeout_s: float,
) -> str:
    """Create a sweep with `wandb.sweep` in a child process and return the sweep id."""
    what = f"create sweep in {entity}/{project}"
    payload = json.dumps({"config": dict(config), "entity": entity, "project": project})
    result = await run_command(
        [sys.executable, "-c", _CREATE_SWEEP_PROGRAM],
        env=env,
        timeout_s=timeout_s,
        stdin=payload.encode(),
        what=what,
    )
    _raise_for(result, what, env.get("WANDB_API_KEY"))
    found = _SWEEP_ID.findall(result.stdout)
    if not found:
        raise WandbRequestError(f"{what}: no sweep id in the output")
    return str(found[-1])


async def set_sweep_state(
    sweep_path: str,
    action: SweepAction,
    *,
    env: Mapping[str, str],
    timeout_s: float,
    executable: str | None = None,
) -> None:
    """Run `wandb sweep --<action> entity/project/id` and raise if it failed."""
    if action not in SWEEP_ACTIONS:
        raise WandbRequestError(f"unknown sweep action {action!r}")
    what = f"{action} sweep {sweep_path}"
    result = await run_command(
        [executable or wandb_executable(), "sweep", f"--{action}", sweep_path],
        env=env,
        timeout_s=timeout_s,
        what=what,
    )
    _raise_for(result, what, env.get("WANDB_API_KEY"))
