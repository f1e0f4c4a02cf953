"""The command and button tables: registration, the menu, /help and the gate all read these."""

from __future__ import annotations

from bot.callbacks import ButtonAction, ButtonSpec
from bot.domain.alert_messages import ALERTS_USAGE
from bot.domain.commands import (
    BEST_USAGE,
    COMPARE_USAGE,
    MINE_USAGE,
    PLOT_USAGE,
    RERUN_USAGE,
    RUNS_USAGE,
    SILENCE_USAGE,
    STOP_USAGE,
    SWEEP_USAGE,
    CommandSpec,
    Role,
    project_usage,
    render_help,
)
from bot.services import CommandCallback
from handlers import (
    alerts,
    compare,
    general,
    insight,
    people,
    rerun,
    runs,
    stop,
    sweep,
    sweep_agents,
    watch,
)

ADMIN, MEMBER = Role.ADMIN, Role.MEMBER

# Order is /help's order. An admin command's summary completes "Only lab admins can …".
COMMANDS: tuple[CommandSpec[CommandCallback], ...] = (
    CommandSpec(
        "start", general.start_command, "say hello and list what I can do", "/start", people=True
    ),
    CommandSpec("help", general.help_command, "list what I can do", "/help", people=True),
    CommandSpec("mine", people.mine_command, "your own runs, in private", MINE_USAGE, people=True),
    CommandSpec("runs", runs.runs_command, "a project's recent runs", RUNS_USAGE),
    CommandSpec("best", insight.best_command, "the best run of a project or sweep", BEST_USAGE),
    CommandSpec("plot", insight.plot_command, "chart a run's or a sweep's metrics", PLOT_USAGE),
    CommandSpec(
        "compare", compare.compare_command, "two runs' curves, config and delta", COMPARE_USAGE
    ),
    CommandSpec("digest", insight.digest_command, "this chat's digest now", "/digest"),
    CommandSpec("status", general.status_command, "my health: W&B, polls, queue", "/status"),
    CommandSpec(
        "subscriptions", watch.subscriptions_command, "what this chat watches", "/subscriptions"
    ),
    CommandSpec("alerts", alerts.alerts_command, "metric alert rules and what fires", ALERTS_USAGE),
    CommandSpec("sweeps", sweep.sweeps_command, "the sweeps running now", "/sweeps"),
    CommandSpec(
        "sweep",
        sweep.sweep_command,
        "start or stop sweeps",
        SWEEP_USAGE,
        ADMIN,
        member_subcommands=("status", "agents"),
    ),
    CommandSpec("stop", stop.stop_command, "stop runs", STOP_USAGE, ADMIN),
    CommandSpec("rerun", rerun.rerun_command, "rerun a run over seeds", RERUN_USAGE, ADMIN),
    CommandSpec(
        "watch",
        watch.watch_command,
        "change what this chat watches",
        project_usage("watch"),
        ADMIN,
    ),
    CommandSpec(
        "unwatch",
        watch.unwatch_command,
        "change what this chat watches",
        project_usage("unwatch"),
        ADMIN,
    ),
    CommandSpec("silence", watch.silence_command, "silence projects", SILENCE_USAGE, ADMIN),
    CommandSpec(
        "unsilence",
        watch.unsilence_command,
        "silence projects",
        project_usage("unsilence"),
        ADMIN,
    ),
)

SWEEP_REFUSAL = "Only lab admins can start or stop sweeps."
RERUN_REFUSAL = "Only lab admins can rerun a run over seeds."

BUTTONS: tuple[ButtonSpec[ButtonAction], ...] = (
    ButtonSpec("config", insight.config_pressed, MEMBER),
    ButtonSpec("plot", insight.plot_pressed, MEMBER),
    ButtonSpec("compare", compare.compare_pressed, MEMBER),
    ButtonSpec("stop", stop.stop_pressed, ADMIN, "Only lab admins can stop runs."),
    ButtonSpec("stop_yes", stop.stop_yes_pressed, ADMIN, stop.NOT_YOURS),
    ButtonSpec("stop_no", stop.stop_no_pressed, ADMIN, stop.NOT_YOURS),
    ButtonSpec("stop_again", stop.stop_again_pressed, ADMIN, "Only lab admins can stop runs."),
    ButtonSpec("sweep_stop", sweep.sweep_stop_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_stop_yes", sweep.sweep_stop_yes_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_stop_no", sweep.sweep_stop_no_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_pause", sweep.sweep_pause_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_resume", sweep.sweep_resume_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_plot", sweep.sweep_plot_pressed, MEMBER),
    ButtonSpec("agent_stop", sweep_agents.agent_stop_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("agent_stop_yes", sweep_agents.agent_stop_yes_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("agent_stop_no", sweep_agents.agent_stop_no_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_rerun", sweep.sweep_rerun_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_narrow", sweep.sweep_narrow_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_rerun_yes", sweep.sweep_rerun_yes_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_narrow_yes", sweep.sweep_narrow_yes_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("sweep_derive_no", sweep.sweep_derive_no_pressed, ADMIN, SWEEP_REFUSAL),
    ButtonSpec("rerun", rerun.rerun_pressed, ADMIN, RERUN_REFUSAL),
    ButtonSpec("rerun_yes", rerun.rerun_yes_pressed, ADMIN, RERUN_REFUSAL),
    ButtonSpec("alert_mute", alerts.alert_mute_pressed, MEMBER),
)

HELP = render_help(COMMANDS)
PEOPLE_HELP = render_help([spec for spec in COMMANDS if spec.people])
