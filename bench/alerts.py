"""W&B requests of one poll with metric alerts on: 5 running runs in one project.

- ours: the poll's listing (one request for every project of the batch), then the bot's
  alert service on what it returned: rules on summary values add nothing; `nan` (which
  reads the logged values) adds one history request per running run;
- naive: the script a lab writes to check the same rules: list the running runs, read
  each run's summary (one `Run` each) and, for NaN, each run's history.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ENTITY, Row, naive_api, sdk_environment
from bot.alerts import AlertService
from bot.store import Store
from config import parse_lab
from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import API_KEY
from wandb_client import ChangedRunsQuery, WandbClient

PROJECT = "alerted"
RUNNING = 5
SUMMARY_RULES = [
    {"name": "low", "threshold": {"metric": "val/accuracy", "below": 0.1}},
    {"name": "stuck", "plateau": {"metric": "val/accuracy", "no_improvement_for": "30m"}},
    {"name": "odd", "zscore": {"metric": "val/accuracy", "above": 3}},
    {"name": "best", "new_best": {"metric": "val/accuracy"}},
]
HISTORY_RULES = [{"name": "nan-loss", "nan": ["loss"]}]


def seed(server: WandbServer) -> None:
    """Seed running runs with logged steps, and finished runs for the baselines."""
    runs: list[dict[str, Any]] = [
        {
            "entity": ENTITY,
            "project": PROJECT,
            "name": f"live{i}",
            "state": "running",
            "summary": {"val/accuracy": 0.5, "loss": 0.3, "_step": 9},
            "history": [{"_step": s, "loss": 0.3, "val/accuracy": 0.5} for s in range(10)],
        }
        for i in range(RUNNING)
    ]
    runs += [
        {
            "entity": ENTITY,
            "project": PROJECT,
            "name": f"done{i}",
            "state": "finished",
            "createdAt": "2026-01-01T00:00:00",
            "updatedAt": "2026-01-01T00:10:00",
            "summary": {"val/accuracy": 0.4 + i / 100},
        }
        for i in range(10)
    ]
    server.seed({"runs": runs})


async def ours(server: WandbServer, base_url: str, rules: list[dict[str, Any]]) -> float:
    """Return the W&B requests of one steady-state poll with these rules."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    lab = parse_lab(
        {"entity": ENTITY, "chats": [{"id": -1, "projects": [PROJECT]}], "alerts": rules},
        "lab",
        tmp,
    )
    client = WandbClient(API_KEY, base_url=base_url, default_entity=ENTITY, timeout=60)
    service = AlertService(Store(tmp / "s.db"), client, lab, lambda: datetime.now(UTC), interval=30)
    await client.viewer()
    since = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        counts = []
        for _ in range(2):  # the first poll fills the baselines once; the second is steady
            server.reset_requests()
            (runs,) = await client.changed_runs_many([ChangedRunsQuery(ENTITY, PROJECT, since)])
            assert isinstance(runs, list)
            await service.on_poll(ENTITY, PROJECT, runs)
            counts.append(sum(server.request_counts().values()))
    finally:
        await client.close()
    return float(counts[-1])


def naive(server: WandbServer, base_url: str, history: bool) -> float:
    """Return the requests of one naive check of the running runs."""
    api = naive_api(base_url)
    _ = api.viewer
    server.reset_requests()
    for run in api.runs(f"{ENTITY}/{PROJECT}", filters={"state": "running"}):
        _ = run.summary.get("val/accuracy")
        if history:
            run.history(keys=["loss"], pandas=False)
    return float(sum(server.request_counts().values()))


async def measure() -> list[Row]:
    """Return the rows: summary-value rules and history rules, ours beside naive."""
    with (
        ServerThread(WandbServer(heartbeat_timeout=10**6)) as thread,
        sdk_environment(thread.base_url),
    ):
        seed(thread.server)
        base = thread.base_url
        rows = []
        for label, rules, history in (
            ("no alerts", [], False),
            ("4 rules on summary values", SUMMARY_RULES, False),
            ("+ nan (logged values)", SUMMARY_RULES + HISTORY_RULES, True),
        ):
            mine = await ours(thread.server, base, rules)
            theirs = (
                None if not rules else await asyncio.to_thread(naive, thread.server, base, history)
            )
            rows.append(
                Row(
                    f"requests a poll, {RUNNING} running runs: {label}",
                    mine,
                    theirs,
                    "",
                    "ours: listing + alert requests; naive: summary (+ history) per run",
                )
            )
    return rows
