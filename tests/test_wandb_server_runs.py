"""The local W&B server against the real SDK: wandb.init/log/finish, failures, crashes, stops."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.wandb import ServerThread, WandbServer, public_api, sdk_env, wait_for

pytestmark = pytest.mark.slow

ENTITY = "lab"
PROJECT = "runs-e2e"
WINE_TRAIN = Path(__file__).resolve().parents[1] / "examples" / "wine" / "train.py"

LOG_SCRIPT = textwrap.dedent(
    """
    import sys, wandb
    run = wandb.init(project=sys.argv[1], config={"lr": 0.01, "epochs": 3, "arch": "mlp"})
    for i in range(5):
        wandb.log({"loss": 1 / (i + 1), "acc": i / 10})
    print("RUN_ID", run.id, flush=True)
    if sys.argv[2] == "raise":
        raise RuntimeError("boom")
    wandb.finish()
    """
)

LOOP_SCRIPT = textwrap.dedent(
    """
    import sys, time, wandb
    run = wandb.init(project=sys.argv[1])
    print("RUN_ID", run.id, flush=True)
    i = 0
    while True:
        wandb.log({"tick": i})
        i += 1
        time.sleep(0.2)
    """
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """Serve one W&B server (5 s crash timeout) in a thread for the whole module."""
    with ServerThread(WandbServer(heartbeat_timeout=5.0)) as thread:
        yield thread


@pytest.fixture
def env(server: ServerThread, tmp_path: Path) -> dict[str, str]:
    """Return an SDK environment pointing at the module's server."""
    return sdk_env(server.base_url, tmp_path)


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@contextlib.contextmanager
def _popen(script: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, str(script), PROJECT], env=env, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _run_id(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RUN_ID "):
            return line.split()[1]
    raise AssertionError("script printed no run id")


def _state(server: ServerThread, name: str) -> str | None:
    run = server.server.get_run(ENTITY, PROJECT, name)
    return run["state"] if run else None


def test_finished_run_round_trips_config_summary_and_history(
    server: ServerThread, env: dict[str, str], tmp_path: Path
) -> None:
    script = _script(tmp_path, "ok.py", LOG_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), PROJECT, "ok"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    name = done.stdout.split("RUN_ID ")[1].split()[0]
    assert _state(server, name) == "finished"

    run = public_api(server.base_url).run(f"{ENTITY}/{PROJECT}/{name}")
    assert run.state == "finished"
    assert run.config == {"lr": 0.01, "epochs": 3, "arch": "mlp"}
    assert run.summary["loss"] == pytest.approx(0.2)
    assert run.summary["acc"] == pytest.approx(0.4)
    expected = [(i, 1 / (i + 1), i / 10) for i in range(5)]
    full = run.history(pandas=False)
    assert [(r["_step"], r["loss"], r["acc"]) for r in full] == expected
    scanned = list(run.scan_history())
    assert [(r["_step"], r["loss"], r["acc"]) for r in scanned] == expected
    sampled = run.history(keys=["loss"], pandas=False)
    assert sampled == [{"_step": i, "loss": loss} for i, loss, _ in expected]
    assert [r["acc"] for r in run.scan_history(keys=["acc"])] == [e[2] for e in expected]


def test_train_example_runs_to_finished(
    server: ServerThread, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "WANDB_PROJECT": PROJECT}
    done = subprocess.run(
        [
            sys.executable,
            str(WINE_TRAIN),
            "--dataset",
            "wine",
            "--n_estimators",
            "5",
            "--max_depth",
            "2",
            "--epochs",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=WINE_TRAIN.parent,
    )
    assert done.returncode == 0, done.stderr
    runs = [r for r in server.server.list_runs(ENTITY, PROJECT) if r["config"].get("n_estimators")]
    assert runs, "train.py created no run in the project"
    run = runs[-1]
    assert run["state"] == "finished"
    assert run["config"]["n_estimators"]["value"] == 5
    for metric in ("accuracy", "precision", "recall", "f1"):
        assert metric in run["summary"]


def test_script_that_raises_is_failed(
    server: ServerThread, env: dict[str, str], tmp_path: Path
) -> None:
    script = _script(tmp_path, "bad.py", LOG_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), PROJECT, "raise"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    name = done.stdout.split("RUN_ID ")[1].split()[0]
    assert _state(server, name) == "failed"
    assert server.server.get_run(ENTITY, PROJECT, name)["exitcode"] == 1  # type: ignore[index]
    assert public_api(server.base_url).run(f"{ENTITY}/{PROJECT}/{name}").state == "failed"


def test_sigkilled_script_is_crashed_after_the_heartbeat_timeout(
    server: ServerThread, env: dict[str, str], tmp_path: Path
) -> None:
    script = _script(tmp_path, "loop.py", LOOP_SCRIPT)
    with _popen(script, env) as proc:
        name = _run_id(proc)
        wait_for(lambda: len(server.server.get_run(ENTITY, PROJECT, name)["history"]) >= 2)  # type: ignore[index]
        assert _state(server, name) == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: _state(server, name) == "crashed", timeout=15, what="crashed")


def test_public_api_stop_kills_a_looping_script(
    server: ServerThread, env: dict[str, str], tmp_path: Path
) -> None:
    script = _script(tmp_path, "loop.py", LOOP_SCRIPT)
    with _popen(script, env) as proc:
        name = _run_id(proc)
        wait_for(lambda: _state(server, name) == "running")
        public_api(server.base_url).run(f"{ENTITY}/{PROJECT}/{name}").stop()
        assert proc.wait(timeout=30) != 0
        wait_for(lambda: _state(server, name) == "killed", timeout=10, what="killed")
