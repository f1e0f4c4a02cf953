"""/stop <run>: ask, then stop the run through W&B; the Stop button on run notifications."""

from __future__ import annotations

from telegram import CallbackQuery, Update

from bot.delivery import keyboard
from bot.domain.commands import USAGES, UsageError, parse_run_ref
from bot.domain.control import (
    button_specs,
    render_not_running,
    render_stop_cancelled,
    render_stop_prompt,
    render_stop_requested,
)
from bot.services import BotContext
from bot.store import CallbackRecord
from handlers.access import ADMIN_REFUSALS, admins_only, lab_only
from handlers.common import answers_errors, args_of, reply, wandb_trouble
from handlers.runs import default_project
from wandb_client.errors import WandbError

NOT_YOURS = "Only the admin who asked, or another lab admin, can answer this."
LIVE_STATES = ("running", "pending")


@lab_only
@admins_only("stop")
@answers_errors
async def stop_command(update: Update, context: BotContext) -> None:
    """Ask for confirmation before stopping a run."""
    services = context.bot_data.services
    args = args_of(context)
    if len(args) != 1:
        raise UsageError("Give one run." if args else "Say which run.", USAGES["stop"])
    chat_id = update.effective_chat.id if update.effective_chat else 0
    ref = parse_run_ref(args[0], services.lab.entity, default_project(context, chat_id))
    await _ask(update, context, ref.path)


async def _ask(update: Update, context: BotContext, path: str) -> None:
    """Reply with the Yes/No confirmation, its buttons bound to the asking user."""
    services = context.bot_data.services
    entity, project, run_id = path.split("/", 2)
    run = await services.wandb.run(entity, project, run_id)
    if run.state not in LIVE_STATES:
        await reply(update, render_not_running(path, run))
        return
    ttl = services.settings.confirm_ttl
    text, buttons = render_stop_prompt(path, run, ttl)
    user = update.effective_user
    markup = keyboard(
        services.store,
        button_specs(buttons),
        services.clock(),
        chat_id=update.effective_chat.id if update.effective_chat else None,
        user_id=user.id if user else None,
        ttl=ttl,
    )
    await reply(update, text, reply_markup=markup)


def _may_answer(context: BotContext, record: CallbackRecord, user_id: int | None) -> bool:
    lab = context.bot_data.services.lab
    return user_id is not None and (user_id == record.user_id or lab.is_admin(user_id))


async def stop_action(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """The Stop button of a run notification: ask as `/stop` does (admins only)."""
    query = update.callback_query
    user = update.effective_user
    if query is None:
        return
    if not context.bot_data.services.lab.is_admin(user.id if user else None):
        await query.answer(ADMIN_REFUSALS["stop"], show_alert=True)
        return
    await query.answer()
    try:
        await _ask(update, context, record.target)
    except WandbError as exc:
        await reply(update, wandb_trouble(exc))


async def _answerable(
    update: Update, context: BotContext, record: CallbackRecord
) -> CallbackQuery | None:
    """Return the press if its presser may answer the confirmation; refuse others politely."""
    query = update.callback_query
    user = update.effective_user
    if query is None:
        return None
    if not _may_answer(context, record, user.id if user else None):
        await query.answer(NOT_YOURS, show_alert=True)
        return None
    return query


async def stop_yes_action(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """Yes: ask W&B to stop the run and wait for the monitor to see it end."""
    query = await _answerable(update, context, record)
    if query is None:
        return
    services = context.bot_data.services
    entity, project, run_id = record.target.split("/", 2)
    try:
        await services.wandb.stop_run(entity, project, run_id)
    except WandbError as exc:
        # The button stays: the admin may press Yes again once W&B answers.
        await query.answer(wandb_trouble(exc)[:200], show_alert=True)
        return
    services.store.callbacks.drop(record.token)
    chat_id = update.effective_chat.id if update.effective_chat else record.chat_id
    # The monitor confirms in this chat once W&B shows the run ended, then drops this.
    services.store.callbacks.put("await_stop", record.target, services.clock(), chat_id=chat_id)
    services.polls.ensure(entity, project)
    await query.answer("Stop requested.")
    await query.edit_message_text(render_stop_requested(record.target, None))


async def stop_no_action(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """No: leave the run alone."""
    query = await _answerable(update, context, record)
    if query is None:
        return
    context.bot_data.services.store.callbacks.drop(record.token)
    await query.answer("Cancelled.")
    await query.edit_message_text(render_stop_cancelled(record.target, None))
