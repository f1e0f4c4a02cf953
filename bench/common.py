"""What every benchmark shares: the table row, percentiles, servers and the naive W&B reader."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.servers.wandb.sdk import API_KEY, sdk_env

ENTITY = "lab"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the benchmark table: what was measured, ours beside the naive way."""

    measure: str
    ours: float
    naive: float | None
    unit: str
    note: str = ""

    def ratio(self) -> str:
        """Return naive ÷ ours (how many times better ours is), or a dash."""
        if self.naive is None:
            return "–"
        if self.ours == 0:
            return "∞" if self.naive else "1×"
        return f"{self.naive / self.ours:,.1f}×"


def fmt(value: float | None, unit: str) -> str:
    """Format a figure for the table: integers as such, small numbers with decimals."""
    if value is None:
        return "–"
    if (value == int(value) and abs(value) >= 1) or value == 0:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2g}" if abs(value) < 0.1 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(rows: Sequence[Row]) -> str:
    """Return the rows as one markdown table."""
    lines = [
        "| measure | ours | naive | naive ÷ ours | how |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.measure} | {fmt(row.ours, row.unit)} | {fmt(row.naive, row.unit)} "
            f"| {row.ratio()} | {row.note} |"
        )
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0–100) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def quiet_wandb_env(base_url: str) -> dict[str, str]:
    """Return the WANDB_* settings that keep the SDK in this process local and quiet."""
    env = sdk_env(base_url, tempfile.mkdtemp(prefix="bench-wandb-"))
    return {k: v for k, v in env.items() if k.startswith("WANDB_") or k.lower() == "no_proxy"}


@contextmanager
def sdk_environment(base_url: str) -> Iterator[None]:
    """Point the wandb SDK of this process at the local server for the duration."""
    saved = dict(os.environ)
    os.environ.update(quiet_wandb_env(base_url))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def naive_api(base_url: str) -> Any:
    """Build `wandb.Api()` as a lab's script would: once per poll."""
    import wandb

    return wandb.Api(api_key=API_KEY, overrides={"base_url": base_url}, timeout=60)


def naive_read_project(api: Any, project: str, filters: dict[str, Any] | None = None) -> int:
    """List a project's runs the SDK's default way and read each one's summary (N+1)."""
    seen = 0
    for run in api.runs(f"{ENTITY}/{project}", filters=filters or {}):
        _ = run.summary.get("accuracy")
        seen += 1
    return seen


class RemoteWandb:
    """The local W&B server in its own process, driven through its control API.

    Benchmarks that time CPU or memory keep the server's own work out of their figures.
    """

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.wandb", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.pid = self._proc.pid
        self.base_url = self._proc.stdout.readline().split()[-1]

    def _call(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_control/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.load(answer)

    def seed(self, spec: dict[str, Any]) -> None:
        """Seed projects and runs."""
        self._call("seed", spec)

    def request_counts(self) -> dict[str, int]:
        """Return requests per operation since the last reset."""
        return dict(self._call("requests"))

    def reset_requests(self) -> None:
        """Zero the request counts."""
        self._call("requests/reset", {})

    def close(self) -> None:
        """Stop the server process."""
        self._proc.terminate()
        self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> RemoteWandb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def generate(entity: str, project: str, count: int, **extra: Any) -> dict[str, Any]:
    """Return a seed spec of `count` generated finished runs, created in the past."""
    return {
        "generate": {
            "entity": entity,
            "project": project,
            "count": count,
            "states": ["finished"],
            "start": "2026-01-01T00:00:00",
            **extra,
        }
    }
