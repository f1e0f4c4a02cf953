"""Chats: subscriptions added from chats, paused and migrated chats, silences, digests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from bot.store.db import Database, iso, parse_time


class ChatRepository:
    """Keep which chat follows which project, which chats refused the bot, and moves."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def subscribe(
        self, chat_id: int, entity: str, project: str, by: int | None, now: datetime
    ) -> bool:
        """Subscribe a chat to a project; return False when it already was."""
        with self._db.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?, ?, ?, ?)",
                (chat_id, entity, project, by, iso(now)),
            )
            return cur.rowcount > 0

    def unsubscribe(self, chat_id: int, entity: str, project: str) -> bool:
        """Remove a chat's subscription; return False when there was none."""
        with self._db.tx() as db:
            cur = db.execute(
                "DELETE FROM subscriptions WHERE chat_id=? AND entity=? AND project=?",
                (chat_id, entity, project),
            )
            return cur.rowcount > 0

    def subscriptions(self) -> dict[int, set[tuple[str, str]]]:
        """Return the subscriptions added from chats: chat id → {(entity, project)}."""
        out: dict[int, set[tuple[str, str]]] = {}
        with self._db.read() as db:
            for row in db.execute("SELECT chat_id, entity, project FROM subscriptions"):
                out.setdefault(row["chat_id"], set()).add((row["entity"], row["project"]))
        return out

    def pause(self, chat_id: int, reason: str) -> bool:
        """Stop sending to a chat (blocked or kicked); return True when newly paused."""
        with self._db.tx() as db:
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

    def resume(self, chat_id: int) -> int:
        """Send to a chat again; return how many of its messages were held meanwhile."""
        with self._db.tx() as db:
            cur = db.execute(
                "UPDATE chats SET paused_reason=NULL WHERE chat_id=? AND paused_reason IS NOT NULL",
                (chat_id,),
            )
            if cur.rowcount == 0:
                return 0
            row = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE chat_id=? AND sent_at IS NULL AND dead=0",
                (chat_id,),
            ).fetchone()
            return int(row[0])

    def paused(self) -> dict[int, str]:
        """Return the paused chats and why."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT chat_id, paused_reason FROM chats WHERE paused_reason IS NOT NULL"
            ).fetchall()
        return {row["chat_id"]: row["paused_reason"] for row in rows}

    def migrate(self, old_id: int, new_id: int) -> None:
        """Move everything of a group that became a supergroup to its new id."""
        with self._db.tx() as db:
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
        with self._db.read() as db:
            rows = db.execute(
                "SELECT chat_id, migrated_to FROM chats WHERE migrated_to IS NOT NULL"
            ).fetchall()
        return {row["chat_id"]: row["migrated_to"] for row in rows}


class SilenceRepository:
    """Keep which chat muted which project until when."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, chat_id: int, entity: str, project: str, until: datetime) -> None:
        """Mute a project's notifications in a chat until a time."""
        with self._db.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?)",
                (chat_id, entity, project, iso(until)),
            )

    def remove(self, chat_id: int, entity: str, project: str) -> bool:
        """Lift a silence; return False when there was none."""
        with self._db.tx() as db:
            cur = db.execute(
                "DELETE FROM silences WHERE chat_id=? AND entity=? AND project=?",
                (chat_id, entity, project),
            )
            return cur.rowcount > 0

    def active(self, now: datetime) -> dict[tuple[int, str, str], datetime]:
        """Return the silences still in force: (chat, entity, project) → until."""
        with self._db.read() as db:
            rows = db.execute("SELECT * FROM silences WHERE until>?", (iso(now),)).fetchall()
        return {
            (row["chat_id"], row["entity"], row["project"]): datetime.fromisoformat(row["until"])
            for row in rows
        }


class DigestRepository:
    """Keep when each chat's last digest went out and the bests it reported."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def state(self, chat_id: int) -> tuple[datetime | None, dict[str, float | None]]:
        """Return when a chat's last digest went out and the bests it reported."""
        with self._db.read() as db:
            row = db.execute("SELECT * FROM digests WHERE chat_id=?", (chat_id,)).fetchone()
        if row is None:
            return None, {}
        return parse_time(row["last_sent_at"]), json.loads(row["best"])

    def record(self, chat_id: int, sent_at: datetime, best: Mapping[str, float | None]) -> None:
        """Remember a digest's time and the bests it reported."""
        with self._db.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?)",
                (chat_id, iso(sent_at), json.dumps(dict(best))),
            )
