"""Build the environment and command lines of `wandb` child processes."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

# Variables the child must not inherit from the bot's own process: W&B's would point it at
# another account, server, run or sweep, or at this process's wandb-core (WANDB_SERVICE);
# the bot's own (its Telegram token, its knobs) are none of a training script's business.
_DROPPED_PREFIXES = ("WANDB_", "WTB_", "TELEGRAM_BOT_TOKEN")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def wandb_env(
    api_key: str,
    base_url: str | None,
    extra: Mapping[str, str] | None = None,
    *,
    inherit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of a `wandb` child process that uses this key and server.

    The child inherits `inherit` (the current environment by default) without any
    `WANDB_*` or `WTB_*` variable or the bot's Telegram token, then gets the key, the base
    URL and `extra` (which wins).
    """
    source = os.environ if inherit is None else inherit
    env = {k: v for k, v in source.items() if not k.upper().startswith(_DROPPED_PREFIXES)}
    env["WANDB_API_KEY"] = api_key
    if base_url:
        env["WANDB_BASE_URL"] = base_url.rstrip("/")
    no_proxy = [p for p in env.get("NO_PROXY", "").split(",") if p]
    env["NO_PROXY"] = ",".join([*no_proxy, *(h for h in _LOOPBACK if h not in no_proxy)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def wandb_executable() -> str:
    """Return the `wandb` command-line script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("wandb")
    if beside.exists():
        return str(beside)
    found = shutil.which("wandb")
    if found is None:
        raise FileNotFoundError("the `wandb` command line is not installed")
    return found
