"""W&B requests of one poll: an idle project of N runs, and a project where k runs changed.

Both ways talk to the local W&B server through the real wandb SDK; its control API counts
the requests.
- naive: `wandb.Api()` per poll, `for run in api.runs(path)` (the SDK's lazy listing, 50 a
  page) and `run.summary` of each run (one `Run` request each);
- ours: the bot's poll listing (`WandbClient.changed_runs_many`: one filtered, full-fragment
  listing, many projects a request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import ENTITY, Row, generate, naive_api, naive_read_project, sdk_environment
from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import API_KEY
from wandb_client import ChangedRunsQuery, WandbClient

SINCE = datetime(2026, 6, 1, tzinfo=UTC)


def changed_runs(project: str, k: int) -> dict[str, Any]:
    """Return a seed of k runs of `project` that changed after SINCE."""
    return {
        "runs": [
            {
                "entity": ENTITY,
                "project": project,
                "name": f"changed{i:04d}",
                "state": "finished",
                "createdAt": (SINCE + timedelta(minutes=1)).isoformat(),
                "updatedAt": (SINCE + timedelta(minutes=2)).isoformat(),
                "summary": {"accuracy": i / max(k, 1)},
            }
            for i in range(k)
        ]
    }


async def ours_requests(server: WandbServer, client: WandbClient, project: str) -> int:
    """Return the requests of one poll of `project` by the bot's listing."""
    server.reset_requests()
    (runs,) = await client.changed_runs_many([ChangedRunsQuery(ENTITY, project, SINCE)])
    assert not isinstance(runs, Exception), runs
    return sum(server.request_counts().values())


def naive_requests(
    server: WandbServer, base_url: str, project: str, filters: dict[str, Any] | None = None
) -> tuple[int, float]:
    """Return the requests and seconds of one naive poll of `project`."""
    server.reset_requests()
    started = time.perf_counter()
    naive_read_project(naive_api(base_url), project, filters)
    return sum(server.request_counts().values()), time.perf_counter() - started


async def measure(sizes: Sequence[int], ks: Sequence[int]) -> tuple[list[Row], dict[int, float]]:
    """Return the rows, and the seconds the naive way took to read every run, by size."""
    rows: list[Row] = []
    naive_seconds: dict[int, float] = {}
    with (
        ServerThread(WandbServer(heartbeat_timeout=10**6)) as thread,
        sdk_environment(thread.base_url),
    ):
        server = thread.server
        client = WandbClient(API_KEY, base_url=thread.base_url, default_entity=ENTITY, timeout=60)
        await client.viewer()
        # A script polls for hours: its one-off start (wandb-core, login) is not counted.
        await asyncio.to_thread(lambda: naive_api(thread.base_url).viewer)
        try:
            for size in sizes:
                project = f"idle-{size}"
                server.seed(generate(ENTITY, project, size))
                ours = await ours_requests(server, client, project)
                naive, seconds = await asyncio.to_thread(
                    naive_requests, server, thread.base_url, project
                )
                naive_seconds[size] = seconds
                rows.append(Row(f"requests: idle poll, {size:,} runs", ours, naive, "", "one poll"))
            for k in ks:
                project = f"changed-{k}"
                server.seed(generate(ENTITY, project, 100))
                server.seed(changed_runs(project, k))
                ours = await ours_requests(server, client, project)
                since = {"updatedAt": {"$gt": SINCE.strftime("%Y-%m-%dT%H:%M:%SZ")}}
                naive, _ = await asyncio.to_thread(
                    naive_requests, server, thread.base_url, project, since
                )
                rows.append(
                    Row(
                        f"requests: poll with k = {k} changed runs",
                        ours,
                        naive,
                        "",
                        "naive filters on updatedAt too",
                    )
                )
        finally:
            await client.close()
    return rows, naive_seconds
