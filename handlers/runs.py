"""/runs: a project's recent runs, compact."""

from __future__ import annotations

from telegram import Update

from bot.domain.commands import parse_runs
from bot.domain.origin import BRANCH_SCAN, on_branch
from bot.domain.render import render_runs_list
from bot.services import CustomContext
from handlers.common import default_project


async def runs_command(update: Update, context: CustomContext) -> None:
    """List a project's recent runs, optionally of one state."""
    services = context.services
    request = parse_runs(context.arguments, services.lab, default_project=default_project(context))
    services.scope.check(request.entity, request.project)
    # A branch is not a W&B filter: look through the newest runs for those of the branch.
    fetch = BRANCH_SCAN if request.branch else request.limit
    runs = await services.wandb.recent_runs(request.entity, request.project, request.state, fetch)
    if request.branch:
        runs = [run for run in runs if on_branch(run, request.branch)][: request.limit]
    text = render_runs_list(
        request.project,
        runs,
        services.settings.ui_url,
        context.now,
        settings=services.lab.project(request.project),
        entity=request.entity,
        state=request.state,
        branch=request.branch,
    )
    await context.reply(text)
