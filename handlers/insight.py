"""/best, /plot, /digest and the Config and Plot buttons of run messages."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction

from bot.domain.best import render_best, render_no_best
from bot.domain.commands import PlotRequest, RunRef, parse_best, parse_plot
from bot.domain.control import render_run_choices
from bot.domain.plots import read_plot_target
from bot.insight import split_path
from bot.services import CustomContext
from bot.store import CallbackRecord, OutboxItem
from handlers.common import default_project


async def best_command(update: Update, context: CustomContext) -> None:
    """Answer with the best run of a project or sweep, with Config and Plot buttons."""
    services = context.services
    request = parse_best(context.arguments, services.lab, default_project=default_project(context))
    services.scope.check(request.entity, request.project)
    found = await services.insight.best(request, context.chat_id)
    if found.answer is None:
        await context.reply(render_no_best(found.scope, found.metric, found.logged))
        return
    text, buttons = render_best(
        found.answer,
        scope=found.scope,
        ui_url=services.settings.ui_url,
        key_metrics=found.key_metrics,
        first=found.swept,
        usual=found.usual,
    )
    await context.reply(text, buttons=buttons)


async def plot_command(update: Update, context: CustomContext) -> None:
    """Send a run's metric curves (the run named by id or display name), or a sweep's chart."""
    services = context.services
    request = parse_plot(context.arguments, services.lab, default_project=default_project(context))
    target = request.run if isinstance(request, PlotRequest) else request.sweep
    services.scope.check(target.entity, target.project)
    if isinstance(request, PlotRequest):
        found = await services.runs.find(request.run)
        if isinstance(found, tuple):
            text, buttons = render_run_choices(request.run.run_id, found, "plot", context.now)
            await context.reply(text, buttons=buttons)
            return
        request = PlotRequest(RunRef(found.entity, found.project, found.id), request.metrics)
    # Fetching history and drawing take a moment: the chat shows "sending a photo…".
    await context.bot.send_chat_action(
        context.chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=context.thread_id
    )
    chart = await services.insight.plot(request, context.chat_id)
    await context.reply_photo(chart.png, chart.caption)


async def digest_command(update: Update, context: CustomContext) -> None:
    """Post this chat's digest now, without moving the window of the scheduled one."""
    await context.services.digests.send(context.chat_id, record=False, thread_id=context.thread_id)


async def config_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Send the run's full config, in as many `<pre>` messages as it needs."""
    services = context.services
    texts = await services.insight.config_messages(record.target)
    # A wide config is several messages: the outbox paces them within the chat's flood limit.
    now = context.now
    stem = f"config:{context.chat_id}:{record.token}:{now:%Y%m%dT%H%M%S.%f}"
    items = [
        OutboxItem(context.chat_id, f"{stem}:{i}", "config", text, thread_id=context.thread_id)
        for i, text in enumerate(texts)
    ]
    services.store.outbox.enqueue(items, now)
    services.delivery.wake()


async def plot_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Send the run's metric curves: the button's own metrics (an alert's), else the usual."""
    path, metrics = read_plot_target(record.target)
    request = PlotRequest(split_path(path), metrics)
    chart = await context.services.insight.plot(request, None)
    await context.reply_photo(chart.png, chart.caption)
