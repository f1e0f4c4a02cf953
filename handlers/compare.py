"""/compare <run> <run> [metric]: both runs' curves on one chart, what differs, who leads."""

from __future__ import annotations

import asyncio
import dataclasses
import functools

from telegram import Update
from telegram.constants import ChatAction

from bot.compare import compare_runs
from bot.domain.commands import CompareRequest, RunRef, parse_compare
from bot.domain.control import render_run_choices
from bot.services import CustomContext
from bot.store import CallbackRecord
from handlers.common import default_project
from wandb_client.models import RunSnapshot


async def compare_command(update: Update, context: CustomContext) -> None:
    """Send one photo of both runs' curves, captioned with config differences and the delta."""
    lab = context.services.lab
    request = parse_compare(context.arguments, lab, default_project=default_project(context))
    await _compare(context, request)


async def compare_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """A run picked among those sharing a name: compare again with that one."""
    await context.answer()
    await _compare(context, parse_compare(record.target.split(), context.services.lab))


async def _compare(context: CustomContext, request: CompareRequest) -> None:
    services = context.services
    refs = (request.first, request.second)
    for ref in refs:
        services.scope.check(ref.entity, ref.project)
    found = await asyncio.gather(*(services.runs.find(ref) for ref in refs))
    for slot, (ref, runs) in enumerate(zip(refs, found, strict=True)):
        if isinstance(runs, tuple):
            target = functools.partial(_with, request, slot)
            text, buttons = render_run_choices(ref.run_id, runs, "compare", context.now, target)
            await context.reply(text, buttons=buttons)
            return
    first, second = (r for r in found if not isinstance(r, tuple))
    await context.bot.send_chat_action(
        context.chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=context.thread_id
    )
    chart = await compare_runs(
        services.wandb, services.lab, (first, second), request.metric, services.wandb.ui_url
    )
    await context.reply_photo(chart.png, chart.caption)


def _with(request: CompareRequest, slot: int, run: RunSnapshot) -> str:
    """Return the request's arguments with one run picked; the other run and metric stay."""
    picked = RunRef(run.entity, run.project, run.id)
    if slot == 0:
        changed = dataclasses.replace(request, first=picked)
    else:
        changed = dataclasses.replace(request, second=picked)
    return " ".join(changed.arguments())
