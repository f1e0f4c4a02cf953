"""The bot's own small HTTP endpoint: health for Docker and monitoring, metrics as JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.monitor import Monitor, PollScheduler
from bot.store import Store
from wandb_client.client import ClientHealth

# A project whose last good poll is older than this many poll intervals counts as stale.
STALE_POLLS = 10


class HealthServer:
    """Serve `GET /healthz` (200 when W&B answers and the outbox drains, else 503)."""

    def __init__(
        self,
        store: Store,
        monitor: Monitor,
        polls: PollScheduler,
        wandb_health: Callable[[], ClientHealth],
        clock: Callable[[], datetime],
        *,
        host: str,
        port: int,
    ) -> None:
        self._store = store
        self._monitor = monitor
        self._polls = polls
        self._wandb_health = wandb_health
        self._clock = clock
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    def report(self) -> dict[str, Any]:
        """Return what the endpoint shows."""
        now = self._clock()
        health = self._wandb_health()
        outbox = self._store.outbox.counts()
        projects = {
            f"{s.entity}/{s.project}": {
                "last_ok": s.last_ok_at.isoformat() if s.last_ok_at else None,
                "failures": s.failures,
                "error": s.last_error,
            }
            for s in self._store.runs.project_states()
            if (s.entity, s.project) in self._monitor.watched()
        }
        oldest = self._store.outbox.due(now, limit=1)
        ok = health.consecutive_failures == 0 and not (
            oldest and (now - oldest[0].created_at).total_seconds() > 600
        )
        return {
            "status": "ok" if ok else "degraded",
            "wandb": {
                "consecutive_failures": health.consecutive_failures,
                "last_error": health.last_error,
                "calls": health.sdk_calls,
            },
            "outbox": outbox,
            "polls": self._monitor.polls,
            "projects": projects,
        }

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.report()
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    async def start(self) -> str:
        """Start serving; return the base URL."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1] if self._runner.addresses else self._port
        self.url = f"http://{self._host}:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
