"""The access gate: only the lab's chats get in, only admins start or stop things."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update

from bot.services import BotContext, Services

log = logging.getLogger(__name__)

Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]

ADMIN_REFUSALS = {
    "sweep": "Only lab admins can start or stop sweeps.",
    "stop": "Only lab admins can stop runs.",
    "watch": "Only lab admins can change what this chat watches.",
    "silence": "Only lab admins can silence projects.",
}


def is_lab_chat(services: Services, chat_id: int, chat_type: str) -> bool:
    """Tell whether a chat belongs to the lab: listed in the lab file, or an admin's DM."""
    if services.lab.chat(chat_id) is not None:
        return True
    if chat_id in services.store.chats.migrations().values():
        return True
    return chat_type == "private" and services.lab.is_admin(chat_id)


def lab_chat_id(services: Services, chat_id: int) -> int:
    """Return the id the lab file knows a chat by (a group keeps it after becoming a supergroup)."""
    for old, new in services.store.chats.migrations().items():
        if new == chat_id and services.lab.chat(old) is not None:
            return old
    return chat_id


def outsider_reply(chat_id: int) -> str:
    """Return the one line an unknown chat gets."""
    return (
        f"This chat is not part of the lab. Its id is <code>{chat_id}</code>: "
        "an admin can add it to the lab file."
    )


def lab_only(handler: Handler) -> Handler:
    """Let a command through only from the lab's chats; answer others with their chat id."""

    @functools.wraps(handler)
    async def gated(update: Update, context: BotContext) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        services = context.bot_data.services
        if not is_lab_chat(services, chat.id, chat.type):
            log.info("refused chat %s (%s)", chat.id, chat.type)
            if update.callback_query is not None:
                await update.callback_query.answer("This chat is not part of the lab.")
            elif update.effective_message is not None:
                await update.effective_message.reply_text(outsider_reply(chat.id))
            return
        if chat.id in services.store.chats.paused():
            # Someone talks to the bot here again: it is no longer blocked or kicked.
            services.delivery.resume(chat.id)
        await handler(update, context)

    return gated


def admins_only(what: str) -> Callable[[Handler], Handler]:
    """Refuse a command politely unless a lab admin sent it."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def gated(update: Update, context: BotContext) -> None:
            user = update.effective_user
            services = context.bot_data.services
            if not services.lab.is_admin(user.id if user else None):
                text = ADMIN_REFUSALS.get(what, "Only lab admins can do that.")
                if update.callback_query is not None:
                    await update.callback_query.answer(text, show_alert=True)
                elif update.effective_message is not None:
                    await update.effective_message.reply_text(text)
                return
            await handler(update, context)

        return gated

    return wrap
