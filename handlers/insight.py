"""/best, /plot, /digest and the Config and Plot buttons of run messages."""

from __future__ import annotations

import functools
import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatAction

from bot.delivery import keyboard
from bot.domain.best import render_best, render_no_best
from bot.domain.commands import PlotRequest, parse_best, parse_plot
from bot.domain.control import button_specs
from bot.domain.render import Buttons
from bot.insight import Chart, split_path
from bot.services import BotContext
from bot.store import CallbackRecord, OutboxItem
from handlers.access import lab_only
from handlers.buttons import ButtonAction
from handlers.common import answers_errors, args_of, reply, wandb_trouble
from handlers.runs import default_project
from wandb_client.errors import WandbError

log = logging.getLogger(__name__)


def _chat_id(update: Update) -> int:
    return update.effective_chat.id if update.effective_chat else 0


def _markup(context: BotContext, buttons: Buttons, chat_id: int) -> InlineKeyboardMarkup | None:
    services = context.bot_data.services
    return keyboard(services.store, button_specs(buttons), services.clock(), chat_id=chat_id)


async def _send_chart(update: Update, chart: Chart) -> None:
    if update.effective_message is not None:
        await update.effective_message.reply_photo(chart.png, caption=chart.caption, do_quote=False)


@lab_only
@answers_errors
async def best_command(update: Update, context: BotContext) -> None:
    """Answer with the best run of a project or sweep, with Config and Plot buttons."""
    services = context.bot_data.services
    request = parse_best(args_of(context), services.lab)
    found = await services.insight.best(request, _chat_id(update))
    if found.answer is None:
        await reply(update, render_no_best(found.scope, found.metric))
        return
    text, buttons = render_best(
        found.answer,
        scope=found.scope,
        ui_url=services.settings.ui_url,
        key_metrics=found.key_metrics,
        first=found.swept,
        usual=found.usual,
    )
    await reply(update, text, reply_markup=_markup(context, buttons, _chat_id(update)))


@lab_only
@answers_errors
async def plot_command(update: Update, context: BotContext) -> None:
    """Send a run's metric curves, or a sweep's metric against its hyperparameters."""
    services = context.bot_data.services
    chat_id = _chat_id(update)
    request = parse_plot(
        args_of(context), services.lab, default_project=default_project(context, chat_id)
    )
    # Fetching history and drawing take a moment: the chat shows "sending a photo…".
    await context.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    await _send_chart(update, await services.insight.plot(request, chat_id))


@lab_only
@answers_errors
async def digest_command(update: Update, context: BotContext) -> None:
    """Post this chat's digest now, without moving the window of the scheduled one."""
    await context.bot_data.services.digests.send(_chat_id(update), record=False)


def _answers_wandb_trouble(action: ButtonAction) -> ButtonAction:
    """Turn W&B trouble in a button action into an alert on the button, not a traceback."""

    @functools.wraps(action)
    async def wrapped(update: Update, context: BotContext, record: CallbackRecord) -> None:
        query = update.callback_query
        try:
            await action(update, context, record)
        except WandbError as exc:
            log.warning("W&B error in %s: %s", action.__name__, exc)
            if query is not None:
                await query.answer(wandb_trouble(exc), show_alert=True)
            return
        if query is not None:
            await query.answer()

    return wrapped


@_answers_wandb_trouble
async def config_pressed(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """Send the run's full config, in as many `<pre>` messages as it needs."""
    services = context.bot_data.services
    texts = await services.insight.config_messages(record.target)
    # A wide config is several messages: the outbox paces them within the chat's flood limit.
    now = services.clock()
    stem = f"config:{_chat_id(update)}:{record.token}:{now:%Y%m%dT%H%M%S.%f}"
    items = [
        OutboxItem(_chat_id(update), f"{stem}:{i}", "config", text) for i, text in enumerate(texts)
    ]
    services.store.outbox.enqueue(items, now)
    services.delivery.wake()


@_answers_wandb_trouble
async def plot_pressed(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """Send the run's metric curves."""
    request = PlotRequest(split_path(record.target), ())
    await _send_chart(update, await context.bot_data.services.insight.plot(request, None))
