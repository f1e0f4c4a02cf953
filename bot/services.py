"""The services handlers reach through their typed context, and that context itself."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from telegram import CallbackQuery, Message, Update
from telegram.error import RetryAfter
from telegram.ext import Application, CallbackContext, ExtBot

from bot.alerts import AlertService
from bot.callbacks import keyboard
from bot.delivery import Delivery
from bot.digests import DigestService
from bot.domain.commands import RefusedError, RunRef
from bot.domain.keys import SweepKey
from bot.domain.render import Buttons, ProjectHealth, render_status
from bot.health import HealthServer
from bot.insight import InsightService
from bot.monitor import Monitor
from bot.polling import PollScheduler
from bot.store import Store
from bot.sweeps import SweepService
from bot.topics import topic_problem
from config import LabConfig, Settings
from wandb_client.client import WandbClient
from wandb_client.error_mapping import in_words
from wandb_client.errors import WandbNotFoundError
from wandb_client.models import RunSnapshot


class StatusService:
    """Assemble /status: W&B health, each watched project's last poll, the outbox, agents."""

    def __init__(
        self,
        store: Store,
        monitor: Monitor,
        polls: PollScheduler,
        wandb: WandbClient,
        lab: LabConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._monitor = monitor
        self._polls = polls
        self._wandb = wandb
        self._lab = lab
        self._clock = clock

    def report(self, chat_id: int) -> str:
        """Return the /status text, its times in the chat's time zone."""
        states = {(s.entity, s.project): s for s in self._store.runs.project_states()}
        projects = []
        for entity, project in sorted(self._monitor.watched()):
            state = states.get((entity, project))
            outcome = self._polls.last_outcome(entity, project)
            ok = outcome is not None and outcome.ok
            projects.append(
                ProjectHealth(
                    project=f"{entity}/{project}" if entity != self._lab.entity else project,
                    last_poll=state.last_poll_at if state else None,
                    error=in_words(state.last_error) if state and state.last_error else None,
                    running=self._running(entity, project) if ok else None,
                    missing=outcome is not None and outcome.missing,
                )
            )
        health = self._wandb.health
        text = render_status(
            projects,
            now=self._clock(),
            outbox_depth=self._store.outbox.counts()["pending"],
            wandb_ok=health.consecutive_failures == 0,
            wandb_error=in_words(health.last_error) if health.last_error else None,
            wandb_checked=health.last_success_at is not None,
            agents=len(self._store.agents.all(live_only=True)),
            tz=ZoneInfo(self._lab.chat_zone(chat_id)),
        )
        held = len(self._store.outbox.held(self._clock()))
        if held:
            # Counted in the outbox's waiting messages, but waiting on purpose.
            text += f"\n🌙 {held} held for someone's quiet hours"
        problem = topic_problem(self._store, self._lab, chat_id)
        return text if problem is None else f"{text}\n⚠️ topics: {problem}"

    def _running(self, entity: str, project: str) -> int:
        memory = self._store.runs.memory(entity, project)
        return sum(1 for mem in memory.values() if mem.get("state") == "running")


class RunFinder:
    """Find the run a user means: by its id, or else by the name the chat shows."""

    def __init__(self, wandb: WandbClient) -> None:
        self._wandb = wandb

    async def find(self, ref: RunRef) -> RunSnapshot | tuple[RunSnapshot, ...]:
        """Return the one run meant, or the few that share its display name (newest first)."""
        try:
            return await self._wandb.run(ref.entity, ref.project, ref.run_id)
        except WandbNotFoundError:
            named = await self._wandb.runs_named(ref.entity, ref.project, ref.run_id)
        if not named:
            raise RefusedError(f'No run "{ref.run_id}" in {ref.project}, by id or by name.')
        return named[0] if len(named) == 1 else tuple(named)


class LabScope:
    """Which projects read commands may show: the lab's own, unless the lab file opens all.

    The lab's own are those in the lab file (its projects, chats and sweeps), those a lab
    chat watches, and those of sweeps started from the chat.
    """

    def __init__(self, lab: LabConfig, monitor: Monitor, store: Store) -> None:
        self._lab = lab
        self._monitor = monitor
        self._store = store

    def projects(self) -> set[tuple[str, str]]:
        """Return the lab's own projects as (entity, project)."""
        lab = self._lab
        own = {(lab.entity_of(p), p) for p in lab.projects}
        for sweep in lab.sweeps.values():
            own.add((sweep.entity or lab.entity_of(sweep.project), sweep.project))
        for record in self._store.sweeps.all():
            key = SweepKey.parse(record.path)
            own.add((key.entity, key.project))
        return own | self._monitor.watched()

    def check(self, entity: str | None, project: str | None) -> None:
        """Refuse a project outside the lab (one not fully named is left to the caller)."""
        if self._lab.open_projects or entity is None or project is None:
            return
        own = self.projects()
        if (entity, project) not in own:
            shown = project if entity == self._lab.entity else f"{entity}/{project}"
            # A typo is the likeliest reason: name the lab's project it was probably meant for.
            close = difflib.get_close_matches(project, sorted(p for e, p in own if e == entity), 1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise RefusedError(
                f"{shown} is not one of the lab's projects; an admin can /watch it here first."
                + hint
            )


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
    status: StatusService
    scope: LabScope
    runs: RunFinder
    alerts: AlertService
    clock: Callable[[], datetime]
    started_at: datetime
    # Served only when WTB_HTTP_PORT is set.
    health: HealthServer | None = None
    # /help, rendered once from the command table by the composition root.
    help_text: str = ""
    # /help in a person's private chat that is no lab chat: only what works there.
    people_help: str = ""


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


# A command's reply waits out Telegram's flood limits up to this long in all, then gives up.
REPLY_PATIENCE_S = 60.0
T = TypeVar("T")


def _retry_after_s(exc: RetryAfter) -> float:
    wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


async def patiently(send: Callable[[], Awaitable[T]], patience: float = REPLY_PATIENCE_S) -> T:
    """Call `send`, waiting out each flood-control answer while the total wait fits `patience`."""
    waited = 0.0
    while True:
        try:
            return await send()
        except RetryAfter as exc:
            delay = _retry_after_s(exc)
            if waited + delay > patience:
                raise
            waited += delay
            await asyncio.sleep(delay)


class CustomContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """What every handler gets: the services, who and where, and replies that fit the update."""

    def __init__(
        self,
        application: Application[Any, CustomContext, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id, user_id)
        # Set by `from_update`; jobs and polling errors have no update.
        self._update: Update | None = None
        self._answered = False

    @classmethod
    def from_update(
        cls, update: object, application: Application[Any, CustomContext, Any, Any, Any, Any]
    ) -> CustomContext:
        """Build the context of one update, keeping the update for `reply()` and friends."""
        context = super().from_update(update, application)
        context._update = update if isinstance(update, Update) else None
        return context

    @property
    def services(self) -> Services:
        """Return the bot's services."""
        return self.bot_data.services

    @property
    def has_update(self) -> bool:
        """Tell whether an update stands behind this context (not a job, not a network error)."""
        return self._update is not None

    @property
    def chat_id(self) -> int:
        """Return the id of the chat the update came from (0 when none)."""
        chat = self._update.effective_chat if self._update else None
        return chat.id if chat else 0

    @property
    def thread_id(self) -> int | None:
        """Return the forum topic the command was typed in (or the pressed button is in)."""
        message = self._update.effective_message if self._update else None
        return message.message_thread_id if message and message.is_topic_message else None

    @property
    def chat_type(self) -> str:
        """Return the kind of chat the update came from (`private`, `group`, …)."""
        chat = self._update.effective_chat if self._update else None
        return chat.type if chat else ""

    @property
    def user_id(self) -> int | None:
        """Return the id of the user who sent the command or pressed the button."""
        user = self._update.effective_user if self._update else None
        return user.id if user else None

    @property
    def user_name(self) -> str:
        """Return the sender's first name (or @username), for telling others who did what."""
        user = self._update.effective_user if self._update else None
        if user is None:
            return "someone"
        return user.first_name or (f"@{user.username}" if user.username else str(user.id))

    @property
    def query(self) -> CallbackQuery | None:
        """Return the button press, None for a command."""
        return self._update.callback_query if self._update else None

    @property
    def now(self) -> datetime:
        """Return the services' clock reading."""
        return self.services.clock()

    @property
    def is_admin(self) -> bool:
        """Tell whether the sender is a lab admin."""
        return self.services.lab.is_admin(self.user_id)

    @property
    def arguments(self) -> list[str]:
        """Return the command's arguments."""
        return list(self.args or [])

    async def reply(
        self,
        text: str,
        *,
        buttons: Buttons = (),
        ttl: float | None = None,
        prompt: bool = False,
    ) -> Message | None:
        """Send a message to the chat the update came from (below a pressed button's message).

        Buttons become stored tokens; `ttl` makes them expire. A `prompt` is a question
        answered once (its buttons share one token) and remembers who asked.
        """
        message = self._update.effective_message if self._update else None
        if message is None:
            return None
        services = self.services
        markup = keyboard(
            services.store,
            buttons,
            services.clock(),
            chat_id=self.chat_id,
            user_id=self.user_id if prompt else None,
            ttl=ttl,
            prompt=prompt,
        )
        return await patiently(
            lambda: message.reply_text(text, do_quote=False, reply_markup=markup)
        )

    async def reply_photo(self, png: bytes, caption: str) -> Message | None:
        """Send a picture to the chat the update came from."""
        message = self._update.effective_message if self._update else None
        if message is None:
            return None
        return await patiently(lambda: message.reply_photo(png, caption=caption, do_quote=False))

    async def answer(self, text: str | None = None, *, alert: bool = False) -> None:
        """Answer a button press once (a toast, or a popup with `alert`); a command gets `text`."""
        query = self.query
        if query is None:
            if text:
                await self.reply(text)
            return
        if self._answered:
            return
        self._answered = True
        await patiently(lambda: query.answer(text[:200] if text else None, show_alert=alert))

    async def refuse(self, text: str) -> None:
        """Say no in one line: a popup on a button, a reply to a command."""
        await self.answer(text, alert=True)

    async def edit(self, text: str) -> None:
        """Replace the text of the message whose button was pressed (its buttons go)."""
        query = self.query
        if query is not None:
            await patiently(lambda: query.edit_message_text(text))


CommandCallback = Callable[[Update, CustomContext], Coroutine[Any, Any, None]]
