"""/start, /help and /status."""

from __future__ import annotations

from telegram import Update

from bot.services import CustomContext
from handlers.access import is_lab_chat
from handlers.people import mine

WELCOME = (
    "👋 I watch the lab's W&amp;B projects and tell this chat when runs finish, fail, "
    "crash or stall. I can also start sweeps and stop runs for admins."
)
WELCOME_PERSON = (
    "👋 I watch the lab's W&amp;B projects for its chats. Here I can tell you about your own "
    "runs: send /mine."
)


def _help(context: CustomContext) -> str:
    """Return /help for this chat: everything in a lab chat, only /mine's few in a person's."""
    services = context.services
    if is_lab_chat(services, context.chat_id, context.chat_type):
        return services.help_text
    return services.people_help


async def start_command(update: Update, context: CustomContext) -> None:
    """Greet and show what the bot can do; `/start mine` (a t.me link from /mine) subscribes."""
    if context.arguments[:1] == ["mine"] and context.chat_type == "private":
        await mine(context, on=True)
        return
    lab = is_lab_chat(context.services, context.chat_id, context.chat_type)
    await context.reply(f"{WELCOME if lab else WELCOME_PERSON}\n\n{_help(context)}")


async def help_command(update: Update, context: CustomContext) -> None:
    """List every command this chat may use, with its full usage."""
    await context.reply(_help(context))


async def status_command(update: Update, context: CustomContext) -> None:
    """Show W&B health, the last poll of each project, the outbox and agents."""
    await context.reply(context.services.status.report(context.chat_id))
