"""Metric alerts: judge the lab's rules on what each poll saw, and queue what they say.

Called by the monitor after every successful poll with the runs its listing returned.
Rules on summary values cost no W&B request; rules on logged values cost one history
request per run that has such a rule; zscore and new_best baselines are the finished
runs' values the bot has seen, filled once from one listing when it knows none yet.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.alert_messages import AlertNote, compose, render_alerts, render_dry_run
from bot.domain.alerts import AlertState, Baseline, Check, evaluate, judged_on, metric_value
from bot.domain.keys import ProjectKey
from bot.domain.people import mention
from bot.store import OutboxItem, Store
from config import LabConfig
from config.alerts import AlertRule
from wandb_client.errors import WandbError
from wandb_client.models import HistoryRow, RunSnapshot

log = logging.getLogger(__name__)

BASELINE_RUNS = 100
BASELINE_KINDS = frozenset({"zscore", "new_best"})


class AlertSource(Protocol):
    """What alerts need of the W&B client."""

    async def history_since(
        self,
        entity: str,
        project: str,
        run_id: str,
        metrics: Sequence[str],
        min_step: int | None = None,
        samples: int = ...,
    ) -> dict[str, list[HistoryRow]]: ...

    async def recent_runs(
        self, entity: str, project: str, state: str | None = None, limit: int = 10
    ) -> list[RunSnapshot]: ...


def to_item(note: AlertNote, topic: str | None = None) -> OutboxItem:
    """Turn an alert note about project `topic` (`entity/project`) into an outbox row."""
    return OutboxItem(
        note.chat_id,
        note.dedupe_key,
        note.kind,
        note.text,
        note.buttons,
        reply_to=note.reply_to,
        topic=topic,
    )


class AlertService:
    """Evaluate metric alert rules after polls; answer `/alerts`; mute rules."""

    def __init__(
        self,
        store: Store,
        wandb: AlertSource,
        lab: LabConfig,
        clock: Callable[[], datetime],
        *,
        interval: float,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._wandb = wandb
        self._lab = lab
        self._clock = clock
        self._interval = timedelta(seconds=interval)
        self._on_enqueued = on_enqueued
        # (entity, project) → when its baseline was last filled from W&B.
        self._filled_at: dict[tuple[str, str], datetime] = {}
        self.history_requests = 0

    def rules(self, project: str) -> tuple[AlertRule, ...]:
        """Return the rules that watch a project."""
        return self._lab.alert_rules(project)

    async def on_poll(self, entity: str, project: str, runs: Sequence[RunSnapshot]) -> None:
        """Judge the project's rules on the runs one poll returned; queue what fires."""
        rules = self.rules(project)
        if not rules or not runs:
            return
        now = self._clock()
        checks = await self.judge(entity, project, runs, rules, now, self._stored(entity, project))
        self._remember_finished(entity, project, runs, rules, now)
        muted = self._store.alerts.muted(entity, project, now)
        audible = [c for c in checks if c.rule.name not in muted]
        notes, threads = compose(
            audible,
            self._chats_for(entity, project, now),
            entity=entity,
            project=project,
            now=now,
            owner=lambda user: mention(user, self._lab.people),
        )
        states = {(c.run.path, c.rule.name): c.state for c in checks}
        states.update(threads)
        ids = self._store.alerts.save(
            entity,
            project,
            {key: state.to_dict() for key, state in states.items()},
            [to_item(note, f"{entity}/{project}") for note in notes],
            now,
        )
        if ids:
            self._on_enqueued()

    def _stored(self, entity: str, project: str) -> dict[tuple[str, str], AlertState]:
        stored = self._store.alerts.states(entity, project)
        return {key: AlertState.from_dict(data) for key, data in stored.items()}

    async def judge(
        self,
        entity: str,
        project: str,
        runs: Sequence[RunSnapshot],
        rules: Sequence[AlertRule],
        now: datetime,
        states: Mapping[tuple[str, str], AlertState],
    ) -> list[Check]:
        """Evaluate every rule on every run it judges; fetch what the rules need first."""
        baselines = await self._baselines(entity, project, rules, now)
        goal = self._lab.project(project).goal
        checks = []
        for run in runs:
            history = await self._history(run, [r for r in rules if judged_on(r, run)], states)
            for rule in rules:
                state = states.get((run.path, rule.name), AlertState())
                checks.append(
                    evaluate(
                        rule,
                        run,
                        state,
                        now,
                        history=_logged(history, rule.metrics),
                        baseline=baselines.get(rule.metrics[0], Baseline()),
                        goal=goal,
                    )
                )
        return checks

    async def _history(
        self,
        run: RunSnapshot,
        rules: Sequence[AlertRule],
        states: Mapping[tuple[str, str], AlertState],
    ) -> dict[str, list[HistoryRow]]:
        """Fetch the new logged values of the metrics this run's history rules read."""
        wanted = [r for r in rules if r.needs_history]
        if not wanted:
            return {}
        steps = [states.get((run.path, r.name), AlertState()).last_step for r in wanted]
        start = None if None in steps else min(s for s in steps if s is not None) + 1
        metrics = sorted({m for r in wanted for m in r.metrics})
        self.history_requests += 1
        try:
            return await self._wandb.history_since(run.entity, run.project, run.id, metrics, start)
        except WandbError as exc:
            log.info("no history for alerts on %s this poll: %s", run.path, exc)
            return {}

    async def _baselines(
        self, entity: str, project: str, rules: Sequence[AlertRule], now: datetime
    ) -> dict[str, Baseline]:
        metrics = {r.metrics[0] for r in rules if r.kind in BASELINE_KINDS}
        if not metrics:
            return {}
        known = self._store.alerts.known_metrics(entity, project)
        key = (entity, project)
        last = self._filled_at.get(key)
        if metrics - known and (last is None or now - last >= self._interval):
            self._filled_at[key] = now
            await self._fill(entity, project, metrics, now)
        return {m: Baseline(tuple(self._store.alerts.values(entity, project, m))) for m in metrics}

    async def _fill(self, entity: str, project: str, metrics: set[str], now: datetime) -> None:
        """Learn finished runs' values from one listing, once, when the bot knows none."""
        try:
            runs = await self._wandb.recent_runs(entity, project, "finished", BASELINE_RUNS)
        except WandbError as exc:
            log.info("no alert baseline for %s/%s yet: %s", entity, project, exc)
            return
        self._store.alerts.add_values(entity, project, _values(runs, metrics, now))

    def _remember_finished(
        self,
        entity: str,
        project: str,
        runs: Sequence[RunSnapshot],
        rules: Sequence[AlertRule],
        now: datetime,
    ) -> None:
        metrics = {r.metrics[0] for r in rules if r.kind in BASELINE_KINDS}
        finished = [run for run in runs if run.state == "finished"]
        if metrics and finished:
            self._store.alerts.add_values(entity, project, _values(finished, metrics, now))

    def _chats_for(
        self, entity: str, project: str, now: datetime
    ) -> Callable[[Check], Sequence[int]]:
        """Return who hears a check: its rule's chats (else the watchers), and a /mine owner."""
        watching = watching_chats(self._store, self._lab, entity, project, now)
        migrations = self._store.chats.migrations()
        mine = {
            found[0]: user_id
            for user_id in self._store.people.subscribers()
            if (found := self._lab.person(user_id)) is not None
        }

        def chats(check: Check) -> list[int]:
            listed = [migrations.get(c, c) for c in (check.rule.chats or watching)]
            owner = mine.get(check.run.user or "")
            return [*listed, owner] if owner is not None and owner not in listed else listed

        return chats

    def mute(self, target: str, hours: float) -> str:
        """Mute `entity/project/rule` for `hours`; return what was muted."""
        entity, project, rule = target.split("/", 2)
        self._store.alerts.mute(entity, project, rule, self._clock() + timedelta(hours=hours))
        return f"{rule} on {project}"

    def overview(self, chat_id: int, projects: Sequence[tuple[str, str]]) -> str:
        """Render `/alerts` for a chat watching `projects`."""
        rules = {p: self.rules(p) for _, p in projects if self.rules(p)}
        mine = {f"{e}/{p}/" for e, p in projects}
        firing = [
            (path, rule)
            for path, rule, _ in self._store.alerts.firing()
            if any(path.startswith(prefix) for prefix in mine)
        ]
        return render_alerts(rules, firing)

    async def dry_run(self, entity: str, project: str) -> str:
        """Evaluate the project's rules on its recent runs; say what would fire, send nothing."""
        rules = self.rules(project)
        runs = await self._wandb.recent_runs(entity, project, None, 50)
        checks = await self.judge(entity, project, runs, rules, self._clock(), {})
        return render_dry_run(project, checks, len(rules), len(runs))


