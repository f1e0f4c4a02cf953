"""Small pieces every handler shares: replying, and turning errors into one line."""

from __future__ import annotations

import functools
import logging

from telegram import Message, Update

from bot.domain.commands import UsageError
from bot.domain.format import esc
from bot.domain.render import render_usage_error
from bot.services import BotContext
from bot.sweeps import SweepError
from handlers.access import Handler
from wandb_client.errors import (
    WandbAuthError,
    WandbError,
    WandbNotFoundError,
    WandbUnavailableError,
)

log = logging.getLogger(__name__)


def wandb_trouble(exc: WandbError) -> str:
    """Say in one line what went wrong with W&B, without internals or secrets."""
    if isinstance(exc, WandbNotFoundError):
        return "W&B does not know that. Check the name and try again."
    if isinstance(exc, WandbAuthError):
        return "⚠️ W&B refused the bot's API key; ask an admin to check it."
    if isinstance(exc, WandbUnavailableError):
        return "⚠️ W&B is not answering right now; try again in a minute."
    return "⚠️ W&B refused that request."


async def reply(update: Update, text: str, **kwargs: object) -> Message | None:
    """Reply in the chat the update came from."""
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_text(text, do_quote=False, **kwargs)  # type: ignore[arg-type]


def answers_errors(handler: Handler) -> Handler:
    """Turn a usage mistake, a sweep refusal or W&B trouble into one line, never a traceback."""

    @functools.wraps(handler)
    async def wrapped(update: Update, context: BotContext) -> None:
        try:
            await handler(update, context)
        except UsageError as exc:
            await reply(update, render_usage_error(exc))
        except SweepError as exc:
            await reply(update, esc(str(exc)))
        except WandbError as exc:
            log.warning("W&B error in %s: %s", handler.__name__, exc)
            await reply(update, wandb_trouble(exc))

    return wrapped


def args_of(context: BotContext) -> list[str]:
    """Return the command's arguments."""
    return list(context.args or [])
