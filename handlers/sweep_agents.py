"""/sweep agents and /sweep scale, and the Stop agent buttons with their Yes/No."""

from __future__ import annotations

from bot.domain.agent_control import (
    render_agent_list,
    render_agent_stop_prompt,
    render_agent_stopped,
    render_scaled,
)
from bot.domain.commands import SweepAgents, SweepScale
from bot.services import CustomContext
from bot.store import CallbackRecord
from bot.sweeps import SweepError
from handlers.common import claim_answer
from wandb_client.errors import WandbError


async def show_agents(context: CustomContext, request: SweepAgents) -> None:
    """List a sweep's agents to anyone; an admin also gets one Stop button per agent."""
    services = context.services
    sweeps = services.sweeps
    path = sweeps.resolve(request.ref)
    services.scope.check(*path.split("/")[:2])
    lines = await sweeps.control.lines(path)
    text, buttons = render_agent_list(
        path, lines, ui_url=services.wandb.ui_url, admin=context.is_admin
    )
    await context.reply(text, buttons=buttons)


async def scale(context: CustomContext, request: SweepScale) -> None:
    """Start or stop agents of a sweep until it has K (the gate lets only admins here)."""
    sweeps = context.services.sweeps
    path = sweeps.resolve(request.ref)
    done = await sweeps.control.scale(path, request.agents, request.gpus)
    text = render_scaled(
        done.path,
        before=done.before,
        after=done.after,
        started=done.started,
        stopped=done.stopped,
        ui_url=context.services.wandb.ui_url,
    )
    await context.reply(text)
    sweeps.request_refresh(path)


def _agent_id(record: CallbackRecord) -> int:
    if not record.target.isdigit():
        raise SweepError("I know no such agent.")
    return int(record.target)


async def agent_stop_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """A Stop agent button: ask Yes/No first, as every other stop does."""
    services = context.services
    path, line = await services.sweeps.control.line(_agent_id(record))
    ttl = services.settings.confirm_ttl
    text, buttons = render_agent_stop_prompt(path, line, ui_url=services.wandb.ui_url, ttl_s=ttl)
    await context.answer()
    await context.reply(text, buttons=buttons, ttl=ttl, prompt=True)


async def agent_stop_yes_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """Yes: stop that one agent; the sweep stays RUNNING and its other agents go on."""
    prompt = claim_answer(context, record)
    await context.answer("Stopping the agent…")
    services = context.services
    try:
        stopped = await services.sweeps.control.stop(_agent_id(record))
    except (WandbError, SweepError):
        # Nothing stopped: the prompt stays open for another try.
        services.store.callbacks.reopen(record.token, prompt)
        raise
    text = render_agent_stopped(
        stopped.path,
        stopped.index,
        left=stopped.left,
        by=context.user_name,
        ui_url=services.wandb.ui_url,
    )
    await context.edit(text)


async def agent_stop_no_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """No: the agent keeps running."""
    claim_answer(context, record)
    await context.answer("Cancelled.")
    await context.edit("Cancelled: the agent keeps running.")
