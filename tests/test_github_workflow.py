"""The lab's GitHub Actions sweep workflow: its triggers, and its training step run here, as
the runner would run it, against the local W&B server while the bot watches."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ENTITY, Harness, lab_data
from tests.servers.wandb.sdk import API_KEY, FAST_AGENT_CODE

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "examples" / "github-actions" / "wandb-sweep.yml"
SHA = "3f2a1c9d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3"


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def job() -> dict[str, Any]:
    job = workflow()["jobs"]["sweep"]
    assert isinstance(job, dict)
    return job


def step(name: str) -> dict[str, Any]:
    return next(s for s in job()["steps"] if s.get("name") == name)


def expand(value: str, context: dict[str, str]) -> str:
    """Replace each `${{ expression }}` with its value; an unknown one fails the test."""

    def one(match: re.Match[str]) -> str:
        expression = match[1].strip()
        assert expression in context, f"the test does not know {expression!r}"
        return context[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def test_the_workflow_is_dispatched_with_count_dataset_and_sweep_file_or_pushed() -> None:
    on = workflow()["on"]
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["count"]["default"] == 20
    assert inputs["dataset"]["options"] == ["wine", "iris"]
    assert (REPO / "examples" / "wine" / inputs["sweep_file"]["default"]).exists()
    assert on["push"]["branches"] == ["sweep"]
    assert job()["env"]["WANDB_API_KEY"] == "${{ secrets.WANDB_API_KEY }}"
    assert job()["defaults"]["run"]["working-directory"] == "examples/wine"


@pytest.mark.parametrize(
    ("branch", "project"),
    [("main", "wine-quality-prod"), ("sweep", "wine-quality-dev"), ("feat/x", "wine-quality-dev")],
)
def test_main_trains_for_production_and_other_branches_for_development(
    tmp_path: Path, branch: str, project: str
) -> None:
    # The step's own lines up to the sweep, then what they chose.
    script = step("Train")["run"].split("sweep_id=")[0] + 'echo "$WANDB_PROJECT $WANDB_TAGS"\n'
    env = {"PATH": "/usr/bin:/bin", "BRANCH": branch, "COMMIT": SHA}
    out = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == [project, f"branch:{branch},commit:{SHA}"]


async def test_the_training_step_tags_runs_and_the_bot_shows_them(tmp_path: Path) -> None:
    branch, project = "sweep", "wine-quality-dev"
    async with Harness(tmp_path, lab=lab_data()) as h:
        context = {
            "secrets.WANDB_API_KEY": API_KEY,
            "vars.WANDB_ENTITY": ENTITY,
            "github.ref_name": branch,
            "github.sha": SHA,
            "inputs.count || 20": "1",
            "inputs.dataset || 'wine'": "iris",
            "inputs.sweep_file || 'sweep.yaml'": "sweep.yaml",
        }
        env = {k: expand(v, context) for k, v in job()["env"].items()}
        # `wandb` is the real CLI with the agent's 5 s heartbeat shortened, first on PATH.
        bin_dir = tmp_path / "ci-bin"
        bin_dir.mkdir()
        (bin_dir / "wandb").write_text(f"#!{sys.executable}\n{FAST_AGENT_CODE.format(poll=0.5)}\n")
        (bin_dir / "wandb").chmod(0o755)
        sdk = h.sdk_env()
        sdk["PATH"] = f"{bin_dir}:{sdk['PATH']}"
        script = tmp_path / "train-step.sh"
        script.write_text(step("Train")["run"])
        # The runner's `bash -e {0}` with the job's env, in the job's working directory.
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            str(script),
            cwd=REPO / job()["defaults"]["run"]["working-directory"],
            env={**sdk, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode == 0, out.decode()[-3000:]
        runs = h.wb.list_runs(ENTITY, project)
        assert len(runs) == 1
        run = runs[0]
        assert set(run["tags"]) == {f"branch:{branch}", f"commit:{SHA}"}
        assert run["config"]["dataset"] in ("iris", {"value": "iris"})
        note = await h.wait_for_text(run["name"], timeout=30)
        assert f"branch {branch} · commit {SHA[:7]}" in (note.text or "")
        assert "#branch:" not in (note.text or "")
        listed = await h.reply_to(f"/runs {project} branch={branch}")
        assert run["name"] in (listed.text or "") and f"of branch {branch}" in (listed.text or "")
        other = await h.reply_to(f"/runs {project} branch=elsewhere")
        assert run["name"] not in (other.text or "")
        best = await h.reply_to(f"/best {project}")
        assert f"branch {branch} · commit {SHA[:7]}" in (best.text or "")
