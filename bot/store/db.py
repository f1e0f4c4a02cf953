"""The one SQLite connection, its schema migrations and its transaction helper."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from wandb_client.files import private_dir, private_file

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
    # Agents run through launchers (local, slurm): each keeps the launcher's opaque handle.
    """
    ALTER TABLE agents ADD COLUMN launcher TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE agents ADD COLUMN handle TEXT NOT NULL DEFAULT '';
    ALTER TABLE agents ADD COLUMN host TEXT NOT NULL DEFAULT '';
    ALTER TABLE sweeps ADD COLUMN launcher TEXT NOT NULL DEFAULT 'local';
    UPDATE agents SET handle = json_object('pid', pid, 'pgid', pgid, 'cmdline', json(cmdline));
    """,
    # The outbox worker reads only unsent rows, by chat: keep them apart from sent history.
    """
    CREATE INDEX outbox_unsent ON outbox (chat_id, id) WHERE sent_at IS NULL AND dead=0;
    """,
    # Metric alerts: per (run, rule) state, finished runs' values for baselines, mutes;
    # and the outbox learns to answer an earlier message (an alert's "resolved" reply).
    """
    CREATE TABLE alert_states (
        path TEXT NOT NULL, rule TEXT NOT NULL, entity TEXT NOT NULL, project TEXT NOT NULL,
        state TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (path, rule)
    );
    CREATE INDEX alert_states_by_project ON alert_states (entity, project);
    CREATE TABLE alert_values (
        entity TEXT NOT NULL, project TEXT NOT NULL, metric TEXT NOT NULL,
        run_id TEXT NOT NULL, value REAL NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (entity, project, metric, run_id)
    );
    CREATE TABLE alert_mutes (
        entity TEXT NOT NULL, project TEXT NOT NULL, rule TEXT NOT NULL, until TEXT NOT NULL,
        PRIMARY KEY (entity, project, rule)
    );
    ALTER TABLE outbox ADD COLUMN reply_to TEXT
    """,
    # Forum topics: a row goes to an explicit thread, or to the topic of its key (a project)
    # found when sent; a sweep keeps the thread it was started in; a chat keeps the topics
    # the bot created in it and why it could not.
    """
    ALTER TABLE outbox ADD COLUMN thread_id INTEGER;
    ALTER TABLE outbox ADD COLUMN topic TEXT;
    ALTER TABLE sweeps ADD COLUMN thread_id INTEGER;
    CREATE TABLE topics (
        chat_id INTEGER NOT NULL, key TEXT NOT NULL, thread_id INTEGER NOT NULL,
        name TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (chat_id, key)
    );
    CREATE TABLE topic_problems (
        chat_id INTEGER PRIMARY KEY, reason TEXT NOT NULL, since TEXT NOT NULL
    )
    """,
    # A stop's confirmation answers in the forum topic the stop was asked in.
    """
    ALTER TABLE callbacks ADD COLUMN thread_id INTEGER
    """,
    # People: who hears of their own runs in private (/mine); and a message to a person in
    # quiet hours is held until they end, apart from `not_before` so it delays no other.
    """
    CREATE TABLE mine (user_id INTEGER PRIMARY KEY, since TEXT NOT NULL);
    ALTER TABLE outbox ADD COLUMN held_until TEXT
    """,
)


def iso(moment: datetime) -> str:
    """Return a moment as the UTC ISO text the tables keep."""
    return moment.astimezone(UTC).isoformat()


def parse_time(text: str | None) -> datetime | None:
    """Return the moment an ISO text stands for (None for none)."""
    return datetime.fromisoformat(text) if text else None


class Database:
    """Own the connection: every repository reads under its lock and writes in `tx()`."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            # Runs, configs and chat ids are the lab's business only: 0700 and 0600.
            private_dir(Path(path).parent)
            for suffix in ("", "-wal", "-shm"):
                file = Path(self.path + suffix)
                if not suffix or file.exists():
                    private_file(file)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
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
        with self.tx():
            version = self.schema_version
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction: all of it is kept, or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Hold the connection for a read (one thread at a time uses it)."""
        with self._lock:
            yield self._db

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
