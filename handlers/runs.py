"""/runs: a project's recent runs, compact."""

from __future__ import annotations

from telegram import Update

from bot.domain.commands import parse_runs
from bot.domain.render import render_runs_list
from bot.services import BotContext
from handlers.access import lab_chat_id, lab_only
from handlers.common import answers_errors, args_of, reply


def default_project(context: BotContext, chat_id: int) -> str | None:
    """Return the chat's only project, so commands may leave it out."""
    services = context.bot_data.services
    chat = services.lab.chat(lab_chat_id(services, chat_id))
    if chat is not None and len(chat.projects) == 1:
        return chat.projects[0]
    return None


@lab_only
@answers_errors
async def runs_command(update: Update, context: BotContext) -> None:
    """List a project's recent runs, optionally of one state."""
    services = context.bot_data.services
    chat_id = update.effective_chat.id if update.effective_chat else 0
    request = parse_runs(
        args_of(context), services.lab, default_project=default_project(context, chat_id)
    )
    runs = await services.wandb.recent_runs(
        request.entity, request.project, request.state, request.limit
    )
    text = render_runs_list(
        request.project,
        runs,
        services.settings.ui_url,
        services.clock(),
        settings=services.lab.project(request.project),
        entity=request.entity,
        state=request.state,
    )
    await reply(update, text)
