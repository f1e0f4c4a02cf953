"""Metric alerts: each rule's state per run, finished runs' values, and muted rules."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.store.db import Database, iso, parse_time
from bot.store.outbox import insert_messages
from bot.store.records import OutboxItem

# Finished runs kept per (project, metric): enough for any zscore `against`.
VALUES_KEPT = 500


class AlertRepository:
    """Keep what alert evaluation needs between polls and across restarts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def states(self, entity: str, project: str) -> dict[tuple[str, str], dict[str, Any]]:
        """Return every stored (run path, rule) state of a project."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT path, rule, state FROM alert_states WHERE entity=? AND project=?",
                (entity, project),
            ).fetchall()
        return {(row["path"], row["rule"]): json.loads(row["state"]) for row in rows}

    def firing(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Return (run path, rule, state) of every alert firing now."""
        with self._db.read() as db:
            rows = db.execute("SELECT path, rule, state FROM alert_states").fetchall()
        out = [(row["path"], row["rule"], json.loads(row["state"])) for row in rows]
        return [item for item in out if item[2].get("firing")]

    def save(
        self,
        entity: str,
        project: str,
        states: Mapping[tuple[str, str], Mapping[str, Any]],
        messages: Sequence[OutboxItem],
        now: datetime,
    ) -> list[int]:
        """Write new states and their messages together: a restart repeats or loses neither."""
        with self._db.tx() as db:
            db.executemany(
                "INSERT INTO alert_states VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (path, rule) DO UPDATE SET state=excluded.state,"
                " updated_at=excluded.updated_at",
                [
                    (path, rule, entity, project, json.dumps(state), iso(now))
                    for (path, rule), state in states.items()
                ],
            )
            return insert_messages(db, messages, now)

    def values(self, entity: str, project: str, metric: str) -> list[tuple[str, float]]:
        """Return (run id, value) of finished runs for a metric, newest first."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT run_id, value FROM alert_values WHERE entity=? AND project=? AND metric=?"
                " ORDER BY at DESC, run_id LIMIT ?",
                (entity, project, metric, VALUES_KEPT),
            ).fetchall()
        return [(row["run_id"], float(row["value"])) for row in rows]

    def known_metrics(self, entity: str, project: str) -> set[str]:
        """Return the metrics whose finished-run values are kept for a project."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT DISTINCT metric FROM alert_values WHERE entity=? AND project=?",
                (entity, project),
            ).fetchall()
        return {row["metric"] for row in rows}

    def add_values(
        self, entity: str, project: str, items: Iterable[tuple[str, str, float, datetime]]
    ) -> None:
        """Remember finished runs' values: (metric, run id, value, when it finished)."""
        with self._db.tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO alert_values VALUES (?, ?, ?, ?, ?, ?)",
                [(entity, project, m, run, value, iso(at)) for m, run, value, at in items],
            )

    def mute(self, entity: str, project: str, rule: str, until: datetime) -> None:
        """Silence a rule for a project until `until`."""
        with self._db.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO alert_mutes VALUES (?, ?, ?, ?)",
                (entity, project, rule, iso(until)),
            )

    def muted(self, entity: str, project: str, now: datetime) -> set[str]:
        """Return the rules muted for a project at `now`."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT rule, until FROM alert_mutes WHERE entity=? AND project=?",
                (entity, project),
            ).fetchall()
        return {row["rule"] for row in rows if (parse_time(row["until"]) or now) > now}

    def forget_runs(self, paths: Iterable[str]) -> None:
        """Drop the alert states of runs the bot forgot."""
        with self._db.tx() as db:
            db.executemany("DELETE FROM alert_states WHERE path=?", [(p,) for p in paths])
