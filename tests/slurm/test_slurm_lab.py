"""A sweep's launcher fields in the lab file: Slurm values are validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config import LabFileError, SlurmConfig, parse_lab


def lab_with(tmp_path: Path, **sweep: Any) -> dict[str, Any]:
    (tmp_path / "sweep.yaml").write_text("method: grid\n")
    return {"entity": "lab", "sweeps": {"w": {"file": "sweep.yaml", "project": "p", **sweep}}}


def test_a_sweep_runs_locally_unless_the_lab_file_says_slurm(tmp_path: Path) -> None:
    lab = parse_lab(lab_with(tmp_path), "lab.yaml", tmp_path)
    assert lab.sweeps["w"].launcher == "local"
    assert lab.sweeps["w"].slurm == SlurmConfig()
    assert lab.sweeps["w"].log_dir is None


def test_slurm_fields_load_and_log_dir_is_relative_to_the_lab_file(tmp_path: Path) -> None:
    slurm = {
        "partition": "gpu",
        "time": "1-12:00:00",
        "gpus_per_agent": 1,
        "cpus_per_agent": 8,
        "mem": "32G",
        "account": "ml-lab",
        "qos": "normal",
        "extra": ["--constraint=a100", "--exclude node7"],
    }
    lab = parse_lab(
        lab_with(tmp_path, launcher="slurm", slurm=slurm, log_dir="logs"), "lab.yaml", tmp_path
    )
    sweep = lab.sweeps["w"]
    assert sweep.launcher == "slurm"
    assert sweep.slurm.model_dump() == {**slurm, "extra": ("--constraint=a100", "--exclude node7")}
    assert sweep.log_dir == tmp_path / "logs"


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ({"launcher": "kubernetes"}, "sweeps.w.launcher: Input should be 'local' or 'slurm'"),
        ({"slurm": {"partition": "gpu; rm -rf /"}}, "sweeps.w.slurm.partition: name 'gpu; rm"),
        ({"slurm": {"account": "$(id)"}}, "sweeps.w.slurm.account: name '$(id)'"),
        ({"slurm": {"qos": ""}}, "sweeps.w.slurm.qos: name ''"),
        ({"slurm": {"time": "forever"}}, "sweeps.w.slurm.time: time 'forever' is not"),
        ({"slurm": {"mem": "lots"}}, "sweeps.w.slurm.mem: mem 'lots' is not"),
        ({"slurm": {"gpus_per_agent": -1}}, "sweeps.w.slurm.gpus_per_agent: Input should be"),
        ({"slurm": {"cpus_per_agent": 0}}, "sweeps.w.slurm.cpus_per_agent: Input should be"),
        (
            {"slurm": {"extra": ["--constraint=a100\nrm -rf ~"]}},
            "sweeps.w.slurm.extra: sbatch line '--constraint=a100\\nrm -rf ~' must be one line",
        ),
        ({"slurm": {"extra": ["rm -rf ~"]}}, "sweeps.w.slurm.extra: sbatch line 'rm -rf ~' must"),
        ({"slurm": {"nodes": 2}}, "sweeps.w.slurm.nodes: Extra inputs are not permitted"),
    ],
)
def test_a_bad_slurm_value_stops_the_bot_naming_the_field(
    tmp_path: Path, sweep: dict[str, Any], expected: str
) -> None:
    with pytest.raises(LabFileError) as caught:
        parse_lab(lab_with(tmp_path, **sweep), "lab.yaml", tmp_path)
    assert any(line.startswith(f"lab.yaml: {expected}") for line in caught.value.problems), (
        caught.value.problems
    )
