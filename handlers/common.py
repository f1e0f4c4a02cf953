"""What every handler shares: the one error translator and the chat's lab identity."""

from __future__ import annotations

import logging

from telegram.error import Conflict, NetworkError, TelegramError

from bot.domain.commands import RefusedError, UsageError
from bot.domain.format import esc
from bot.domain.render import render_usage_error
from bot.domain.topics import choose_topic
from bot.services import CustomContext, Services
from bot.store import CallbackRecord
from bot.sweeps import SweepError
from wandb_client.errors import (
    WandbAuthError,
    WandbError,
    WandbNotFoundError,
    WandbUnavailableError,
)

log = logging.getLogger(__name__)

SOMETHING_WRONG = "⚠️ Something went wrong on my side; it is logged. Try again in a moment."


def wandb_trouble(exc: WandbError) -> str:
    """Say in one line what went wrong with W&B, without internals or secrets."""
    if isinstance(exc, WandbNotFoundError):
        return "W&B does not know that. Check the name and try again."
    if isinstance(exc, WandbAuthError):
        return "⚠️ W&B refused the bot's API key; ask an admin to check it."
    if isinstance(exc, WandbUnavailableError):
        return "⚠️ W&B is not answering right now; try again in a minute."
    return "⚠️ W&B refused that request."


def explain(exc: BaseException) -> str | None:
    """Return the one line the chat gets for an expected failure, None for a bug."""
    if isinstance(exc, UsageError):
        return render_usage_error(exc)
    if isinstance(exc, RefusedError | SweepError):
        return esc(str(exc))
    if isinstance(exc, WandbError):
        log.warning("W&B error: %s", exc)
        return wandb_trouble(exc)
    return None


async def report_error(update: object, context: CustomContext) -> None:
    """The error handler: an expected failure is one line (a popup on a button), a bug is logged."""
    error = context.error
    if not context.has_update and isinstance(error, NetworkError | Conflict):
        # Polling trouble: Telegram unreachable, or another instance polls with this token.
        log.warning("getting updates failed: %s", error.message)
        return
    text = explain(error) if error is not None else None
    if text is None:
        log.error("unhandled error", exc_info=error)
        text = SOMETHING_WRONG
    if not context.has_update:
        return
    try:
        await context.refuse(text)
    except TelegramError:
        # A press the action had already answered cannot be answered twice: say it in the chat.
        try:
            await context.reply(text)
        except TelegramError as exc:
            log.warning("could not tell chat %s why: %s", context.chat_id, exc)


def claim_answer(context: CustomContext, record: CallbackRecord) -> str:
    """Take a prompt's one answer for this presser, or refuse: someone answered first."""
    prompt = context.services.store.callbacks.claim(record.token, context.user_name)
    if prompt is None:
        raise RefusedError("This was already answered.")
    return prompt


def lab_chat_id(services: Services, chat_id: int) -> int:
    """Return the id the lab file knows a chat by (a group keeps it after becoming a supergroup)."""
    for old, new in services.store.chats.migrations().items():
        if new == chat_id and services.lab.chat(old) is not None:
            return old
    return chat_id


def default_project(context: CustomContext) -> str | None:
    """Return the project a command may leave out: the chat's only one, or its topic's."""
    services = context.services
    lab = services.lab
    chat = lab.chat(lab_chat_id(services, context.chat_id))
    if chat is None:
        return None
    if len(chat.projects) == 1:
        return chat.projects[0]
    thread = context.thread_id
    if thread is None:
        return None
    # Typed in a project's own forum topic: that project is the one meant.
    for project in chat.projects:
        key = project if "/" in project else f"{lab.entity_of(project)}/{project}"
        choice = choose_topic(lab, chat.id, key)
        if choice is None:
            continue
        opened = services.store.topics.thread(chat.id, key) if choice.open_as else None
        if thread in (choice.thread_id, opened):
            return project
    return None
