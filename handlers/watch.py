"""/watch, /unwatch, /subscriptions, /silence and /unsilence."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update

from bot.domain.commands import parse_project_arg, parse_silence
from bot.domain.format import esc, fmt_duration
from bot.domain.notify import subscribed_projects
from bot.services import BotContext
from handlers.access import admins_only, lab_chat_id, lab_only
from handlers.common import answers_errors, args_of, reply


@lab_only
@admins_only("watch")
@answers_errors
async def watch_command(update: Update, context: BotContext) -> None:
    """Subscribe this chat to a project and start polling it."""
    services = context.bot_data.services
    ref = parse_project_arg(args_of(context), services.lab, "watch")
    chat_id = update.effective_chat.id if update.effective_chat else 0
    user = update.effective_user
    already = f"{ref.entity}/{ref.project}" in subscribed_projects(
        services.lab, lab_chat_id(services, chat_id), _extra(context, chat_id)
    )
    if already or not services.store.chats.subscribe(
        chat_id, ref.entity, ref.project, user.id if user else None, services.clock()
    ):
        await reply(update, f"This chat already watches {esc(ref.project)}.")
        return
    services.polls.ensure(ref.entity, ref.project)
    await reply(
        update,
        f"👀 This chat now hears about {esc(ref.project)}: runs that finish, fail, crash, "
        "are killed or stall from now on.",
    )


@lab_only
@admins_only("watch")
@answers_errors
async def unwatch_command(update: Update, context: BotContext) -> None:
    """Unsubscribe this chat from a project it watches through /watch."""
    services = context.bot_data.services
    ref = parse_project_arg(args_of(context), services.lab, "unwatch")
    chat_id = update.effective_chat.id if update.effective_chat else 0
    if services.store.chats.unsubscribe(chat_id, ref.entity, ref.project):
        if (ref.entity, ref.project) not in services.monitor.watched():
            services.polls.drop(ref.entity, ref.project)
        await reply(update, f"This chat no longer hears about {esc(ref.project)}.")
    elif f"{ref.entity}/{ref.project}" in subscribed_projects(
        services.lab, lab_chat_id(services, chat_id)
    ):
        await reply(
            update,
            f"{esc(ref.project)} is set for this chat in the lab file; an admin can change it "
            "there, or use /silence for a while.",
        )
    else:
        await reply(update, f"This chat does not watch {esc(ref.project)}.")


@lab_only
async def subscriptions_command(update: Update, context: BotContext) -> None:
    """List the projects this chat hears about, and any silences."""
    services = context.bot_data.services
    chat_id = update.effective_chat.id if update.effective_chat else 0
    home = lab_chat_id(services, chat_id)
    projects = sorted(subscribed_projects(services.lab, home, _extra(context, chat_id)))
    chat = services.lab.chat(home)
    events = ", ".join(chat.events) if chat else "all"
    if not projects:
        await reply(update, "This chat watches no project yet. An admin can /watch one.")
        return
    now = services.clock()
    silences = services.store.silences.active(now)
    lines = [f"👀 This chat hears about ({esc(events)}):"]
    for path in projects:
        entity, project = path.split("/", 1)
        until = silences.get((chat_id, entity, project))
        muted = f" · 🔕 for {fmt_duration((until - now).total_seconds())}" if until else ""
        shown = project if entity == services.lab.entity else path
        lines.append(f"• {esc(shown)}{muted}")
    await reply(update, "\n".join(lines))


@lab_only
@admins_only("silence")
@answers_errors
async def silence_command(update: Update, context: BotContext) -> None:
    """Mute a project's notifications in this chat for a while."""
    services = context.bot_data.services
    request = parse_silence(args_of(context), services.lab)
    chat_id = update.effective_chat.id if update.effective_chat else 0
    until = services.clock() + timedelta(seconds=request.seconds)
    services.store.silences.add(chat_id, request.project.entity, request.project.project, until)
    await reply(
        update,
        f"🔕 {esc(request.project.project)} is silenced here for "
        f"{fmt_duration(request.seconds)}. /unsilence {esc(request.project.project)} lifts it.",
    )


@lab_only
@admins_only("silence")
@answers_errors
async def unsilence_command(update: Update, context: BotContext) -> None:
    """Lift a silence."""
    services = context.bot_data.services
    ref = parse_project_arg(args_of(context), services.lab, "unsilence")
    chat_id = update.effective_chat.id if update.effective_chat else 0
    if services.store.silences.remove(chat_id, ref.entity, ref.project):
        await reply(update, f"🔔 {esc(ref.project)} is no longer silenced here.")
    else:
        await reply(update, f"{esc(ref.project)} was not silenced here.")


def _extra(context: BotContext, chat_id: int) -> list[str]:
    subs = context.bot_data.services.store.chats.subscriptions().get(chat_id, set())
    return [f"{entity}/{project}" for entity, project in subs]
