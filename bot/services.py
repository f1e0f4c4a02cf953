"""The services handlers reach through their typed context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram.ext import CallbackContext, ExtBot

from bot.delivery import Delivery
from bot.digests import DigestService
from bot.health import HealthServer
from bot.insight import InsightService
from bot.monitor import Monitor, PollScheduler
from bot.store import Store
from bot.sweeps import SweepService
from config import LabConfig, Settings
from wandb_client.client import WandbClient


@dataclass
class Services:
    """Everything a handler may call, built once by the composition root."""

    settings: Settings
    lab: LabConfig
    store: Store
    wandb: WandbClient
    monitor: Monitor
    delivery: Delivery
    polls: PollScheduler
    insight: InsightService
    digests: DigestService
    sweeps: SweepService
    clock: Callable[[], datetime]
    started_at: datetime
    # Served only when WTB_HTTP_PORT is set.
    health: HealthServer | None = None


class BotData:
    """Typed `bot_data`: holds the services once the composition root binds them."""

    def __init__(self) -> None:
        self._services: Services | None = None

    def bind(self, services: Services) -> None:
        """Attach the services; called once, before the bot starts."""
        self._services = services

    @property
    def services(self) -> Services:
        """Return the bound services."""
        if self._services is None:
            raise RuntimeError("services are not bound yet")
        return self._services


BotContext = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
