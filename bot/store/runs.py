"""Runs and watermarks: what the monitor remembers of each watched project."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.store.db import Database, iso, parse_time
from bot.store.records import ProjectState


class RunRepository:
    """Keep each project's watermark and poll health, and each run's last known state."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def project_state(self, entity: str, project: str) -> ProjectState:
        """Return the monitor's bookkeeping of a project (empty when never polled)."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT * FROM projects WHERE entity=? AND project=?", (entity, project)
            ).fetchone()
        if row is None:
            return ProjectState(entity, project, None, False, None, None, None, 0, True)
        return _project(row)

    def project_states(self) -> list[ProjectState]:
        """Return the bookkeeping of every project ever polled."""
        with self._db.read() as db:
            rows = db.execute("SELECT * FROM projects ORDER BY entity, project").fetchall()
        return [_project(row) for row in rows]

    def memory(
        self, entity: str, project: str, paths: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Return what the bot remembers of a project's runs (only `paths`, when given)."""
        query = "SELECT path, memory FROM runs WHERE entity=? AND project=?"
        rows: list[sqlite3.Row] = []
        with self._db.read() as db:
            if paths is None:
                rows = db.execute(query, (entity, project)).fetchall()
            else:
                wanted = list(dict.fromkeys(paths))
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows += db.execute(
                        f"{query} AND path IN ({marks})",
                        (entity, project, *chunk),
                    ).fetchall()
        return {row["path"]: json.loads(row["memory"]) for row in rows}

    def unfinished(self, entity: str, project: str) -> list[str]:
        """Return the paths of a project's runs last seen running or pending."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT path FROM runs WHERE entity=? AND project=?"
                " AND json_extract(memory, '$.state') IN ('running', 'pending')",
                (entity, project),
            ).fetchall()
        return [row["path"] for row in rows]

    def prune(self, before: datetime) -> int:
        """Forget runs that ended and have not changed since `before`.

        A forgotten run that W&B shows again later is old news to the monitor (its last
        heartbeat predates the poll window), so this never brings a notification back.
        """
        with self._db.tx() as db:
            cur = db.execute(
                "DELETE FROM runs WHERE updated_at<?"
                " AND json_extract(memory, '$.state') NOT IN ('running', 'pending')",
                (iso(before),),
            )
            return cur.rowcount

    def write_poll(
        self,
        db: sqlite3.Connection,
        entity: str,
        project: str,
        *,
        now: datetime,
        watermark: datetime | None,
        active: bool,
        memory: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Write a successful poll's run memory and watermark inside the caller's transaction."""
        for path, mem in memory.items():
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE "
                "SET memory=excluded.memory, updated_at=excluded.updated_at",
                (path, entity, project, json.dumps(mem, sort_keys=True), iso(now)),
            )
        db.execute(
            "INSERT INTO projects (entity, project, watermark, baseline_done, last_poll_at,"
            " last_ok_at, last_error, failures, active) VALUES (?, ?, ?, 1, ?, ?, NULL, 0, ?)"
            " ON CONFLICT(entity, project) DO UPDATE SET watermark=excluded.watermark,"
            " baseline_done=1, last_poll_at=excluded.last_poll_at,"
            " last_ok_at=excluded.last_ok_at, last_error=NULL, failures=0,"
            " active=excluded.active",
            (
                entity,
                project,
                iso(watermark) if watermark else None,
                iso(now),
                iso(now),
                int(active),
            ),
        )

    def record_failure(self, entity: str, project: str, now: datetime, error: str) -> int:
        """Count a failed poll; return how many failed in a row."""
        with self._db.tx() as db:
            row = db.execute(
                "INSERT INTO projects (entity, project, last_poll_at, last_error, failures)"
                " VALUES (?, ?, ?, ?, 1) ON CONFLICT(entity, project) DO UPDATE SET"
                " last_poll_at=excluded.last_poll_at, last_error=excluded.last_error,"
                " failures=failures+1 RETURNING failures",
                (entity, project, iso(now), error),
            ).fetchone()
            return int(row["failures"])

    def forget_project(self, entity: str, project: str) -> None:
        """Drop a project's bookkeeping so a later watch starts from a new baseline."""
        with self._db.tx() as db:
            db.execute("DELETE FROM projects WHERE entity=? AND project=?", (entity, project))
            db.execute("DELETE FROM runs WHERE entity=? AND project=?", (entity, project))


def _project(row: sqlite3.Row) -> ProjectState:
    return ProjectState(
        entity=row["entity"],
        project=row["project"],
        watermark=parse_time(row["watermark"]),
        baseline_done=bool(row["baseline_done"]),
        last_poll_at=parse_time(row["last_poll_at"]),
        last_ok_at=parse_time(row["last_ok_at"]),
        last_error=row["last_error"],
        failures=row["failures"],
        active=bool(row["active"]),
    )
