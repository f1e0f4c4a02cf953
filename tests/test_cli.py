"""The command line: version, help, and refusing to start with bad configuration."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.harness import Harness

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WTB_", "TELEGRAM_", "WANDB_API", "WANDB_BASE"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("wandb-telegram-bot 0.1.0")
    out = run_cli("--help").stdout
    assert "check" in out and "run" in out


def test_missing_secrets_and_lab_file_exit_2_naming_each(tmp_path: Path) -> None:
    proc = run_cli("run", env={"WTB_LAB_FILE": str(tmp_path / "lab.yaml")}, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert any(line.strip().startswith("TELEGRAM_BOT_TOKEN: missing") for line in lines)
    assert any(line.strip().startswith("WANDB_API_KEY: missing") for line in lines)
    assert any("lab.yaml: not found" in line for line in lines)


def test_bad_lab_file_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(yaml.safe_dump({"entity": "lab", "admins": ["x"], "chats": [{"id": "y"}]}))
    proc = run_cli(
        "check",
        env={"TELEGRAM_BOT_TOKEN": "1:a", "WANDB_API_KEY": "k", "WTB_LAB_FILE": str(lab)},
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "admins[0]" in proc.stderr and "chats[0].id" in proc.stderr
    assert "1:a" not in proc.stderr


def test_bad_knob_names_the_variable(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("entity: lab\n")
    proc = run_cli(
        env={
            "TELEGRAM_BOT_TOKEN": "1:a",
            "WANDB_API_KEY": "k",
            "WTB_LAB_FILE": str(lab),
            "WTB_POLL_INTERVAL": "soon",
        },
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "WTB_POLL_INTERVAL: Input should be a valid number" in proc.stderr


async def run_check(env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        cwd=REPO,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_check_reports_w_and_b_and_telegram_ok(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start_servers()
    try:
        kept = ("WTB_LAB_FILE", "WTB_TELEGRAM_API_URL", "WTB_DATA_DIR")
        env = {k: v for k, v in h.env().items() if not k.startswith("WTB_") or k in kept}
        code, out, err = await run_check(env)
        assert code == 0, (out, err[-2000:])
        assert "W&B: ok, signed in as lab" in out and "Telegram: ok, bot @lab_bot" in out
        # The lab's project has no runs yet: W&B does not know it, and check says so.
        assert "⚠️ lab/wine-quality-dev: not found in W&B" in out
        assert env["WANDB_API_KEY"] not in out + err
        code, out, _ = await run_check({**env, "WANDB_API_KEY": "not-a-key"})
        assert code == 1 and "W&B: FAILED" in out
    finally:
        await h.telegram.stop()
        await asyncio.to_thread(h.wandb.stop)


async def test_check_says_w_and_b_is_unreachable_in_words_within_seconds(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start_servers()
    try:
        kept = ("WTB_LAB_FILE", "WTB_TELEGRAM_API_URL", "WTB_DATA_DIR")
        env = {k: v for k, v in h.env().items() if not k.startswith("WTB_") or k in kept}
        await asyncio.to_thread(h.wandb.stop)  # nothing listens on its port any more
        started = asyncio.get_running_loop().time()
        # With the bot's own patience (60 s here) check would wait a minute for a dead server.
        code, out, err = await run_check({**env, "WTB_WANDB_TIMEOUT": "60"})
        took = asyncio.get_running_loop().time() - started
        assert code == 1, (out, err[-2000:])
        assert "W&B: FAILED: W&B did not answer at http://127.0.0.1:" in out
        assert "Error" not in out and "Telegram: ok" in out
        # A few seconds for W&B; the rest is interpreter, imports and wandb-core start-up.
        assert took < 40, took
    finally:
        await h.telegram.stop()
