"""`make demo` comes up, starts real runs and a sweep, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from wandb_client.agents import descendants

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


async def _line(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"demo ended before {needle!r}: {''.join(seen)[-3000:]}")
        seen.append(raw.decode())
        if needle in seen[-1]:
            return


async def test_ctrl_c_stops_the_bot_servers_runs_and_agents(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examples.demo",
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None and proc.stdin is not None
    seen: list[str] = []
    try:
        await asyncio.wait_for(_line(proc.stdout, "ready", seen), 120)
        # The chat answers what is typed, and the sweep's agent is up.
        proc.stdin.write(b"/status\n")
        await proc.stdin.drain()
        await asyncio.wait_for(_line(proc.stdout, "outbox:", seen), 150)
        if not any("started sweep" in line for line in seen):
            await asyncio.wait_for(_line(proc.stdout, "started sweep", seen), 150)
        children = descendants(proc.pid)
        assert children, "no training run or agent was started"
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "stopped; the demo's files" in rest.decode(), "".join(seen)[-2000:]
    assert "Traceback" not in "".join(seen) + rest.decode()
    alive = [pid for pid in children if _alive(pid)]
    assert alive == [], alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
