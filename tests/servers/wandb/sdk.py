"""Help tests run the real wandb SDK (scripts, ``wandb sweep``, ``wandb agent``) against the server."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

API_KEY = "local-" + "0123456789abcdef" * 3
"""An API key the local server accepts (``local-`` and 48 word characters)."""


def sdk_env(base_url: str, tmpdir: str | os.PathLike[str], **extra: str) -> dict[str, str]:
    """Return an environment for a wandb SDK subprocess that talks only to ``base_url``.

    Starts from ``os.environ`` (minus any ``WANDB_*``), keeps all wandb state under
    ``tmpdir``, silences telemetry and console capture, sends file_stream every second,
    puts this interpreter's bin directory first on PATH (so ``python`` and ``wandb`` are
    the venv's), and adds ``extra``.
    """
    root = Path(tmpdir)
    for sub in ("wandb", "config", "cache", "data", "artifacts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        {
            "WANDB_BASE_URL": base_url,
            "WANDB_API_KEY": API_KEY,
            "WANDB_MODE": "online",
            "WANDB_SILENT": "true",
            "WANDB_ERROR_REPORTING": "false",
            "WANDB_CONSOLE": "off",
            "WANDB_DISABLE_CODE": "true",
            "WANDB_DISABLE_GIT": "true",
            "WANDB_X_DISABLE_STATS": "true",
            "WANDB_X_DISABLE_META": "true",
            "WANDB_X_DISABLE_MACHINE_INFO": "true",
            "WANDB_X_SAVE_REQUIREMENTS": "false",
            "WANDB_X_FILE_STREAM_TRANSMIT_INTERVAL": "1",
            "WANDB_AGENT_REPORT_INTERVAL": "1",
            "WANDB_AGENT_DISABLE_FLAPPING": "true",
            "WANDB_DIR": str(root / "wandb"),
            "WANDB_CONFIG_DIR": str(root / "config"),
            "WANDB_CACHE_DIR": str(root / "cache"),
            "WANDB_DATA_DIR": str(root / "data"),
            "WANDB_ARTIFACT_DIR": str(root / "artifacts"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        }
    )
    env.update(extra)
    return env


def wandb_cli(*args: str) -> list[str]:
    """Return argv for the ``wandb`` command line run by this interpreter."""
    return [sys.executable, "-m", "wandb", *args]


FAST_AGENT_CODE = (
    "import sys, wandb.wandb_agent as a; a.Agent.POLL_INTERVAL = {poll}; "
    "from wandb.cli.cli import cli; sys.argv = ['wandb'] + sys.argv[1:]; cli()"
)


def fast_agent_cli(*args: str, poll_interval: float = 0.5) -> list[str]:
    """Return argv for the real ``wandb`` CLI with the agent's 5 s poll shortened (tests only).

    ``wandb agent`` waits a hard-coded 5 s between heartbeats; this runs the same CLI
    with ``Agent.POLL_INTERVAL`` patched so a test's sweep finishes in seconds.
    """
    return [sys.executable, "-c", FAST_AGENT_CODE.format(poll=poll_interval), *args]


def public_api(base_url: str, timeout: int = 20, entity: str = "lab") -> Any:
    """Return a ``wandb.Api`` bound to the local server (its GraphQL goes through wandb-core)."""
    import wandb

    return wandb.Api(
        api_key=API_KEY, overrides={"base_url": base_url, "entity": entity}, timeout=timeout
    )


def wait_for(
    probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or probe!r}")
        time.sleep(interval)
