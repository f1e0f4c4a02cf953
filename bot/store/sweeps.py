"""Sweeps started from chats and the `wandb agent` processes that work on them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.db import Database, iso, parse_time
from bot.store.records import AgentRecord, SweepRecord

_SWEEP_FIELDS = frozenset(
    {"card_message_id", "card_text", "finished_at", "failures", "breaker_tripped", "agents"}
)


class SweepRepository:
    """Keep the sweeps the bot started: who asked, their live card, their breaker."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, record: SweepRecord) -> None:
        """Remember a sweep started from a chat."""
        with self._db.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sweeps (path, name, chat_id, count, agents, gpus,"
                " started_by, started_at, card_message_id, card_text, finished_at, failures,"
                " breaker_tripped, launcher, thread_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.path,
                    record.name,
                    record.chat_id,
                    record.count,
                    record.agents,
                    record.gpus,
                    record.started_by,
                    iso(record.started_at),
                    record.card_message_id,
                    record.card_text,
                    iso(record.finished_at) if record.finished_at else None,
                    json.dumps([iso(t) for t in record.failures]),
                    int(record.breaker_tripped),
                    record.launcher,
                    record.thread_id,
                ),
            )

    def update(self, path: str, **fields: Any) -> None:
        """Change some fields of a started sweep."""
        assert set(fields) <= _SWEEP_FIELDS, fields
        values: list[Any] = []
        for key, value in fields.items():
            if isinstance(value, datetime):
                value = iso(value)
            elif key == "failures":
                value = json.dumps([iso(t) for t in value])
            values.append(value)
        assignments = ", ".join(f"{key}=?" for key in fields)
        with self._db.tx() as db:
            db.execute(f"UPDATE sweeps SET {assignments} WHERE path=?", (*values, path))  # noqa: S608

    def all(self, *, active_only: bool = False) -> list[SweepRecord]:
        """Return the sweeps started from chats, newest first."""
        query = "SELECT * FROM sweeps"
        if active_only:
            query += " WHERE finished_at IS NULL"
        with self._db.read() as db:
            rows = db.execute(query + " ORDER BY started_at DESC").fetchall()
        return [_sweep(row) for row in rows]

    def get(self, path: str) -> SweepRecord | None:
        """Return one started sweep by its path."""
        with self._db.read() as db:
            row = db.execute("SELECT * FROM sweeps WHERE path=?", (path,)).fetchone()
        return None if row is None else _sweep(row)


class AgentRepository:
    """Keep the agent processes the bot started, so that a restarted bot adopts them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        sweep_path: str,
        idx: int,
        pid: int,
        pgid: int,
        cmdline: Sequence[str],
        log_path: str,
        gpus: str,
        started_at: datetime,
        launcher: str = "local",
        handle: str = "",
        host: str = "",
    ) -> int:
        """Remember an agent; return its record id (pid/pgid/cmdline are 0/0/() off-host)."""
        with self._db.tx() as db:
            cur = db.execute(
                "INSERT INTO agents (sweep_path, idx, pid, pgid, cmdline, log_path, gpus,"
                " started_at, launcher, handle, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sweep_path,
                    idx,
                    pid,
                    pgid,
                    json.dumps(list(cmdline)),
                    log_path,
                    gpus,
                    iso(started_at),
                    launcher,
                    handle,
                    host,
                ),
            )
            return int(cur.lastrowid or 0)

    def all(self, *, live_only: bool = False, sweep_path: str | None = None) -> list[AgentRecord]:
        """Return agent records, optionally only those not known to have ended."""
        query = "SELECT * FROM agents WHERE 1=1"
        args: list[Any] = []
        if live_only:
            query += " AND ended_at IS NULL"
        if sweep_path is not None:
            query += " AND sweep_path=?"
            args.append(sweep_path)
        with self._db.read() as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        return [_agent(row) for row in rows]

    def get(self, agent_id: int) -> AgentRecord | None:
        """Return one agent record by its id."""
        with self._db.read() as db:
            row = db.execute("SELECT * FROM agents WHERE id=?", (agent_id,)).fetchone()
        return None if row is None else _agent(row)

    def end(self, agent_id: int, exit_code: int | None, now: datetime) -> bool:
        """Record that an agent ended; return False when it was recorded already."""
        with self._db.tx() as db:
            cur = db.execute(
                "UPDATE agents SET ended_at=?, exit_code=? WHERE id=? AND ended_at IS NULL",
                (iso(now), exit_code, agent_id),
            )
            return cur.rowcount > 0


def _sweep(row: sqlite3.Row) -> SweepRecord:
    return SweepRecord(
        path=row["path"],
        name=row["name"],
        chat_id=row["chat_id"],
        count=row["count"],
        agents=row["agents"],
        gpus=row["gpus"],
        started_by=row["started_by"],
        started_at=datetime.fromisoformat(row["started_at"]),
        card_message_id=row["card_message_id"],
        card_text=row["card_text"],
        finished_at=parse_time(row["finished_at"]),
        failures=tuple(datetime.fromisoformat(t) for t in json.loads(row["failures"])),
        breaker_tripped=bool(row["breaker_tripped"]),
        launcher=row["launcher"],
        thread_id=row["thread_id"],
    )


def _agent(row: sqlite3.Row) -> AgentRecord:
    return AgentRecord(
        id=row["id"],
        sweep_path=row["sweep_path"],
        idx=row["idx"],
        pid=row["pid"],
        pgid=row["pgid"],
        cmdline=tuple(json.loads(row["cmdline"])),
        log_path=row["log_path"],
        gpus=row["gpus"],
        started_at=datetime.fromisoformat(row["started_at"]),
        ended_at=parse_time(row["ended_at"]),
        exit_code=row["exit_code"],
        reported=bool(row["reported"]),
        launcher=row["launcher"],
        handle=row["handle"],
        host=row["host"],
    )
