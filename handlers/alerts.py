"""/alerts and the Mute button of alert messages."""

from __future__ import annotations

from telegram import Update

from bot.domain.alert_messages import MUTE_HOURS, parse_alerts
from bot.services import CustomContext
from bot.store import CallbackRecord


def _chat_projects(context: CustomContext) -> list[tuple[str, str]]:
    services = context.services
    chat = services.lab.chat(context.chat_id)
    mine = [services.monitor.qualify(p) for p in (chat.projects if chat else ())]
    mine += sorted(services.store.chats.subscriptions().get(context.chat_id, set()))
    return list(dict.fromkeys(mine))


async def alerts_command(update: Update, context: CustomContext) -> None:
    """List the alert rules of this chat's projects and what fires; `test` tries them now."""
    alerts = context.services.alerts
    target = parse_alerts(context.arguments, context.services.lab)
    if target is None:
        await context.reply(alerts.overview(context.chat_id, _chat_projects(context)))
        return
    context.services.scope.check(target.entity, target.project)
    await context.reply(await alerts.dry_run(target.entity, target.project))


async def alert_mute_pressed(context: CustomContext, record: CallbackRecord) -> None:
    """The Mute button of an alert: silence that rule on that project for a while."""
    muted = context.services.alerts.mute(record.target, MUTE_HOURS)
    await context.answer(f"Muted {muted} for {MUTE_HOURS} h.")
