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
    page = await services.wandb.run_page(request.entity, request.project, request.state, fetch)
    runs, total = page.runs, page.total
    if request.branch:
        # W&B counted the project's runs, not the branch's: the header shows what was found.
        runs, total = [run for run in runs if on_branch(run, request.branch)][: request.limit], 0
    text = render_runs_list(
        request.project,
        runs,
        services.settings.ui_url,
        context.now,
        settings=services.lab.project(request.project),
        entity=request.entity,
        state=request.state,
        branch=request.branch,
        total=total,
    )
    await context.reply(text)
