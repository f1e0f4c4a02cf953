"""The composition root: builds every service, registers handlers and jobs, runs the bot."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from telegram import Bot, BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    TypeHandler,
)

from bot import metrics
from bot.alerts import AlertService
from bot.callbacks import button_router
from bot.console import FailureExplainer
from bot.delivery import Delivery
from bot.digests import DigestService
from bot.domain.events import StallPolicy
from bot.domain.format import STATE_MARKERS
from bot.domain.notify import subscribed_projects
from bot.domain.people import hold_until
from bot.health import HealthServer, WandbHook, poll_on_hook
from bot.insight import InsightService
from bot.monitor import Monitor
from bot.outage import OutageNotifier
from bot.polling import Cadence, PollScheduler
from bot.services import (
    BotData,
    CustomContext,
    LabScope,
    RunFinder,
    Services,
    StatusService,
)
from bot.stop_watch import StopWatch
from bot.store import Store
from bot.sweeps import LauncherRegistry, SweepService
from bot.sweeps.card import card_claims
from bot.topics import TopicService, check_topics
from config import LabConfig, LabFileError, Settings
from handlers.access import Gate
from handlers.common import report_error
from handlers.table import BUTTONS, COMMANDS, HELP, PEOPLE_HELP
from wandb_client.agents import AgentSupervisor
from wandb_client.client import WandbClient
from wandb_client.error_mapping import in_words
from wandb_client.errors import WandbError, WandbNotFoundError
from wandb_client.local_launcher import LocalLauncher
from wandb_client.slurm import SlurmClient
from wandb_client.slurm_launcher import SlurmLauncher

log = logging.getLogger(__name__)

# Buttons of messages older than this answer "expired", and runs that ended and stayed
# unchanged this long are forgotten: keeps the store small on a bot that runs for years.
CALLBACK_LIFETIME = timedelta(days=30)
# `check` is a person at a terminal: W&B gets this long to answer, not the bot's timeout.
CHECK_TIMEOUT_S = 4.0
CHECK_START_S = 20.0
# Telegram unreachable at start: retry signing in at most this far apart.
TELEGRAM_BACKOFF_S = 60.0

BotApplication = Application[Any, CustomContext, dict[Any, Any], dict[Any, Any], BotData, Any]

# The updates the bot handles; Telegram need not send any other kind.
ALLOWED_UPDATES = ["message", "callback_query"]


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def build_wandb_client(settings: Settings, lab: LabConfig) -> WandbClient:
    """Build the W&B client from the settings."""
    return WandbClient(
        settings.wandb_api_key.get_secret_value(),
        base_url=settings.wandb_base_url,
        default_entity=lab.entity,
        ui_url=settings.ui_url,
        timeout=settings.wandb_timeout,
        concurrency=settings.wandb_concurrency,
        batch_size=settings.wandb_batch_size,
    )


def build(settings: Settings, lab: LabConfig, *, clock: Any = utcnow) -> BotApplication:
    """Build the application with every service, handler and hook registered."""
    application: BotApplication = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .rate_limiter(AIORateLimiter(max_retries=1))
        .context_types(ContextTypes(context=CustomContext, bot_data=BotData))
        .post_init(start_services)
        .post_stop(stop_services)
        .post_shutdown(close_services)
        .build()
    )
    store = Store(settings.db_path)
    wandb = build_wandb_client(settings, lab)
    topics = TopicService(store, application.bot, lab, clock)
    delivery = Delivery(
        store,
        application.bot,
        clock,
        admins=lab.admins,
        idle_wait=settings.delivery_interval,
        max_age=settings.delivery_max_age,
        send_timeout=settings.send_timeout,
        max_backoff=settings.delivery_max_backoff,
        topics=topics,
        # A person's non-urgent private messages wait out their quiet hours.
        hold=partial(hold_until, people=lab.people, lab_zone=lab.timezone or "UTC"),
    )
    # A chat told that it cannot have topics hears it at once.
    topics.on_enqueued = delivery.wake
    monitor = Monitor(
        store,
        wandb,
        lab,
        clock,
        ui_url=settings.ui_url,
        overlap=settings.watermark_overlap,
        stall_policy=StallPolicy(floor=settings.stall_floor, factor=settings.stall_factor),
    )
    assert application.job_queue is not None, "python-telegram-bot[job-queue] is required"
    idle = settings.idle_poll_interval or settings.poll_interval
    cadence = Cadence(settings.poll_interval, idle, settings.max_backoff)
    polls = PollScheduler(
        monitor,
        application.job_queue,
        cadence,
        on_enqueued=delivery.wake,
        on_round=OutageNotifier(
            store, lab.admins, clock, after=settings.wandb_down_notice_after
        ).observe,
        batch_size=settings.wandb_batch_size,
    )
    alerts = AlertService(
        store, wandb, lab, clock, interval=settings.poll_interval, on_enqueued=delivery.wake
    )
    monitor.add_poll_hook(alerts.on_poll)
    insight_service = InsightService(wandb, lab, store, settings.ui_url)
    digests = DigestService(
        store, wandb, lab, clock, ui_url=settings.ui_url, on_enqueued=delivery.wake
    )
    launchers = build_launchers(settings, lab)
    sweeps = SweepService(
        settings=settings,
        lab=lab,
        store=store,
        wandb=wandb,
        launchers=launchers,
        polls=polls,
        delivery=delivery,
        bot=application.bot,
        clock=clock,
        topics=topics,
    )
    health = None
    if settings.http_port is not None:
        health = HealthServer(
            store,
            monitor,
            polls,
            lambda: wandb.health,
            clock,
            host=settings.http_host,
            port=settings.http_port,
            delivery_stats=lambda: delivery.stats,
            hook=WandbHook(
                settings.wandb_hook_secret,
                poll_on_hook(monitor, polls),
            )
            if settings.wandb_hook_secret is not None
            else None,
        )
    monitor.add_hook(sweeps.on_events)
    # The cards of sweeps started from a chat tell their runs there (lab file: sweep_runs).
    monitor.set_card_claims(lambda: card_claims(store, lab, clock()))
    monitor.set_explainer(FailureExplainer(wandb.console_tail))
    application.bot_data.bind(
        Services(
            settings=settings,
            lab=lab,
            store=store,
            wandb=wandb,
            monitor=monitor,
            delivery=delivery,
            polls=polls,
            insight=insight_service,
            digests=digests,
            sweeps=sweeps,
            status=StatusService(store, monitor, polls, wandb, lab, clock),
            scope=LabScope(lab, monitor, store),
            runs=RunFinder(wandb),
            alerts=alerts,
            clock=clock,
            started_at=clock(),
            health=health,
            help_text=HELP,
            people_help=PEOPLE_HELP,
        )
    )
    register_handlers(application)
    return application


def build_launchers(settings: Settings, lab: LabConfig) -> LauncherRegistry:
    """Build the launchers sweeps may name in the lab file; refuse a lab file naming others."""
    local = AgentSupervisor(
        executable=settings.agent_executable,
        stagger_s=settings.agent_stagger,
        check_interval_s=settings.agent_check_interval,
    )
    slurm = SlurmLauncher(
        SlurmClient(),
        executable=settings.agent_executable,
        poll_interval_s=settings.agent_check_interval,
    )
    launchers = LauncherRegistry([LocalLauncher(local), slurm])
    problems = launchers.problems(lab)
    if problems:
        raise LabFileError([f"{settings.lab_file}: {p}" for p in problems])
    return launchers


def register_handlers(application: BotApplication) -> None:
    """Register the gate, every command and button from the tables, and the error handler."""
    # Group -1 runs before every handler: a refusal there stops the update (rules-bot's way).
    application.add_handler(TypeHandler(Update, Gate(COMMANDS, BUTTONS)), group=-1)
    for spec in COMMANDS:
        application.add_handler(
            CommandHandler(spec.name, metrics.timed_command(spec.name, spec.callback))
        )
    # No pattern: a press whose data is not ours is answered too, never left spinning.
    application.add_handler(CallbackQueryHandler(button_router(BUTTONS)))
    application.add_error_handler(report_error)


async def start_services(application: BotApplication) -> None:
    """Start what runs beside the handlers; order matters, see the comments."""
    services = application.bot_data.services
    await application.bot.set_my_commands([BotCommand(c.name, c.menu_text) for c in COMMANDS])
    services.store.callbacks.prune(services.clock() - CALLBACK_LIFETIME)
    services.store.runs.prune(services.clock() - CALLBACK_LIFETIME)
    # Delivery first, so that anything enqueued while the bot was down goes out now.
    services.delivery.start()
    services.polls.start()
    if services.health is not None:
        log.info("health endpoint at %s/healthz", await services.health.start())
    assert application.job_queue is not None
    services.digests.schedule(application.job_queue)
    # Agents outlive the bot: adopt the live ones, report those that ended meanwhile.
    await services.sweeps.resume()
    application.job_queue.run_repeating(
        services.sweeps.refresh_job,
        interval=max(services.settings.card_edit_interval, services.settings.poll_interval),
        name="sweep-cards",
    )
    stops = StopWatch(
        services.store, services.delivery, services.clock, services.settings.stop_retry_after
    )
    # Checked a few times per retry period: a slow stop is told at most a quarter late.
    application.job_queue.run_repeating(
        stops.check_job, interval=min(services.settings.stop_retry_after / 4, 30), name="stops"
    )


async def stop_services(application: BotApplication) -> None:
    """Stop the background workers while the bot can still send."""
    # Watchers and card refreshes stop; the agents themselves keep running.
    services = application.bot_data.services
    await services.sweeps.close()
    await services.delivery.stop()
    if services.health is not None:
        await services.health.stop()


async def close_services(application: BotApplication) -> None:
    """Close the W&B client and the store."""
    services = application.bot_data.services
    await services.wandb.close()
    services.store.close()


async def check_projects(wandb: WandbClient, lab: LabConfig) -> list[str]:
    """Return one line per watched project: its newest run, or why W&B cannot show it."""
    paths = sorted({path for chat in lab.chats for path in subscribed_projects(lab, chat.id)})
    lines = []
    for path in paths:
        entity, project = path.split("/", 1)
        try:
            newest = await wandb.recent_runs(entity, project, limit=1)
        except WandbNotFoundError as exc:
            lines.append(f"  {STATE_MARKERS['attention']} {path}: {in_words(exc)}")
            continue
        last = f"newest run {newest[0].display_name}" if newest else "no runs"
        lines.append(f"  {path}: ok, {last}")
    return lines


def run(settings: Settings, lab: LabConfig) -> None:
    """Run the bot until it is stopped by a signal."""
    application = build(settings, lab)
    log.info(
        "starting: %d chats, %d admins, polling W&B every %gs, Telegram by %s",
        len(lab.chats),
        len(lab.admins),
        settings.poll_interval,
        "webhook" if settings.telegram_webhook_url else "long polling",
    )
    # Commands and delivery start only once Telegram answers; until then, wait quietly.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(wait_for_telegram(application.bot))
    # Should Telegram drop again before polling starts, PTB retries rather than dying.
    if settings.telegram_webhook_url:
        application.run_webhook(**webhook_options(settings), bootstrap_retries=-1)
    else:
        application.run_polling(allowed_updates=ALLOWED_UPDATES, bootstrap_retries=-1)


async def wait_for_telegram(
    bot: Bot, *, first_s: float = 1.0, most_s: float = TELEGRAM_BACKOFF_S
) -> None:
    """Sign the bot in, retrying with back-off while Telegram is unreachable; log it once."""
    delay, failed = first_s, 0
    while True:
        try:
            await bot.initialize()
        except NetworkError as exc:
            if isinstance(exc, BadRequest):
                raise
            if failed == 0:
                log.warning(
                    "Telegram is unreachable (%s); retrying every %g s at most until it answers",
                    exc.message,
                    most_s,
                )
            failed += 1
            await asyncio.sleep(delay)
            delay = min(most_s, delay * 2)
            continue
        if failed:
            log.info("Telegram answers after %d failed attempts; starting", failed)
        return


def webhook_options(settings: Settings) -> dict[str, Any]:
    """Return the arguments of PTB's webhook server for webhook mode.

    PTB listens on the configured address at the public URL's path (a reverse proxy in
    front terminates HTTPS and forwards that path), registers the URL with setWebhook and
    drops updates that lack the secret token.
    """
    url = settings.telegram_webhook_url
    assert url is not None and settings.telegram_webhook_secret is not None
    host, port = settings.webhook_listen
    return {
        "listen": host,
        "port": port,
        "url_path": urlsplit(url).path.lstrip("/"),
        "webhook_url": url,
        "secret_token": settings.telegram_webhook_secret.get_secret_value(),
        "allowed_updates": ALLOWED_UPDATES,
    }


async def check(settings: Settings, lab: LabConfig) -> int:
    """Check W&B and Telegram with the configured credentials and print a short report."""
    ok = True
    chats, sweeps = len(lab.chats), len(lab.sweeps)
    print(
        f"lab file: {settings.lab_file} ok ({chats} chat{'' if chats == 1 else 's'},"
        f" {sweeps} sweep{'' if sweeps == 1 else 's'})"
    )
    # A person waits at the terminal: one short attempt says "unreachable" in seconds.
    timeout = min(settings.wandb_timeout, CHECK_TIMEOUT_S)
    wandb = WandbClient(
        settings.wandb_api_key.get_secret_value(),
        base_url=settings.wandb_base_url,
        default_entity=lab.entity,
        timeout=timeout,
        # Starting wandb-core takes seconds on a busy host; only W&B's answer is timed.
        margin=CHECK_START_S,
    )
    where = settings.wandb_base_url or "api.wandb.ai"
    try:
        viewer = await wandb.viewer()
        print(f"W&B: ok, signed in as {viewer} at {where}")
        for line in await check_projects(wandb, lab):
            print(line)
    except WandbError as exc:
        ok = False
        print(f"W&B: FAILED: {in_words(exc)} at {where} (within {timeout:g} s)")
    finally:
        await wandb.close()
    bot = Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_url,
        base_file_url=settings.file_url,
    )
    try:
        async with bot:
            me = await bot.get_me()
            print(f"Telegram: ok, bot @{me.username}")
            for line in await check_topics(bot, lab):
                print(line)
    except TelegramError as exc:
        ok = False
        print(f"Telegram: FAILED: {exc.message}")
    sys.stdout.flush()
    return 0 if ok else 1
