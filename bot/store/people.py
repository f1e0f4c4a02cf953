"""Who asked with /mine to hear about their own runs in private."""

from __future__ import annotations

from datetime import datetime

from bot.store.db import Database, iso


class PeopleRepository:
    """Keep `/mine` subscriptions: one row per Telegram user, kept across restarts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def subscribe(self, user_id: int, now: datetime) -> bool:
        """Subscribe a person to their own runs; return False when they already were."""
        with self._db.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO mine (user_id, since) VALUES (?, ?)", (user_id, iso(now))
            )
            return cur.rowcount > 0

    def unsubscribe(self, user_id: int) -> bool:
        """End a person's subscription; return False when there was none."""
        with self._db.tx() as db:
            return db.execute("DELETE FROM mine WHERE user_id=?", (user_id,)).rowcount > 0

    def since(self, user_id: int) -> datetime | None:
        """Return since when a person is subscribed, None when they are not."""
        with self._db.read() as db:
            row = db.execute("SELECT since FROM mine WHERE user_id=?", (user_id,)).fetchone()
        return datetime.fromisoformat(row["since"]) if row else None

    def subscribers(self) -> list[int]:
        """Return every subscribed Telegram user."""
        with self._db.read() as db:
            return [int(row["user_id"]) for row in db.execute("SELECT user_id FROM mine")]
