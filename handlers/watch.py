"""/watch, /unwatch, /subscriptions, /silence and /unsilence."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update

from bot.domain.commands import ProjectRef, parse_project_arg, parse_silence
from bot.domain.format import esc, fmt_duration
from bot.domain.keys import ProjectKey
from bot.domain.notify import subscribed_projects
from bot.services import CustomContext
from handlers.common import lab_chat_id
from wandb_client.errors import WandbError, WandbNotFoundError


def _projects(context: CustomContext, *, extra: bool = True) -> frozenset[str]:
    """Return what this chat hears about: its lab-file projects, and what /watch added."""
    services = context.services
    subs = services.store.chats.subscriptions().get(context.chat_id, set()) if extra else set()
    added = [f"{entity}/{project}" for entity, project in subs]
    return subscribed_projects(services.lab, lab_chat_id(services, context.chat_id), added)


def _shown(context: CustomContext, ref: ProjectRef) -> str:
    """Name a project as the chat should read it: the entity only when it is not the lab's."""
    return esc(ref.project if ref.entity == context.services.lab.entity else ref.path)


async def _unknown_note(context: CustomContext, ref: ProjectRef) -> str:
    """Return a warning line when W&B does not know the project; nothing when unsure."""
    try:
        await context.services.wandb.recent_runs(ref.entity, ref.project, limit=1)
    except WandbNotFoundError:
        return (
            f"\n⚠️ W&amp;B does not know {_shown(context, ref)} (yet): check the name; "
            "nothing will arrive until runs are logged there."
        )
    except WandbError:
        return ""  # W&B trouble is not the user's mistake; the poll will tell
    return ""


async def watch_command(update: Update, context: CustomContext) -> None:
    """Subscribe this chat to a project and start polling it."""
    services = context.services
    ref = parse_project_arg(context.arguments, services.lab, "watch")
    if ref.path in _projects(context) or not services.store.chats.subscribe(
        context.chat_id, ref.entity, ref.project, context.user_id, context.now
    ):
        await context.reply(f"This chat already watches {_shown(context, ref)}.")
        return
    services.polls.ensure(ref.entity, ref.project)
    await context.reply(
        f"👀 This chat now hears about {_shown(context, ref)}: runs that finish, fail, crash, "
        "are killed or stall from now on." + await _unknown_note(context, ref)
    )


async def unwatch_command(update: Update, context: CustomContext) -> None:
    """Unsubscribe this chat from a project it watches through /watch."""
    services = context.services
    ref = parse_project_arg(context.arguments, services.lab, "unwatch")
    if services.store.chats.unsubscribe(context.chat_id, ref.entity, ref.project):
        if (ref.entity, ref.project) not in services.monitor.watched():
            services.polls.drop(ref.entity, ref.project)
        await context.reply(f"This chat no longer hears about {_shown(context, ref)}.")
    elif ref.path in _projects(context, extra=False):
        await context.reply(
            f"{_shown(context, ref)} is set for this chat in the lab file; an admin can change it "
            "there, or use /silence for a while."
        )
    else:
        await context.reply(f"This chat does not watch {_shown(context, ref)}.")


async def subscriptions_command(update: Update, context: CustomContext) -> None:
    """List the projects this chat hears about, and any silences."""
    services = context.services
    projects = sorted(_projects(context))
    if not projects:
        await context.reply("This chat watches no project yet. An admin can /watch one.")
        return
    chat = services.lab.chat(lab_chat_id(services, context.chat_id))
    events = ", ".join(chat.events) if chat else "all"
    now = context.now
    silences = services.store.silences.active(now)
    lines = [f"👀 This chat hears about ({esc(events)}):"]
    for path in projects:
        key = ProjectKey.parse(path)
        until = silences.get((context.chat_id, key.entity, key.project))
        muted = f" · 🔕 for {fmt_duration((until - now).total_seconds())}" if until else ""
        shown = key.project if key.entity == services.lab.entity else path
        lines.append(f"• {esc(shown)}{muted}")
    await context.reply("\n".join(lines))


async def silence_command(update: Update, context: CustomContext) -> None:
    """Mute a project's notifications in this chat for a while."""
    services = context.services
    request = parse_silence(context.arguments, services.lab)
    until = context.now + timedelta(seconds=request.seconds)
    project = request.project
    services.store.silences.add(context.chat_id, project.entity, project.project, until)
    await context.reply(
        f"🔕 {_shown(context, project)} is silenced here for {fmt_duration(request.seconds)}. "
        f"/unsilence {_shown(context, project)} lifts it." + await _unknown_note(context, project)
    )


async def unsilence_command(update: Update, context: CustomContext) -> None:
    """Lift a silence."""
    services = context.services
    ref = parse_project_arg(context.arguments, services.lab, "unsilence")
    if services.store.silences.remove(context.chat_id, ref.entity, ref.project):
        await context.reply(f"🔔 {_shown(context, ref)} is no longer silenced here.")
    else:
        await context.reply(f"{_shown(context, ref)} was not silenced here.")