def _logged(
    history: Mapping[str, Sequence[HistoryRow]], metrics: Sequence[str]
) -> list[tuple[int, float]]:
    rows = [(row.step, metric_value(row.values, m)) for m in metrics for row in history.get(m, ())]
    return [(step, value) for step, value in rows if value is not None]


def _values(
    runs: Sequence[RunSnapshot], metrics: set[str], now: datetime
) -> list[tuple[str, str, float, datetime]]:
    out = []
    for run in runs:
        at = run.heartbeat_at or run.created_at or now
        for metric in metrics:
            value = metric_value(run.summary, metric)
            if value is not None and math.isfinite(value):
                out.append((metric, run.id, value, at))
    return out


def watching_chats(
    store: Store, lab: LabConfig, entity: str, project: str, now: datetime
) -> list[int]:
    """Return the chats that watch a project and have not silenced it."""
    chats = [
        chat.id
        for chat in lab.chats
        if any(_qualify(lab, p) == (entity, project) for p in chat.projects)
    ]
    chats += [c for c, subs in store.chats.subscriptions().items() if (entity, project) in subs]
    silenced = {c for (c, e, p) in store.silences.active(now) if (e, p) == (entity, project)}
    return [c for c in dict.fromkeys(chats) if c not in silenced]


def _qualify(lab: LabConfig, project: str) -> tuple[str, str]:
    if "/" in project:
        key = ProjectKey.parse(project)
        return key.entity, key.project
    return lab.entity_of(project), project
