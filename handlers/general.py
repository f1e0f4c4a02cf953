"""/start, /help and /status."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram import Update

from bot.domain.commands import HELP
from bot.domain.render import ProjectHealth, render_status
from bot.services import BotContext, Services
from handlers.access import lab_only
from handlers.common import reply
from wandb_client.error_mapping import in_words

WELCOME = (
    "👋 I watch the lab's W&amp;B projects and tell this chat when runs finish, fail, "
    "crash or stall. I can also start sweeps and stop runs for admins."
)


@lab_only
async def start_command(update: Update, context: BotContext) -> None:
    """Greet and show what the bot can do."""
    await reply(update, f"{WELCOME}\n\n{HELP}")


@lab_only
async def help_command(update: Update, context: BotContext) -> None:
    """List every command with its usage."""
    await reply(update, HELP)


@lab_only
async def status_command(update: Update, context: BotContext) -> None:
    """Show W&B health, the last poll of each project, the outbox and agents."""
    services = context.bot_data.services
    states = {(s.entity, s.project): s for s in services.store.runs.project_states()}
    outcomes = services.polls.last_outcome
    projects = []
    for entity, project in sorted(services.monitor.watched()):
        state = states.get((entity, project))
        outcome = outcomes.get((entity, project))
        projects.append(
            ProjectHealth(
                project=f"{entity}/{project}" if entity != services.lab.entity else project,
                last_poll=state.last_poll_at if state else None,
                error=in_words(state.last_error) if state and state.last_error else None,
                running=None
                if outcome is None or not outcome.ok
                else _running(services, entity, project),
                missing=outcome is not None and outcome.missing,
            )
        )
    health = services.wandb.health
    text = render_status(
        projects,
        now=services.clock(),
        outbox_depth=services.store.outbox.counts()["pending"],
        wandb_ok=health.consecutive_failures == 0,
        wandb_error=in_words(health.last_error) if health.last_error else None,
        wandb_checked=health.last_success_at is not None,
        agents=len(services.store.agents.all(live_only=True)),
        tz=ZoneInfo(
            services.lab.chat_zone(update.effective_chat.id if update.effective_chat else 0)
        ),
    )
    await reply(update, text)


def _running(services: Services, entity: str, project: str) -> int:
    memory = services.store.runs.memory(entity, project)
    return sum(1 for mem in memory.values() if mem.get("state") == "running")
