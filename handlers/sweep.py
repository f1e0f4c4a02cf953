"""/sweep start|stop|cancel|pause|resume|status, /sweeps, and the sweep card's buttons."""

from __future__ import annotations

import logging

from telegram import Update

from bot.domain.commands import (
    SweepPause,
    SweepRef,
    SweepResume,
    SweepStart,
    SweepStatus,
    SweepStop,
    parse_sweep,
)
from bot.domain.control import (
    SweepView,
    render_sweep_changed,
    render_sweep_started,
    render_sweeps_status,
)
from bot.domain.format import esc
from bot.services import BotContext
from bot.store import CallbackRecord
from bot.sweeps import SweepChange, SweepError
from handlers.access import ADMIN_REFUSALS, lab_only
from handlers.common import answers_errors, args_of, reply, wandb_trouble
from wandb_client.errors import WandbError
from wandb_client.sweep_control import SweepAction

log = logging.getLogger(__name__)


@lab_only
@answers_errors
async def sweep_command(update: Update, context: BotContext) -> None:
    """Show a sweep's status to anyone; start, stop, pause and resume for admins only."""
    services = context.bot_data.services
    args = args_of(context)
    user = update.effective_user
    wants_status = bool(args) and args[0].lower() == "status"
    if not wants_status and not services.lab.is_admin(user.id if user else None):
        await reply(update, ADMIN_REFUSALS["sweep"])
        return
    request = parse_sweep(
        args,
        services.lab,
        max_count=services.settings.max_sweep_count,
        max_agents=services.settings.max_agents,
    )
    if isinstance(request, SweepStatus):
        await _show(update, context, await services.sweeps.status(request.ref))
    elif isinstance(request, SweepStart):
        await _start(update, context, request)
    else:
        await _control(update, context, request)


async def _show(update: Update, context: BotContext, views: list[SweepView]) -> None:
    services = context.bot_data.services
    text = render_sweeps_status(
        views, now=services.clock(), ui_url=services.wandb.ui_url, known=list(services.lab.sweeps)
    )
    await reply(update, text)


async def _control(
    update: Update, context: BotContext, request: SweepStop | SweepPause | SweepResume
) -> None:
    action: SweepAction
    if isinstance(request, SweepStop):
        ref, action = request.sweep_ref, "cancel" if request.cancel else "stop"
    else:
        ref, action = request.ref, "pause" if isinstance(request, SweepPause) else "resume"
    change = await context.bot_data.services.sweeps.apply(ref, action)
    await reply(update, _changed(context, change))


def _changed(context: BotContext, change: SweepChange) -> str:
    return render_sweep_changed(
        change.path,
        change.action,
        ui_url=context.bot_data.services.wandb.ui_url,
        agents_stopped=change.agents_stopped,
    )


async def _start(update: Update, context: BotContext, request: SweepStart) -> None:
    services = context.bot_data.services
    chat_id = update.effective_chat.id if update.effective_chat else 0
    user = update.effective_user
    started = await services.sweeps.start(
        request, chat_id=chat_id, user_id=user.id if user else None
    )
    text = render_sweep_started(
        started.path,
        lab_name=started.name,
        count=started.count,
        agents=started.agents,
        ui_url=services.wandb.ui_url,
        now=services.clock(),
        reused=started.reused,
    )
    await reply(update, text)
    services.sweeps.request_refresh(started.path)  # the live card, right below the reply


@lab_only
@answers_errors
async def sweeps_command(update: Update, context: BotContext) -> None:
    """List the sweeps running now: agents, PIDs, uptime and progress."""
    await _show(update, context, await context.bot_data.services.sweeps.status(None))


# --- the card's buttons --------------------------------------------------------------------


def _ref(path: str) -> SweepRef:
    entity, project, sweep_id = path.split("/", 2)
    return SweepRef(sweep_id=sweep_id, project=project, entity=entity)


async def _admin_pressed(update: Update, context: BotContext) -> bool:
    query = update.callback_query
    user = update.effective_user
    if context.bot_data.services.lab.is_admin(user.id if user else None):
        return True
    if query is not None:
        await query.answer(ADMIN_REFUSALS["sweep"], show_alert=True)
    return False


async def _press(
    update: Update, context: BotContext, record: CallbackRecord, action: SweepAction
) -> None:
    query = update.callback_query
    if query is None or not await _admin_pressed(update, context):
        return
    await query.answer(f"{action.capitalize()}: on it…")
    try:
        change = await context.bot_data.services.sweeps.apply(_ref(record.target), action)
        text = _changed(context, change)
    except WandbError as exc:
        text = wandb_trouble(exc)
    except SweepError as exc:
        text = esc(str(exc))
    await reply(update, text)


async def sweep_stop_action(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """The card's Stop button: stop the sweep as `/sweep stop` does."""
    await _press(update, context, record, "stop")


async def sweep_pause_action(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """The card's Pause button."""
    await _press(update, context, record, "pause")


async def sweep_resume_action(update: Update, context: BotContext, record: CallbackRecord) -> None:
    """The card's (or the crash-loop alert's) Resume button."""
    await _press(update, context, record, "resume")
