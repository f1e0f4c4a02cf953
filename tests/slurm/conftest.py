"""Slurm tests run against the real single-node Slurm that `tests/slurm/local-slurm up` starts."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def slurm_problem() -> str | None:
    """Return why no Slurm answers here, or None when the controller and a node are up."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return "Slurm is not installed (run tests/slurm/local-slurm up as root)"
    try:
        out = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%T"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    states = out.stdout.split()
    if out.returncode != 0 or not any(
        s.rstrip("*") in ("idle", "mixed", "allocated") for s in states
    ):
        return f"no Slurm node is up ({(out.stderr or out.stdout).strip()[:200]}); run tests/slurm/local-slurm up"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    """Skip where Slurm is absent; in CI (CI=true) its absence is a failure, not a skip."""
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the Slurm tests: {problem}")
    pytest.skip(problem)
