"""The Slurm client's pure parts: parsing squeue and sbatch, writing the batch script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wandb_client.slurm import (
    SlurmError,
    TaskState,
    batch_script,
    parse_job_id,
    parse_squeue,
    read_exit_code,
    submit_env,
)


def test_squeue_lines_become_tasks_by_array_and_index() -> None:
    text = (
        "12|0|RUNNING|None|node1\n"
        "12|1|PENDING|Resources|\n"
        "12|2|CANCELLED by 0|None|node1\n"
        "13|N/A|RUNNING|None|node2\n"  # not an array task: not ours
        "garbage\n"
    )
    assert parse_squeue(text) == {
        ("12", 0): TaskState("12", 0, "RUNNING", "", "node1"),
        ("12", 1): TaskState("12", 1, "PENDING", "Resources", ""),
        ("12", 2): TaskState("12", 2, "CANCELLED", "", "node1"),
    }
    assert parse_squeue(text)[("12", 1)].pending
    assert parse_squeue(text)[("12", 2)].ended
    assert not parse_squeue(text)[("12", 0)].ended


@pytest.mark.parametrize(("text", "job"), [("4711\n", "4711"), ("4711;cluster\n", "4711")])
def test_sbatch_parsable_output_gives_the_job_id(text: str, job: str) -> None:
    assert parse_job_id(text) == job


def test_sbatch_output_that_is_no_job_id_is_an_error() -> None:
    with pytest.raises(SlurmError, match="not a job id"):
        parse_job_id("sbatch: error: Batch job submission failed")


def test_the_batch_script_quotes_every_word(tmp_path: Path) -> None:
    odd = tmp_path / "it's $HOME; rm -rf x"
    odd.mkdir()
    script = batch_script(
        argv=["/bin/echo", "{count}", "$(whoami)", "a b"],
        counts=[3, 2],
        workdir=odd,
        folder=odd,
        prefix="s",
        directives=["--constraint=a100"],
    )
    assert script.splitlines()[1] == "#SBATCH --constraint=a100"
    path = tmp_path / "job.sh"
    path.write_text(script)
    env = {"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["/bin/bash", str(path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "2 $(whoami) a b\n"
    assert read_exit_code(odd / "s-7_1.exit") == 0


def test_exit_files_that_say_nothing_give_no_code(tmp_path: Path) -> None:
    (tmp_path / "bad.exit").write_text("x\n")
    assert read_exit_code(tmp_path / "bad.exit") is None
    assert read_exit_code(tmp_path / "missing.exit") is None


def test_the_submitters_own_slurm_job_stays_out_of_the_array() -> None:
    assert submit_env({"SLURM_JOB_ID": "1", "PATH": "/bin", "WANDB_API_KEY": "k"}) == {
        "PATH": "/bin",
        "WANDB_API_KEY": "k",
    }
