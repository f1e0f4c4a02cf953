"""/sweep start|stop|cancel|pause|resume|status|agents|scale, /sweeps, the card's buttons."""

from __future__ import annotations

import yaml
from telegram import Update

from bot.domain.commands import (
    SweepAgents,
    SweepPause,
    SweepPlotRequest,
    SweepRef,
    SweepScale,
    SweepStart,
    SweepStatus,
    SweepStop,
    parse_sweep,
)
from bot.domain.control import (
    SweepView,
    render_sweep_changed,
    render_sweep_started,
    render_sweep_stop_prompt,
    render_sweeps_status,
)
from bot.domain.format import esc, fmt_duration
from bot.domain.keys import SweepKey
from bot.domain.sweep_report import render_derive_prompt
from bot.services import CustomContext
from bot.store import CallbackRecord
from bot.sweeps import StartedSweep, SweepChange, SweepError
from bot.sweeps.derived import DeriveKind
from handlers import sweep_agents
from handlers.common import claim_answer
from wandb_client.errors import WandbError
from wandb_client.sweep_control import SweepAction


async def sweep_command(update: Update, context: CustomContext) -> None:
    """Show a sweep's status and agents to anyone; the rest is for admins (the gate's job)."""
    services = context.services
    request = parse_sweep(
        context.arguments,
        services.lab,
        max_count=services.settings.max_sweep_count,
        max_agents=services.settings.max_agents,
    )
    if isinstance(request, SweepStatus):
        if request.ref is not None:
            services.scope.check(request.ref.entity, request.ref.project)
        await _show(context, await services.sweeps.status(request.ref))
    elif isinstance(request, SweepStart):
        await _start(context, request)
    elif isinstance(request, SweepAgents):
        await sweep_agents.show_agents(context, request)
    elif isinstance(request, SweepScale):
        await sweep_agents.scale(context, request)
    elif isinstance(request, SweepStop):
        await _apply(context, request.sweep_ref, "cancel" if request.cancel else "stop")
    else:
        await _apply(context, request.ref, "pause" if isinstance(request, SweepPause) else "resume")


async def sweeps_command(update: Update, context: CustomContext) -> None:
    """List the sweeps running now: agents, PIDs, uptime and progress."""
    await _show(context, await context.services.sweeps.status(None))


async def _show(context: CustomContext, views: list[SweepView]) -> None:
    services = context.services
    text = render_sweeps_status(
        views, now=context.now, ui_url=services.wandb.ui_url, known=list(services.lab.sweeps)
    )
    await context.reply(text)


async def _apply(context: CustomContext, ref: SweepRef, action: SweepAction) -> None:
    change: SweepChange = await context.services.sweeps.apply(ref, action)
    text = render_sweep_changed(
        change.path,
        change.action,
        ui_url=context.services.wandb.ui_url,
        agents_stopped=change.agents_stopped,
        agents_started=change.agents_started,
        runs_left=change.runs_left,
    )
    await context.reply(text)


async def _start(context: CustomContext, request: SweepStart) -> None:
    services = context.services
    started = await services.sweeps.start(
        request, chat_id=context.chat_id, user_id=context.user_id, thread_id=context.thread_id
    )
    await reply_started(context, started)


async def reply_started(context: CustomContext, started: StartedSweep) -> None:
    """Say that a sweep started and with which agents; its live card follows right below."""
    services = context.services
    text = render_sweep_started(
        started.path,
        lab_name=started.name,
        count=started.count,
        agents=started.agents,
        ui_url=services.wandb.ui_url,
        now=context.now,
        reused=started.reused,
    )
    await context.reply(text)
    services.sweeps.request_refresh(started.path)  # the live card, right below the reply


# --- the card's buttons --------------------------------------------------------------------


def _ref(path: str) -> SweepRef:
    key = SweepKey.parse(path)
    return SweepRef(sweep_id=key.sweep_id, project=key.project, entity=key.entity)


async def _press(context: CustomContext, record: CallbackRecord, action: SweepAction) -> None:
    await context.answer(f"{action.capitalize()}: on it…")
    await _apply(context, _ref(record.target), action)


async def sweep_stop_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The card's Stop button: ask Yes/No first, as `/stop` does for a run."""
    services = context.services
    ttl = services.settings.confirm_ttl
    text, buttons = render_sweep_stop_prompt(record.target, services.wandb.ui_url, ttl)
    await context.answer()
    await context.reply(text, buttons=buttons, ttl=ttl, prompt=True)


async def sweep_stop_yes_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Yes: stop the sweep as `/sweep stop` does; the prompt can be answered only once."""
    prompt = claim_answer(context, record)
    await context.answer("Stop: on it…")
    try:
        await _apply(context, _ref(record.target), "stop")
    except (WandbError, SweepError):
        # Nothing stopped: the prompt stays open for another try.
        context.services.store.callbacks.reopen(record.token, prompt)
        raise
    await context.edit(f"Stop requested by {esc(context.user_name)}.")


async def sweep_stop_no_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """No: the sweep keeps running."""
    claim_answer(context, record)
    await context.answer("Cancelled.")
    await context.edit("Cancelled: the sweep keeps running.")


async def sweep_pause_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The card's Pause button."""
    await _press(context, record, "pause")


async def sweep_resume_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The card's (or the crash-loop alert's) Resume button."""
    await _press(context, record, "resume")


async def sweep_plot_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The end message's Plot button: the sweep's metric against each hyperparameter."""
    await context.answer()
    chart = await context.services.insight.plot(SweepPlotRequest(_ref(record.target), None), None)
    await context.reply_photo(chart.png, chart.caption)


async def _derive_prompt(context: CustomContext, record: CallbackRecord, kind: DeriveKind) -> None:
    services = context.services
    await context.answer()
    plan = await services.sweeps.derived.from_best(record.target, kind)
    ttl = services.settings.confirm_ttl
    dumped = yaml.safe_dump(plan.config, sort_keys=False, allow_unicode=True)
    text, buttons = render_derive_prompt(record.target, kind, dumped, fmt_duration(ttl))
    await context.reply(text, buttons=buttons, ttl=ttl, prompt=True)


async def sweep_rerun_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The end message's Rerun button: show the seeds sweep it would start, ask Yes/No."""
    await _derive_prompt(context, record, "rerun")


async def sweep_narrow_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The end message's Narrow button: show the narrowed bayes sweep, ask Yes/No."""
    await _derive_prompt(context, record, "narrow")


async def _derive_yes(context: CustomContext, record: CallbackRecord, kind: DeriveKind) -> None:
    prompt = claim_answer(context, record)
    await context.answer("Starting…")
    services = context.services
    try:
        plan = await services.sweeps.derived.from_best(record.target, kind)
        started = await services.sweeps.start_derived(
            plan,
            chat_id=context.chat_id,
            user_id=context.user_id,
            thread_id=context.thread_id,
        )
    except (WandbError, SweepError):
        services.store.callbacks.reopen(record.token, prompt)
        raise
    await context.edit(f"Started by {esc(context.user_name)}.")
    await reply_started(context, started)


async def sweep_rerun_yes_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Yes: start the rerun sweep through the origin's launcher; its card follows."""
    await _derive_yes(context, record, "rerun")


async def sweep_narrow_yes_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Yes: start the narrowed sweep through the origin's launcher; its card follows."""
    await _derive_yes(context, record, "narrow")


async def sweep_derive_no_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """No: nothing starts."""
    claim_answer(context, record)
    await context.answer("Cancelled.")
    await context.edit(f"Not started ({esc(context.user_name)} said no).")
