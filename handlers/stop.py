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
    render_stop_resent,
)
from bot.domain.keys import RunKey
from bot.services import CustomContext
from bot.stop_watch import AWAIT_STOP
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
    _await_end(context, key)
    await context.answer("Stop requested.")
    await context.edit(render_stop_requested(record.target, await _shown_run(context, key)))


def _await_end(context: CustomContext, key: RunKey) -> None:
    """Wait for the monitor to see the run end; it confirms in this chat, then drops this.

    An earlier request of this chat for the same run is replaced, so one end is told once
    and a slow stop is told about once per request.
    """
    callbacks = context.services.store.callbacks
    for earlier in callbacks.pending(AWAIT_STOP).get(str(key), ()):
        if earlier.chat_id == context.chat_id:
            callbacks.drop(earlier.token)
    callbacks.put(
        AWAIT_STOP, str(key), context.now, chat_id=context.chat_id, thread_id=context.thread_id
    )
    context.services.polls.ensure(key.entity, key.project)


async def stop_again_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Try again, on a stop that has not taken effect: send it to W&B once more."""
    key = RunKey.parse(record.target)
    await context.services.wandb.stop_run(key.entity, key.project, key.run_id)
    _await_end(context, key)
    await context.answer("Stop sent again.")
    await context.edit(render_stop_resent(record.target, await _shown_run(context, key)))


async def stop_no_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """No: leave the run alone."""
    claim_answer(context, record)
    await context.answer("Cancelled.")
    key = RunKey.parse(record.target)
    await context.edit(render_stop_cancelled(record.target, await _shown_run(context, key)))


async def _shown_run(context: CustomContext, key: RunKey) -> RunSnapshot | None:
    """Return the run, so the answered prompt names it as the chat does; None if W&B fails."""
    try:
        return await context.services.wandb.run(key.entity, key.project, key.run_id)
    except WandbError:
        return None
