"""/mine: a lab member's own runs, in their private chat with the bot."""

from __future__ import annotations

from telegram import Update

from bot.domain.people import (
    parse_mine,
    render_mine,
    render_mine_off,
    render_not_person,
    render_private_only,
)
from bot.services import CustomContext


async def mine_command(update: Update, context: CustomContext) -> None:
    """Subscribe a person to their own runs in private, say to what, or end it."""
    on = parse_mine(context.arguments)
    if context.chat_type != "private":
        await context.reply(render_private_only(context.bot.username if context.bot else None))
        return
    await mine(context, on=on)


async def mine(context: CustomContext, *, on: bool) -> None:
    """Turn a person's /mine on (or say what it covers) or off; they must be in `people:`."""
    services, user_id = context.services, context.user_id or context.chat_id
    found = services.lab.person(user_id)
    if found is None:
        await context.reply(render_not_person(user_id))
        return
    store = services.store.people
    if not on:
        await context.reply(render_mine_off(store.unsubscribe(user_id)))
        return
    new = store.subscribe(user_id, context.now)
    username, person = found
    zone = services.lab.person_zone(person)
    await context.reply(render_mine(username, person, zone, store.since(user_id), new=new))
