"""The local W&B server drives sweeps for the real ``wandb sweep`` and ``wandb agent``."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.servers.wandb import (
    ServerThread,
    WandbServer,
    fast_agent_cli,
    public_api,
    sdk_env,
    wait_for,
    wandb_cli,
)

pytestmark = pytest.mark.slow

ENTITY = "lab"
WINE = Path(__file__).resolve().parents[1] / "examples" / "wine"

QUICK_PROGRAM = textwrap.dedent(
    """
    import argparse, time, wandb
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=int)
    parser.add_argument("--b", type=str)
    parser.add_argument("--loop", type=int, default=0)
    args = parser.parse_args()
    run = wandb.init()
    wandb.log({"score": args.a * 10 + len(args.b)})
    i = 0
    while args.loop:
        wandb.log({"tick": i}); i += 1; time.sleep(0.2)
    wandb.finish()
    """
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """Serve one W&B server in a thread for the whole module."""
    with ServerThread(WandbServer(heartbeat_timeout=8.0)) as thread:
        yield thread


def _create_sweep(server: ServerThread, env: dict[str, str], project: str, config: Path) -> str:
    before = {s["name"] for s in server.server.list_sweeps(ENTITY, project)}
    done = subprocess.run(
        wandb_cli("sweep", "--entity", ENTITY, "--project", project, str(config)),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
    )
    assert done.returncode == 0, done.stderr
    created = [
        s["name"] for s in server.server.list_sweeps(ENTITY, project) if s["name"] not in before
    ]
    assert len(created) == 1
    return created[0]


def _quick_sweep(tmp_path: Path, method: str, loop: int = 0) -> Path:
    (tmp_path / "quick.py").write_text(QUICK_PROGRAM)
    config = {
        "program": "quick.py",
        "method": method,
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {
            "a": {"values": [1, 2]},
            "b": {"value": "yy"},
            "loop": {"value": loop},
        },
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_agent_count_3_runs_the_wine_script_with_sweep_parameters(
    server: ServerThread, tmp_path: Path
) -> None:
    project = "wine-sweep"
    env = sdk_env(server.base_url, tmp_path)
    sweep_id = _create_sweep(server, env, project, WINE / "sweep.yaml")
    api = public_api(server.base_url)
    assert api.sweep(f"{ENTITY}/{project}/{sweep_id}").state == "RUNNING"

    done = subprocess.run(
        fast_agent_cli("agent", "--count", "3", f"{ENTITY}/{project}/{sweep_id}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=WINE,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = server.server.list_runs(ENTITY, project)
    assert len(runs) == 3
    space = yaml.safe_load((WINE / "sweep.yaml").read_text())["parameters"]
    for run in runs:
        assert run["state"] == "finished"
        assert run["sweep"] == sweep_id
        for name, spec in space.items():
            value = run["config"][name]["value"]
            assert value in spec.get("values", [spec.get("value")])
    sweep = public_api(server.base_url).sweep(f"{ENTITY}/{project}/{sweep_id}")
    assert len(sweep.runs) == 3
    assert sweep.best_run().name in {r["name"] for r in runs}


def test_grid_sweep_runs_every_point_once_then_finishes(
    server: ServerThread, tmp_path: Path
) -> None:
    project = "grid"
    env = sdk_env(server.base_url, tmp_path)
    sweep_id = _create_sweep(server, env, project, _quick_sweep(tmp_path, "grid"))
    done = subprocess.run(
        fast_agent_cli("agent", f"{ENTITY}/{project}/{sweep_id}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = server.server.list_runs(ENTITY, project)
    points = sorted((r["config"]["a"]["value"], r["config"]["b"]["value"]) for r in runs)
    assert points == [(1, "yy"), (2, "yy")]
    assert all(r["state"] == "finished" for r in runs)
    sweep = public_api(server.base_url).sweep(f"{ENTITY}/{project}/{sweep_id}")
    assert sweep.state == "FINISHED"
    assert sweep.best_run().summary["score"] == 22


@pytest.mark.parametrize(
    ("flag", "state"),
    [
        ("--pause", "PAUSED"),
        ("--resume", "RUNNING"),
        ("--stop", "FINISHED"),
        ("--cancel", "CANCELED"),
    ],
)
def test_sweep_state_commands_change_what_the_public_api_reports(
    server: ServerThread, tmp_path: Path, flag: str, state: str
) -> None:
    project = "states"
    sweep_id = f"st{flag.strip('-')[:6]}"
    server.server.seed(
        {
            "sweeps": [
                {
                    "entity": ENTITY,
                    "project": project,
                    "name": sweep_id,
                    "state": "PAUSED" if flag == "--resume" else "RUNNING",
                    "config": {"method": "random", "parameters": {"a": {"values": [1]}}},
                }
            ]
        }
    )
    env = sdk_env(server.base_url, tmp_path)
    done = subprocess.run(
        wandb_cli("sweep", flag, f"{ENTITY}/{project}/{sweep_id}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert public_api(server.base_url).sweep(f"{ENTITY}/{project}/{sweep_id}").state == state


def test_cancel_stops_the_agents_live_run_and_the_agent_exits(
    server: ServerThread, tmp_path: Path
) -> None:
    project = "cancel"
    env = sdk_env(server.base_url, tmp_path)
    sweep_id = _create_sweep(server, env, project, _quick_sweep(tmp_path, "random", loop=1))
    with subprocess.Popen(
        fast_agent_cli("agent", f"{ENTITY}/{project}/{sweep_id}"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as agent:
        try:

            def live_run() -> str | None:
                runs = server.server.list_runs(ENTITY, project)
                return next((r["name"] for r in runs if r["state"] == "running"), None)

            name = wait_for(live_run, timeout=30, what="a running sweep run")
            subprocess.run(
                wandb_cli("sweep", "--cancel", f"{ENTITY}/{project}/{sweep_id}"),
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            assert agent.wait(timeout=30) == 0
            wait_for(
                lambda: server.server.get_run(ENTITY, project, name)["state"] == "killed",  # type: ignore[index]
                timeout=15,
                what="killed",
            )
        finally:
            if agent.poll() is None:
                agent.kill()
            agent.wait()
    sweep = public_api(server.base_url).sweep(f"{ENTITY}/{project}/{sweep_id}")
    assert sweep.state == "CANCELED"
