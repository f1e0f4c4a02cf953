"""Forum topics the bot opened, per chat and project, and why a chat could not have them."""

from __future__ import annotations

from datetime import datetime

from bot.store.db import Database, iso


class TopicRepository:
    """Remember each topic the bot opened once, so a restart never opens it again."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def thread(self, chat_id: int, key: str) -> int | None:
        """Return the thread of the topic opened for `key` in a chat, None before it was."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT thread_id FROM topics WHERE chat_id=? AND key=?", (chat_id, key)
            ).fetchone()
        return int(row["thread_id"]) if row else None

    def remember(self, chat_id: int, key: str, thread_id: int, name: str, now: datetime) -> None:
        """Keep the topic just opened for `key`; a chat that can have topics has no problem."""
        with self._db.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?, ?)",
                (chat_id, key, thread_id, name, iso(now)),
            )
            db.execute("DELETE FROM topic_problems WHERE chat_id=?", (chat_id,))

    def forget(self, chat_id: int, key: str, thread_id: int) -> None:
        """Drop a topic that no longer exists (unless another was kept for `key` since)."""
        with self._db.tx() as db:
            db.execute(
                "DELETE FROM topics WHERE chat_id=? AND key=? AND thread_id=?",
                (chat_id, key, thread_id),
            )

    def problem(self, chat_id: int) -> str | None:
        """Return why the chat's messages cannot go to their topics, None when they can."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT reason FROM topic_problems WHERE chat_id=?", (chat_id,)
            ).fetchone()
        return str(row["reason"]) if row else None

    def report_problem(self, chat_id: int, reason: str, now: datetime) -> bool:
        """Keep why topics fail in a chat; return True when the chat has not been told yet."""
        with self._db.tx() as db:
            row = db.execute(
                "SELECT reason FROM topic_problems WHERE chat_id=?", (chat_id,)
            ).fetchone()
            if row is not None and row["reason"] == reason:
                return False
            db.execute(
                "INSERT OR REPLACE INTO topic_problems VALUES (?, ?, ?)",
                (chat_id, reason, iso(now)),
            )
            return True
