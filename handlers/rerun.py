"""/rerun <run> [seeds=N] [count=N] [sweep=<name>]: rerun a run's config over seeds, asked first."""

from __future__ import annotations

import dataclasses
import functools

import yaml
from telegram import Update

from bot.domain.commands import RerunRequest, RunRef, parse_rerun
from bot.domain.control import render_run_choices
from bot.domain.format import esc, fmt_duration
from bot.domain.render import run_link
from bot.domain.sweep_report import render_rerun_prompt
from bot.services import CustomContext
from bot.store import CallbackRecord
from bot.sweeps import SweepError
from handlers.common import claim_answer, default_project
from handlers.sweep import reply_started
from wandb_client.errors import WandbError
from wandb_client.models import RunSnapshot


async def rerun_command(update: Update, context: CustomContext) -> None:
    """Show the grid sweep that would rerun a run over seeds, and ask Yes/No."""
    lab = context.services.lab
    await _ask(
        context, parse_rerun(context.arguments, lab, default_project=default_project(context))
    )


async def rerun_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """A run picked among those sharing a name: ask about that one."""
    await context.answer()
    await _ask(context, parse_rerun(record.target.split(), context.services.lab))


def _with(request: RerunRequest, run: RunSnapshot) -> str:
    """Return the request's arguments naming exactly this run (a button keeps them)."""
    exact = dataclasses.replace(request, run=RunRef(run.entity, run.project, run.id))
    return " ".join(exact.arguments())


async def _ask(context: CustomContext, request: RerunRequest) -> None:
    services = context.services
    services.scope.check(request.run.entity, request.run.project)
    found = await services.runs.find(request.run)
    if isinstance(found, tuple):
        target = functools.partial(_with, request)
        text, buttons = render_run_choices(request.run.run_id, found, "rerun", context.now, target)
        await context.reply(text, buttons=buttons)
        return
    plan = await services.sweeps.derived.rerun(found, request)
    ttl = services.settings.confirm_ttl
    text, buttons = render_rerun_prompt(
        found,
        entry=plan.entry,
        seeds=request.seeds,
        count=plan.count,
        agents=plan.agents,
        config_yaml=yaml.safe_dump(plan.config, sort_keys=False, allow_unicode=True),
        ttl_text=fmt_duration(ttl),
        target=_with(request, found),
    )
    await context.reply(text, buttons=buttons, ttl=ttl, prompt=True)


async def rerun_yes_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Yes: create the grid sweep and start its agents; the new sweep's card follows."""
    prompt = claim_answer(context, record)
    await context.answer("Starting…")
    services = context.services
    request = parse_rerun(record.target.split(), services.lab)
    key = request.run
    try:
        run = await services.wandb.run(key.entity, key.project, key.run_id)
        plan = await services.sweeps.derived.rerun(run, request)
        started = await services.sweeps.start_derived(
            plan, chat_id=context.chat_id, user_id=context.user_id, thread_id=context.thread_id
        )
    except (WandbError, SweepError):
        # Nothing started: the prompt stays open for another try.
        services.store.callbacks.reopen(record.token, prompt)
        raise
    await context.edit(
        f"Rerun of {run_link(run)} over {request.seeds} seeds started by {esc(context.user_name)}."
    )
    await reply_started(context, started)
