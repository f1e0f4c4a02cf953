"""The access gate: one check before any handler, driven by the command and button tables."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.callbacks import ButtonSpec, find_spec, pressed
from bot.domain.commands import CommandSpec, Role
from bot.domain.people import render_not_person
from bot.services import CustomContext, Services

log = logging.getLogger(__name__)

NOT_LAB = "This chat is not part of the lab."
# An unknown chat hears why at most this often, however many commands it sends.
OUTSIDER_QUIET = timedelta(hours=1)


def is_lab_chat(services: Services, chat_id: int, chat_type: str) -> bool:
    """Tell whether a chat belongs to the lab: listed in the lab file, or an admin's DM."""
    if services.lab.chat(chat_id) is not None:
        return True
    if chat_id in services.store.chats.migrations().values():
        return True
    return chat_type == "private" and services.lab.is_admin(chat_id)


def outsider_reply(chat_id: int) -> str:
    """Return the one line an unknown chat gets."""
    return (
        f"This chat is not part of the lab. Its id is <code>{chat_id}</code>: "
        "an admin can add it to the lab file."
    )


def command_of(update: Update, bot_username: str | None) -> tuple[str, list[str]] | None:
    """Return the command a message carries (name, arguments), None when it carries none."""
    message = update.effective_message
    text = message.text if message is not None and update.callback_query is None else None
    if not text or not text.startswith("/"):
        return None
    head, *args = text.split()
    name, _, addressee = head[1:].partition("@")
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None  # another bot's command in a group
    return name.lower(), args


def refusal(spec: CommandSpec[Any]) -> str:
    """Return what a member hears when asking for an admin's command."""
    return f"Only lab admins can {spec.summary}."


class Gate:
    """Let only the lab's chats in, and only admins to admin commands and buttons.

    Registered as a `TypeHandler` in the earliest group: a refusal raises
    `ApplicationHandlerStop`, so no handler runs.
    """

    def __init__(
        self, commands: Sequence[CommandSpec[Any]], buttons: Sequence[ButtonSpec[Any]]
    ) -> None:
        self._commands = {spec.name: spec for spec in commands}
        self._buttons = buttons
        self._told: dict[int, datetime] = {}

    async def __call__(self, update: Update, context: CustomContext) -> None:
        """Check one update; raise `ApplicationHandlerStop` to refuse it."""
        command = command_of(update, context.bot.username if context.bot else None)
        spec = self._commands.get(command[0]) if command else None
        if spec is None and update.callback_query is None:
            return  # nothing of ours would answer it
        services = context.services
        if not is_lab_chat(services, context.chat_id, context.chat_type) and not self._own_chat(
            context, spec
        ):
            await self._turn_away(context, spec)
            raise ApplicationHandlerStop
        if context.chat_id in services.store.chats.paused():
            # Someone talks to the bot here again: it is no longer blocked or kicked.
            services.delivery.resume(context.chat_id)
        text = self._refusal(context, spec, command[1] if command else [])
        if text is not None:
            await context.refuse(text)
            raise ApplicationHandlerStop

    def _refusal(
        self, context: CustomContext, spec: CommandSpec[Any] | None, args: list[str]
    ) -> str | None:
        if context.is_admin:
            return None
        if spec is not None:
            return refusal(spec) if spec.needs_admin(args) else None
        query = context.query
        record = pressed(context.services.store, query.data if query else None, context.now)
        if isinstance(record, str):
            return None  # the router says why the button does nothing
        button = find_spec(self._buttons, record.action)
        if button is None or button.role is Role.MEMBER:
            return None
        return button.refusal

    def _own_chat(self, context: CustomContext, spec: CommandSpec[Any] | None) -> bool:
        """Tell whether a person of `people:` uses what they may in their private chat.

        That is /start, /help and /mine, and the buttons of messages sent to that chat;
        nothing else, so a lab member's DM cannot read or change more than their own runs.
        """
        if context.chat_type != "private" or context.services.lab.person(context.chat_id) is None:
            return False
        if spec is not None:
            return spec.people
        query = context.query
        record = pressed(context.services.store, query.data if query else None, context.now)
        return isinstance(record, str) or record.chat_id == context.chat_id

    async def _turn_away(self, context: CustomContext, spec: CommandSpec[Any] | None) -> None:
        log.info("refused chat %s (%s)", context.chat_id, context.chat_type)
        if context.query is not None:
            await context.refuse(NOT_LAB)
            return
        now = context.now
        last = self._told.get(context.chat_id)
        if last is not None and now - last < OUTSIDER_QUIET:
            return
        # Forget chats told long ago, so strangers cannot grow this without bound.
        self._told = {c: t for c, t in self._told.items() if now - t < OUTSIDER_QUIET}
        self._told[context.chat_id] = now
        if spec is not None and spec.name == "mine" and context.chat_type == "private":
            # Someone who asks for their own runs hears what the admin needs to add them.
            await context.reply(render_not_person(context.chat_id))
            return
        if context.chat_type == "private" and context.services.lab.person(context.chat_id):
            # A lab member in their own chat: adding it to the lab file is not the answer.
            await context.reply(self._person_reply())
            return
        await context.reply(outsider_reply(context.chat_id))

    def _person_reply(self) -> str:
        """Return what a person hears for a command their private chat does not take."""
        own = ", ".join(f"/{name}" for name, spec in self._commands.items() if spec.people)
        return f"Here I answer only {own}; the other commands work in the lab's chats."
