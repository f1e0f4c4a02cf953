"""SQLite: subscriptions, known run states, the outbox, agents, sweeps, silences."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Each entry moves the schema one version on; never edit an entry that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE subscriptions (
        chat_id INTEGER NOT NULL, entity TEXT NOT NULL, project TEXT NOT NULL,
        added_by INTEGER, added_at TEXT NOT NULL,
        PRIMARY KEY (chat_id, entity, project)
    );
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY, paused_reason TEXT, migrated_to INTEGER
    );
    CREATE TABLE projects (
        entity TEXT NOT NULL, project TEXT NOT NULL,
        watermark TEXT, baseline_done INTEGER NOT NULL DEFAULT 0,
        last_poll_at TEXT, last_ok_at TEXT, last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (entity, project)
    );
    CREATE TABLE runs (
        path TEXT PRIMARY KEY, entity TEXT NOT NULL, project TEXT NOT NULL,
        memory TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE INDEX runs_by_project ON runs (entity, project);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL, dedupe_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        text TEXT NOT NULL, buttons TEXT NOT NULL DEFAULT '[]', photo BLOB,
        created_at TEXT NOT NULL, not_before TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        sent_at TEXT, message_id INTEGER, dead INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_pending ON outbox (sent_at, dead, not_before);
    CREATE TABLE notified (
        chat_id INTEGER NOT NULL, run_key TEXT NOT NULL, outbox_id INTEGER NOT NULL,
        PRIMARY KEY (chat_id, run_key)
    );
    CREATE TABLE callbacks (
        token TEXT PRIMARY KEY, action TEXT NOT NULL, target TEXT NOT NULL,
        chat_id INTEGER, user_id INTEGER, created_at TEXT NOT NULL, expires_at TEXT
    );
    CREATE TABLE sweeps (
        path TEXT PRIMARY KEY, name TEXT NOT NULL, chat_id INTEGER NOT NULL,
        count INTEGER NOT NULL, agents INTEGER NOT NULL, gpus TEXT NOT NULL DEFAULT '',
        started_by INTEGER, started_at TEXT NOT NULL, card_message_id INTEGER,
        card_text TEXT, finished_at TEXT, failures TEXT NOT NULL DEFAULT '[]',
        breaker_tripped INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE agents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, sweep_path TEXT NOT NULL, idx INTEGER NOT NULL,
        pid INTEGER NOT NULL, pgid INTEGER NOT NULL, cmdline TEXT NOT NULL,
        log_path TEXT NOT NULL, gpus TEXT NOT NULL DEFAULT '', started_at TEXT NOT NULL,
        ended_at TEXT, exit_code INTEGER, reported INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE silences (
        chat_id INTEGER NOT NULL, entity TEXT NOT NULL, project TEXT NOT NULL,
        until TEXT NOT NULL, PRIMARY KEY (chat_id, entity, project)
    );
    CREATE TABLE digests (
        chat_id INTEGER PRIMARY KEY, last_sent_at TEXT, best TEXT NOT NULL DEFAULT '{}'
    );
    """,
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message to write to the outbox: who gets it, what it says, what it covers."""

    chat_id: int
    dedupe_key: str
    kind: str
    text: str
    buttons: tuple[tuple[Mapping[str, Any], ...], ...] = ()
    photo: bytes | None = None
    run_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A pending outbox message as stored."""

    id: int
    chat_id: int
    dedupe_key: str
    kind: str
    text: str
    buttons: tuple[tuple[Mapping[str, Any], ...], ...]
    photo: bytes | None
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectState:
    """The monitor's bookkeeping of one watched project."""

    entity: str
    project: str
    watermark: datetime | None
    baseline_done: bool
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    failures: int
    active: bool


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """A `wandb agent` process the bot started, as stored."""

    id: int
    sweep_path: str
    idx: int
    pid: int
    pgid: int
    cmdline: tuple[str, ...]
    log_path: str
    gpus: str
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    reported: bool


