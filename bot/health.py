"""The bot's own small HTTP endpoint: health for Docker, metrics for Prometheus, W&B hooks."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from bot import metrics
from bot.delivery import DeliveryStats
from bot.domain.hooks import HookPayloadError, HookRequest, parse_hook
from bot.monitor import Monitor
from bot.polling import PollScheduler
from bot.store import Store
from wandb_client.client import ClientHealth

log = logging.getLogger(__name__)

# A project whose last good poll is older than this many poll intervals counts as stale.
STALE_POLLS = 10
# W&B's automation payloads are a few hundred bytes; anything far larger is not one.
MAX_HOOK_BYTES = 16 * 1024
# A message waiting longer than this in the outbox makes the bot unhealthy.
MAX_QUEUED_AGE = 600.0


class WandbHook:
    """Check a W&B automation webhook's bearer secret and ask for a poll of its project."""

    def __init__(self, secret: SecretStr, poll_now: Callable[[HookRequest], bool]) -> None:
        self._expected = f"Bearer {secret.get_secret_value()}".encode()
        self._poll_now = poll_now

    async def handle(self, request: web.Request) -> web.Response:
        """Answer 401 unless the secret matches, 413 for big bodies, else poll the project."""
        given = request.headers.get("Authorization", "").encode()
        # Compared in constant time: how long a wrong secret takes tells nothing.
        if not hmac.compare_digest(given, self._expected):
            metrics.WEBHOOKS.labels(outcome="unauthorized").inc()
            return web.json_response({"error": "unauthorized"}, status=401)
        if (request.content_length or 0) > MAX_HOOK_BYTES:
            metrics.WEBHOOKS.labels(outcome="too_large").inc()
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = await request.content.read(MAX_HOOK_BYTES + 1)
            if len(body) > MAX_HOOK_BYTES:
                raise web.HTTPRequestEntityTooLarge(MAX_HOOK_BYTES, len(body))
            hook = parse_hook(body)
        except web.HTTPRequestEntityTooLarge:
            metrics.WEBHOOKS.labels(outcome="too_large").inc()
            return web.json_response({"error": "body too large"}, status=413)
        except HookPayloadError as exc:
            metrics.WEBHOOKS.labels(outcome="bad").inc()
            return web.json_response({"error": str(exc)}, status=400)
        # The payload only picks what to poll: what gets reported comes from W&B's API.
        polled = self._poll_now(hook)
        metrics.WEBHOOKS.labels(outcome="accepted").inc()
        log.info("W&B hook %s for %s: %s", hook.event or "?", hook.project, polled)
        return web.json_response({"polling": polled}, status=202)


class HealthServer:
    """Serve `GET /healthz` (200 when W&B answers and the outbox drains, else 503),
    `GET /metrics` (Prometheus text) and, with a secret set, `POST /hooks/wandb`."""

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
        delivery_stats: Callable[[], DeliveryStats] = DeliveryStats,
        hook: WandbHook | None = None,
    ) -> None:
        self._store = store
        self._monitor = monitor
        self._polls = polls
        self._wandb_health = wandb_health
        self._clock = clock
        self._host = host
        self._port = port
        self._delivery_stats = delivery_stats
        self._hook = hook
        self._started_at = clock()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(metrics.StateCollector(self.snapshot))
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _oldest_queued_age(self, now: datetime) -> float:
        oldest = self._store.outbox.due(now, limit=1)
        # A message held for quiet hours counts its wait from when it was let go.
        return metrics.age_seconds(now, oldest[0].queued_at if oldest else None)

    def report(self) -> dict[str, Any]:
        """Return what `/healthz` shows."""
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
        ok = health.consecutive_failures == 0 and self._oldest_queued_age(now) <= MAX_QUEUED_AGE
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

    def snapshot(self) -> metrics.Snapshot:
        """Return the state `/metrics` reads at a scrape."""
        now = self._clock()
        health = self._wandb_health()
        stats = self._delivery_stats()
        watched = self._monitor.watched()
        last_ok = {
            (s.entity, s.project): s.last_ok_at
            for s in self._store.runs.project_states()
            if (s.entity, s.project) in watched
        }
        return metrics.Snapshot(
            wandb_requests=health.sdk_calls + health.subprocess_calls,
            wandb_errors={
                kind.removeprefix("Wandb").removesuffix("Error").lower() or "other": n
                for kind, n in health.errors.items()
            },
            poll_lag={
                f"{e}/{p}": metrics.age_seconds(now, last_ok.get((e, p)) or self._started_at)
                for e, p in watched
            },
            sent=stats.sent,
            retried=stats.retried,
            dead=stats.dead,
            rate_limited=stats.rate_limited,
            queued=self._store.outbox.counts()["pending"],
            oldest_queued_age=self._oldest_queued_age(now),
            agents_running=len(self._store.agents.all(live_only=True)),
        )

    def exposition(self) -> bytes:
        """Return every metric in Prometheus text format."""
        return generate_latest(metrics.REGISTRY) + generate_latest(self._registry)

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.report()
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def start(self) -> str:
        """Start serving; return the base URL."""
        app = web.Application(client_max_size=MAX_HOOK_BYTES)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self._hook is not None:
            app.router.add_post("/hooks/wandb", self._hook.handle)
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


def poll_on_hook(monitor: Monitor, polls: PollScheduler) -> Callable[[HookRequest], bool]:
    """Return what a hook calls: poll the named project now if the bot watches it."""

    def poll_now(hook: HookRequest) -> bool:
        entity = hook.entity or monitor.qualify(hook.project)[0]
        key = (entity, hook.project)
        if key not in monitor.watched():
            return False
        # A burst of hooks for one project makes one poll (the scheduler coalesces them).
        polls.request_refresh(*key)
        return True

    return poll_now
