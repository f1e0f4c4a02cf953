"""Callback tokens: what each button of a sent message does."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from bot.store.db import Database, iso, parse_time
from bot.store.records import CallbackRecord

# A claimed prompt's action: this prefix and who answered it.
ANSWERED = "answered:"


def drop_tokens(db: sqlite3.Connection, tokens: Sequence[str]) -> None:
    """Forget callback tokens inside the caller's transaction."""
    db.executemany("DELETE FROM callbacks WHERE token=?", [(t,) for t in tokens])


class CallbackRepository:
    """Map the short tokens in buttons' callback data to what the buttons do."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(
        self,
        action: str,
        target: str,
        now: datetime,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        expires_at: datetime | None = None,
        thread_id: int | None = None,
    ) -> str:
        """Store what a button does and return a short token for its callback data."""
        token = secrets.token_urlsafe(9)
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO callbacks (token, action, target, chat_id, user_id, created_at,"
                " expires_at, thread_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token,
                    action,
                    target,
                    chat_id,
                    user_id,
                    iso(now),
                    iso(expires_at) if expires_at else None,
                    thread_id,
                ),
            )
        return token

    def get(self, token: str) -> CallbackRecord | None:
        """Return what a callback token stands for."""
        with self._db.read() as db:
            row = db.execute("SELECT * FROM callbacks WHERE token=?", (token,)).fetchone()
        return None if row is None else _record(row)

    def pending(self, action: str) -> dict[str, list[CallbackRecord]]:
        """Return the stored callbacks of one action, grouped by target."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT * FROM callbacks WHERE action=? ORDER BY created_at", (action,)
            ).fetchall()
        out: dict[str, list[CallbackRecord]] = {}
        for row in rows:
            out.setdefault(row["target"], []).append(_record(row))
        return out

    def prune(self, before: datetime) -> int:
        """Forget buttons made before a time (old messages' buttons then say expired)."""
        with self._db.tx() as db:
            cur = db.execute("DELETE FROM callbacks WHERE created_at<?", (iso(before),))
            return cur.rowcount

    def claim(self, token: str, by: str) -> str | None:
        """Mark a prompt answered by `by`, once: return its action, None if already answered.

        Both buttons of a prompt share one token, so the first answer revokes both in one
        transaction; a later press finds who answered in the token's place.
        """
        with self._db.tx() as db:
            row = db.execute("SELECT action FROM callbacks WHERE token=?", (token,)).fetchone()
            if row is None or row["action"].startswith(ANSWERED):
                return None
            db.execute("UPDATE callbacks SET action=? WHERE token=?", (ANSWERED + by, token))
            return str(row["action"])

    def reopen(self, token: str, action: str) -> None:
        """Undo a claim whose answer could not be carried out, so the prompt can be answered."""
        with self._db.tx() as db:
            db.execute("UPDATE callbacks SET action=? WHERE token=?", (action, token))

    def drop(self, token: str) -> None:
        """Forget a callback token once used."""
        with self._db.tx() as db:
            drop_tokens(db, (token,))


def _record(row: sqlite3.Row) -> CallbackRecord:
    return CallbackRecord(
        token=row["token"],
        action=row["action"],
        target=row["target"],
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=parse_time(row["expires_at"]),
        thread_id=row["thread_id"],
    )
