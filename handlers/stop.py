"""/stop <run>: ask, then stop the run through W&B; the Stop button on run notifications."""

from __future__ import annotations

from telegram import Update

from bot.domain.commands import STOP_USAGE, UsageError, parse_run_ref
from bot.domain.control import (
    render_not_running,
    render_run_choices,
    render_stop_cancelled,
    render_stop_prompt,
    render_stop_requested,
)
from bot.domain.keys import RunKey
from bot.services import CustomContext
from bot.store import CallbackRecord
from handlers.common import claim_answer, default_project
from wandb_client.errors import WandbError
from wandb_client.models import RunSnapshot

NOT_YOURS = "Only the admin who asked, or another lab admin, can answer this."
LIVE_STATES = ("running", "pending")


async def stop_command(update: Update, context: CustomContext) -> None:
    """Ask for confirmation before stopping a run (named by id or by its display name)."""
    args = context.arguments
    if len(args) != 1:
        raise UsageError("Give one run." if args else "Say which run.", STOP_USAGE)
    ref = parse_run_ref(args[0], context.services.lab.entity, default_project(context))
    context.services.scope.check(ref.entity, ref.project)
    found = await context.services.runs.find(ref)
    if isinstance(found, tuple):
        text, buttons = render_run_choices(ref.run_id, found, "stop", context.now)
        await context.reply(text, buttons=buttons)
        return
    await _ask(context, found)


async def _ask(context: CustomContext, run: RunSnapshot) -> None:
    """Reply with the Yes/No confirmation, its buttons bound to the asking user."""
    if run.state not in LIVE_STATES:
        await context.reply(render_not_running(run.path, run))
        return
    ttl = context.services.settings.confirm_ttl
    text, buttons = render_stop_prompt(run.path, run, ttl)
    await context.reply(text, buttons=buttons, ttl=ttl, prompt=True)


async def stop_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The Stop button of a run notification: ask as `/stop` does."""
    await context.answer()
    key = RunKey.parse(record.target)
    await _ask(context, await context.services.wandb.run(key.entity, key.project, key.run_id))


async def stop_yes_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Yes: ask W&B to stop the run and wait for the monitor to see it end."""
    services = context.services
    key = RunKey.parse(record.target)
    prompt = claim_answer(context, record)
    try:
        await services.wandb.stop_run(key.entity, key.project, key.run_id)
    except WandbError:
        # The prompt stays open: the admin may press Yes again once W&B answers.
        services.store.callbacks.reopen(record.token, prompt)
        raise
    # The monitor confirms in this chat once W&B shows the run ended, then drops this.
    services.store.callbacks.put(
        "await_stop",
        record.target,
        context.now,
        chat_id=context.chat_id,
        thread_id=context.thread_id,
    )
    services.polls.ensure(key.entity, key.project)
    await context.answer("Stop requested.")
    await context.edit(render_stop_requested(record.target, None))


async def stop_no_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """No: leave the run alone."""
    claim_answer(context, record)
    await context.answer("Cancelled.")
    await context.edit(render_stop_cancelled(record.target, None))
