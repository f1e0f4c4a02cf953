"""/start, /help and /status."""

from __future__ import annotations

from telegram import Update

from bot.services import CustomContext
from handlers.people import mine

WELCOME = (
    "👋 I watch the lab's W&amp;B projects and tell this chat when runs finish, fail, "
    "crash or stall. I can also start sweeps and stop runs for admins."
)


async def start_command(update: Update, context: CustomContext) -> None:
    """Greet and show what the bot can do; `/start mine` (a t.me link from /mine) subscribes."""
    if context.arguments[:1] == ["mine"] and context.chat_type == "private":
        await mine(context, on=True)
        return
    await context.reply(f"{WELCOME}\n\n{context.services.help_text}")


async def help_command(update: Update, context: CustomContext) -> None:
    """List every command with its full usage."""
    await context.reply(context.services.help_text)


async def status_command(update: Update, context: CustomContext) -> None:
    """Show W&B health, the last poll of each project, the outbox and agents."""
    await context.reply(context.services.status.report(context.chat_id))
