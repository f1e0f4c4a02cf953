"""Route inline button presses to their actions through the short tokens in the store."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from telegram import Update

from bot.delivery import CALLBACK_PREFIX
from bot.services import BotContext
from bot.store import CallbackRecord
from handlers.access import Handler, lab_only

ButtonAction = Callable[[Update, BotContext, CallbackRecord], Coroutine[Any, Any, None]]

EXPIRED = "This button has expired. Send the command again."


def button_router(actions: Mapping[str, ButtonAction]) -> Handler:
    """Return the callback-query handler that looks a token up and runs its action."""

    @lab_only
    async def button_pressed(update: Update, context: BotContext) -> None:
        query = update.callback_query
        if query is None or not query.data or not query.data.startswith(CALLBACK_PREFIX):
            return
        services = context.bot_data.services
        record = services.store.callbacks.get(query.data.removeprefix(CALLBACK_PREFIX))
        now = services.clock()
        if record is None or (record.expires_at is not None and record.expires_at < now):
            await query.answer(EXPIRED, show_alert=True)
            return
        action = actions.get(record.action)
        if action is None:
            await query.answer(EXPIRED, show_alert=True)
            return
        await action(update, context, record)

    return button_pressed