@dataclass(frozen=True, slots=True)
class SweepRecord:
    """A sweep the bot started from a chat."""

    path: str
    name: str
    chat_id: int
    count: int
    agents: int
    gpus: str
    started_by: int | None
    started_at: datetime
    card_message_id: int | None
    card_text: str | None
    finished_at: datetime | None
    failures: tuple[datetime, ...]
    breaker_tripped: bool


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """What a short callback token stands for."""

    token: str
    action: str
    target: str
    chat_id: int | None
    user_id: int | None
    created_at: datetime
    expires_at: datetime | None


class Store:
    """Own the bot's SQLite file; every method is one short transaction."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @property
    def schema_version(self) -> int:
        """Return the schema version the file is at."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._tx():
            version = self.schema_version
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    # -- subscriptions and chats -------------------------------------------------------

    def subscribe(
        self, chat_id: int, entity: str, project: str, by: int | None, now: datetime
    ) -> bool:
        """Subscribe a chat to a project; return False when it already was."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?, ?, ?, ?)",
                (chat_id, entity, project, by, _iso(now)),
            )
            return cur.rowcount > 0

    def unsubscribe(self, chat_id: int, entity: str, project: str) -> bool:
        """Remove a chat's subscription; return False when there was none."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM subscriptions WHERE chat_id=? AND entity=? AND project=?",
                (chat_id, entity, project),
            )
            return cur.rowcount > 0

    def subscriptions(self) -> dict[int, set[tuple[str, str]]]:
        """Return the subscriptions added from chats: chat id → {(entity, project)}."""
        out: dict[int, set[tuple[str, str]]] = {}
        with self._lock:
            for row in self._db.execute("SELECT chat_id, entity, project FROM subscriptions"):
                out.setdefault(row["chat_id"], set()).add((row["entity"], row["project"]))
        return out

    def pause_chat(self, chat_id: int, reason: str) -> bool:
        """Stop sending to a chat (blocked or kicked); return True when newly paused."""
        with self._tx() as db:
            row = db.execute(
                "SELECT paused_reason FROM chats WHERE chat_id=?", (chat_id,)
            ).fetchone()
            if row is not None and row["paused_reason"]:
                return False
            db.execute(
                "INSERT INTO chats (chat_id, paused_reason) VALUES (?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET paused_reason=excluded.paused_reason",
                (chat_id, reason),
            )
            return True

    def resume_chat(self, chat_id: int) -> None:
        """Send to a chat again."""
        with self._tx() as db:
            db.execute("UPDATE chats SET paused_reason=NULL WHERE chat_id=?", (chat_id,))

    def paused_chats(self) -> dict[int, str]:
        """Return the paused chats and why."""
        with self._lock:
            rows = self._db.execute(
                "SELECT chat_id, paused_reason FROM chats WHERE paused_reason IS NOT NULL"
            ).fetchall()
        return {row["chat_id"]: row["paused_reason"] for row in rows}

    def migrate_chat(self, old_id: int, new_id: int) -> None:
        """Move everything of a group that became a supergroup to its new id."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO subscriptions "
                "SELECT ?, entity, project, added_by, added_at FROM subscriptions WHERE chat_id=?",
                (new_id, old_id),
            )
            db.execute("DELETE FROM subscriptions WHERE chat_id=?", (old_id,))
            db.execute(
                "UPDATE outbox SET chat_id=? WHERE chat_id=? AND sent_at IS NULL AND dead=0",
                (new_id, old_id),
            )
            db.execute("UPDATE OR IGNORE notified SET chat_id=? WHERE chat_id=?", (new_id, old_id))
            db.execute("UPDATE sweeps SET chat_id=? WHERE chat_id=?", (new_id, old_id))
            db.execute(
                "INSERT INTO chats (chat_id, migrated_to) VALUES (?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET migrated_to=excluded.migrated_to",
                (old_id, new_id),
            )

    def migrations(self) -> dict[int, int]:
        """Return old chat id → new chat id for every migrated group."""
        with self._lock:
            rows = self._db.execute(
                "SELECT chat_id, migrated_to FROM chats WHERE migrated_to IS NOT NULL"
            ).fetchall()
        return {row["chat_id"]: row["migrated_to"] for row in rows}

    # -- projects and runs ---------------------------------------------------------------

    def project_state(self, entity: str, project: str) -> ProjectState:
        """Return the monitor's bookkeeping of a project (empty when never polled)."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM projects WHERE entity=? AND project=?", (entity, project)
            ).fetchone()
        if row is None:
            return ProjectState(entity, project, None, False, None, None, None, 0, True)
        return self._project(row)

    def project_states(self) -> list[ProjectState]:
        """Return the bookkeeping of every project ever polled."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM projects ORDER BY entity, project").fetchall()
        return [self._project(row) for row in rows]

    @staticmethod
    def _project(row: sqlite3.Row) -> ProjectState:
        return ProjectState(
            entity=row["entity"],
            project=row["project"],
            watermark=_dt(row["watermark"]),
            baseline_done=bool(row["baseline_done"]),
            last_poll_at=_dt(row["last_poll_at"]),
            last_ok_at=_dt(row["last_ok_at"]),
            last_error=row["last_error"],
            failures=row["failures"],
            active=bool(row["active"]),
        )

    def run_memory(
        self, entity: str, project: str, paths: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Return what the bot remembers of a project's runs (only `paths`, when given)."""
        query = "SELECT path, memory FROM runs WHERE entity=? AND project=?"
        rows: list[sqlite3.Row] = []
        with self._lock:
            if paths is None:
                rows = self._db.execute(query, (entity, project)).fetchall()
            else:
                wanted = list(dict.fromkeys(paths))
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows += self._db.execute(
                        f"{query} AND path IN ({marks})",
                        (entity, project, *chunk),
                    ).fetchall()
        return {row["path"]: json.loads(row["memory"]) for row in rows}

    def unfinished_runs(self, entity: str, project: str) -> list[str]:
        """Return the paths of a project's runs last seen running or pending."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path FROM runs WHERE entity=? AND project=?"
                " AND json_extract(memory, '$.state') IN ('running', 'pending')",
                (entity, project),
            ).fetchall()
        return [row["path"] for row in rows]

    def prune_runs(self, before: datetime) -> int:
        """Forget runs that ended and have not changed since `before`.

        A forgotten run that W&B shows again later is old news to the monitor (its last
        heartbeat predates the poll window), so this never brings a notification back.
        """
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM runs WHERE updated_at<?"
                " AND json_extract(memory, '$.state') NOT IN ('running', 'pending')",
                (_iso(before),),
            )
            return cur.rowcount

    def record_poll(
        self,
        entity: str,
        project: str,
        *,
        now: datetime,
        watermark: datetime | None,
        active: bool,
        memory: Mapping[str, Mapping[str, Any]],
        messages: Sequence[OutboxItem],
    ) -> list[int]:
        """Persist one successful poll atomically: run memory, watermark, new messages.

        A message whose run keys were all notified to its chat already is dropped, so a
        poll repeated after a crash never repeats a notification. Returns new outbox ids.
        """
        with self._tx() as db:
            for path, mem in memory.items():
                db.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE "
                    "SET memory=excluded.memory, updated_at=excluded.updated_at",
                    (path, entity, project, json.dumps(mem, sort_keys=True), _iso(now)),
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
                    _iso(watermark) if watermark else None,
                    _iso(now),
                    _iso(now),
                    int(active),
                ),
            )
            return self._enqueue(db, messages, now)

    def record_poll_failure(self, entity: str, project: str, now: datetime, error: str) -> int:
        """Count a failed poll; return how many failed in a row."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO projects (entity, project, last_poll_at, last_error, failures)"
                " VALUES (?, ?, ?, ?, 1) ON CONFLICT(entity, project) DO UPDATE SET"
                " last_poll_at=excluded.last_poll_at, last_error=excluded.last_error,"
                " failures=failures+1",
                (entity, project, _iso(now), error),
            )
            row = db.execute(
                "SELECT failures FROM projects WHERE entity=? AND project=?", (entity, project)
            ).fetchone()
            return int(row["failures"])

    def forget_project(self, entity: str, project: str) -> None:
        """Drop a project's bookkeeping so a later watch starts from a new baseline."""
        with self._tx() as db:
            db.execute("DELETE FROM projects WHERE entity=? AND project=?", (entity, project))
            db.execute("DELETE FROM runs WHERE entity=? AND project=?", (entity, project))

    # -- outbox ------------------------------------------------------------------------

    def enqueue(self, messages: Iterable[OutboxItem], now: datetime) -> list[int]:
        """Write messages to the outbox; a known dedupe key is ignored."""
        with self._tx() as db:
            return self._enqueue(db, list(messages), now)

    @staticmethod
    def _enqueue(
        db: sqlite3.Connection, messages: Sequence[OutboxItem], now: datetime
    ) -> list[int]:
        ids: list[int] = []
        for msg in messages:
            if msg.run_keys:
                placeholders = ",".join("?" * len(msg.run_keys))
                seen = db.execute(
                    f"SELECT COUNT(*) FROM notified WHERE chat_id=? AND run_key IN ({placeholders})",  # noqa: S608
                    (msg.chat_id, *msg.run_keys),
                ).fetchone()[0]
                if seen == len(msg.run_keys):
                    continue
            cur = db.execute(
                "INSERT OR IGNORE INTO outbox (chat_id, dedupe_key, kind, text, buttons, photo,"
                " created_at, not_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    msg.chat_id,
                    msg.dedupe_key,
                    msg.kind,
                    msg.text,
                    json.dumps([list(row) for row in msg.buttons]),
                    msg.photo,
                    _iso(now),
                    _iso(now),
                ),
            )
            if cur.rowcount == 0:
                continue
            outbox_id = int(cur.lastrowid or 0)
            ids.append(outbox_id)
            for key in msg.run_keys:
                db.execute(
                    "INSERT OR IGNORE INTO notified VALUES (?, ?, ?)", (msg.chat_id, key, outbox_id)
                )
        return ids

    def due(self, now: datetime, limit: int = 50) -> list[OutboxRow]:
        """Return pending messages whose time has come, oldest first; paused chats wait."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE sent_at IS NULL AND dead=0 AND not_before<=?"
                " AND chat_id NOT IN (SELECT chat_id FROM chats WHERE paused_reason IS NOT NULL)"
                " ORDER BY id LIMIT ?",
                (_iso(now), limit),
            ).fetchall()
        return [
            OutboxRow(
                id=row["id"],
                chat_id=row["chat_id"],
                dedupe_key=row["dedupe_key"],
                kind=row["kind"],
                text=row["text"],
                buttons=tuple(tuple(r) for r in json.loads(row["buttons"])),
                photo=row["photo"],
                attempts=row["attempts"],
                created_at=datetime.fromisoformat(row["created_at"]),
            )
            for row in rows
        ]

    def next_due_at(self) -> datetime | None:
        """Return when the earliest pending message may be sent."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(not_before) AS t FROM outbox WHERE sent_at IS NULL AND dead=0"
                " AND chat_id NOT IN (SELECT chat_id FROM chats WHERE paused_reason IS NOT NULL)"
            ).fetchone()
        return _dt(row["t"])

    def mark_sent(self, outbox_id: int, message_id: int | None, now: datetime) -> None:
        """Record that Telegram accepted a message."""
        with self._tx() as db:
            db.execute(
                # A sent chart's bytes are of no more use; the row stays for dedupe.
                "UPDATE outbox SET sent_at=?, message_id=?, attempts=attempts+1, photo=NULL"
                " WHERE id=?",
                (_iso(now), message_id, outbox_id),
            )

    def retry_later(
        self, outbox_id: int, error: str, not_before: datetime, *, count: bool = True
    ) -> int:
        """Put a message back to be tried again at `not_before`; return its attempts."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET last_error=?, not_before=?, attempts=attempts+? WHERE id=?",
                (error, _iso(not_before), int(count), outbox_id),
            )
            row = db.execute("SELECT attempts FROM outbox WHERE id=?", (outbox_id,)).fetchone()
            return int(row["attempts"])

    def clear_text(self, outbox_id: int) -> None:
        """Forget a pending message's text once it went out ahead of its photo."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET text='' WHERE id=?", (outbox_id,))

    def dead_letter(self, outbox_id: int, reason: str) -> None:
        """Give up on a message for good, keeping the reason."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET dead=1, last_error=?, attempts=attempts+1 WHERE id=?",
                (reason, outbox_id),
            )

    def move_pending(self, old_chat: int, new_chat: int) -> None:
        """Point a chat's pending messages at its new id."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET chat_id=? WHERE chat_id=? AND sent_at IS NULL AND dead=0",
                (new_chat, old_chat),
            )

    def outbox_counts(self) -> dict[str, int]:
        """Return how many messages are pending, sent and dead."""
        with self._lock:
            row = self._db.execute(
                "SELECT SUM(sent_at IS NULL AND dead=0) AS pending, SUM(sent_at IS NOT NULL) AS sent,"
                " SUM(dead) AS dead FROM outbox"
            ).fetchone()
        return {k: int(row[k] or 0) for k in ("pending", "sent", "dead")}

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Return sent messages (newest last), for tests and /status."""
        query = "SELECT id, chat_id, dedupe_key, kind, message_id, sent_at FROM outbox WHERE sent_at IS NOT NULL"
        args: tuple[Any, ...] = ()
        if chat_id is not None:
            query += " AND chat_id=?"
            args = (chat_id,)
        with self._lock:
            return [dict(row) for row in self._db.execute(query + " ORDER BY id", args)]

    def dead_letters(self) -> list[dict[str, Any]]:
        """Return messages given up on, with their reasons."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, chat_id, dedupe_key, kind, last_error FROM outbox WHERE dead=1 ORDER BY id"
            ).fetchall()
        return [dict(row) for row in rows]

    # -- callbacks -----------------------------------------------------------------------

    def put_callback(
        self,
        action: str,
        target: str,
        now: datetime,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """Store what a button does and return a short token for its callback data."""
        token = secrets.token_urlsafe(9)
        with self._tx() as db:
            db.execute(
                "INSERT INTO callbacks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token,
                    action,
                    target,
                    chat_id,
                    user_id,
                    _iso(now),
                    _iso(expires_at) if expires_at else None,
                ),
            )
        return token

    def get_callback(self, token: str) -> CallbackRecord | None:
        """Return what a callback token stands for."""
        with self._lock:
            row = self._db.execute("SELECT * FROM callbacks WHERE token=?", (token,)).fetchone()
        if row is None:
            return None
        return CallbackRecord(
            token=row["token"],
            action=row["action"],
            target=row["target"],
            chat_id=row["chat_id"],
            user_id=row["user_id"],
            created_at=datetime.fromisoformat(row["created_at"]),
            expires_at=_dt(row["expires_at"]),
        )

    def pending_callbacks(self, action: str) -> dict[str, list[CallbackRecord]]:
        """Return the stored callbacks of one action, grouped by target."""
        with self._lock:
            rows = self._db.execute(
                "SELECT token FROM callbacks WHERE action=? ORDER BY created_at", (action,)
            ).fetchall()
        out: dict[str, list[CallbackRecord]] = {}
        for row in rows:
            record = self.get_callback(row["token"])
            if record is not None:
                out.setdefault(record.target, []).append(record)
        return out

    def prune_callbacks(self, before: datetime) -> int:
        """Forget buttons made before a time (old messages' buttons then say expired)."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM callbacks WHERE created_at<?", (_iso(before),))
            return cur.rowcount

    def drop_callback(self, token: str) -> None:
        """Forget a callback token once used."""
        with self._tx() as db:
            db.execute("DELETE FROM callbacks WHERE token=?", (token,))

    # -- sweeps and agents ---------------------------------------------------------------

    def add_sweep(self, record: SweepRecord) -> None:
        """Remember a sweep started from a chat."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.path,
                    record.name,
                    record.chat_id,
                    record.count,
                    record.agents,
                    record.gpus,
                    record.started_by,
                    _iso(record.started_at),
                    record.card_message_id,
                    record.card_text,
                    _iso(record.finished_at) if record.finished_at else None,
                    json.dumps([_iso(t) for t in record.failures]),
                    int(record.breaker_tripped),
                ),
            )

    def update_sweep(self, path: str, **fields: Any) -> None:
        """Change some fields of a started sweep."""
        allowed = {"card_message_id", "card_text", "finished_at", "failures", "breaker_tripped"}
        assert set(fields) <= allowed, fields
        values: list[Any] = []
        for key, value in fields.items():
            if isinstance(value, datetime):
                value = _iso(value)
            elif key == "failures":
                value = json.dumps([_iso(t) for t in value])
            values.append(value)
        assignments = ", ".join(f"{key}=?" for key in fields)
        with self._tx() as db:
            db.execute(f"UPDATE sweeps SET {assignments} WHERE path=?", (*values, path))  # noqa: S608

    def sweeps(self, *, active_only: bool = False) -> list[SweepRecord]:
        """Return the sweeps started from chats, newest first."""
        query = "SELECT * FROM sweeps"
        if active_only:
            query += " WHERE finished_at IS NULL"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY started_at DESC").fetchall()
        return [
            SweepRecord(
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
                finished_at=_dt(row["finished_at"]),
                failures=tuple(datetime.fromisoformat(t) for t in json.loads(row["failures"])),
                breaker_tripped=bool(row["breaker_tripped"]),
            )
            for row in rows
        ]

    def sweep(self, path: str) -> SweepRecord | None:
        """Return one started sweep by its path."""
        return next((s for s in self.sweeps() if s.path == path), None)

    def add_agent(
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
    ) -> int:
        """Remember an agent process; return its record id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO agents (sweep_path, idx, pid, pgid, cmdline, log_path, gpus, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sweep_path,
                    idx,
                    pid,
                    pgid,
                    json.dumps(list(cmdline)),
                    log_path,
                    gpus,
                    _iso(started_at),
                ),
            )
            return int(cur.lastrowid or 0)

    def agents(
        self, *, live_only: bool = False, sweep_path: str | None = None
    ) -> list[AgentRecord]:
        """Return agent records, optionally only those not known to have ended."""
        query = "SELECT * FROM agents WHERE 1=1"
        args: list[Any] = []
        if live_only:
            query += " AND ended_at IS NULL"
        if sweep_path is not None:
            query += " AND sweep_path=?"
            args.append(sweep_path)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [
            AgentRecord(
                id=row["id"],
                sweep_path=row["sweep_path"],
                idx=row["idx"],
                pid=row["pid"],
                pgid=row["pgid"],
                cmdline=tuple(json.loads(row["cmdline"])),
                log_path=row["log_path"],
                gpus=row["gpus"],
                started_at=datetime.fromisoformat(row["started_at"]),
                ended_at=_dt(row["ended_at"]),
                exit_code=row["exit_code"],
                reported=bool(row["reported"]),
            )
            for row in rows
        ]

    def end_agent(self, agent_id: int, exit_code: int | None, now: datetime) -> bool:
        """Record that an agent ended; return False when it was recorded already."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE agents SET ended_at=?, exit_code=? WHERE id=? AND ended_at IS NULL",
                (_iso(now), exit_code, agent_id),
            )
            return cur.rowcount > 0

    # -- silences and digests ------------------------------------------------------------

    def silence(self, chat_id: int, entity: str, project: str, until: datetime) -> None:
        """Mute a project's notifications in a chat until a time."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?)",
                (chat_id, entity, project, _iso(until)),
            )

    def unsilence(self, chat_id: int, entity: str, project: str) -> bool:
        """Lift a silence; return False when there was none."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM silences WHERE chat_id=? AND entity=? AND project=?",
                (chat_id, entity, project),
            )
            return cur.rowcount > 0

    def silences(self, now: datetime) -> dict[tuple[int, str, str], datetime]:
        """Return the silences still in force: (chat, entity, project) → until."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM silences WHERE until>?", (_iso(now),)).fetchall()
        return {
            (row["chat_id"], row["entity"], row["project"]): datetime.fromisoformat(row["until"])
            for row in rows
        }

    def digest_state(self, chat_id: int) -> tuple[datetime | None, dict[str, float | None]]:
        """Return when a chat's last digest went out and the bests it reported."""
        with self._lock:
            row = self._db.execute("SELECT * FROM digests WHERE chat_id=?", (chat_id,)).fetchone()
        if row is None:
            return None, {}
        return _dt(row["last_sent_at"]), json.loads(row["best"])

    def record_digest(
        self, chat_id: int, sent_at: datetime, best: Mapping[str, float | None]
    ) -> None:
        """Remember a digest's time and the bests it reported."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?)",
                (chat_id, _iso(sent_at), json.dumps(dict(best))),
            )
