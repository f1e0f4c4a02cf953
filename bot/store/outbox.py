"""The outbox: every notification is written here before it is sent."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.domain.render import Button, Buttons
from bot.store.db import Database, iso, parse_time
from bot.store.records import OutboxItem, OutboxRow

# Pending messages of chats that take them, each with its turn in its chat and the moment
# it and every older message of its chat may go.
_PENDING = (
    "WITH pending AS (SELECT *,"
    " ROW_NUMBER() OVER (PARTITION BY chat_id ORDER BY id) AS turn,"
    " MAX(not_before) OVER (PARTITION BY chat_id ORDER BY id ROWS UNBOUNDED PRECEDING)"
    " AS ready_at FROM outbox WHERE sent_at IS NULL AND dead=0"
    " AND chat_id NOT IN (SELECT chat_id FROM chats WHERE paused_reason IS NOT NULL))"
)


def encode_buttons(buttons: Buttons) -> str:
    """Return buttons as the JSON the outbox keeps."""
    return json.dumps([[dataclasses.asdict(b) for b in row] for row in buttons])


def decode_buttons(text: str) -> Buttons:
    """Return the buttons the outbox kept as JSON."""
    return tuple(tuple(Button(**b) for b in row) for row in json.loads(text))


def insert_messages(
    db: sqlite3.Connection, messages: Sequence[OutboxItem], now: datetime
) -> list[int]:
    """Write messages inside the caller's transaction; return the ids of the new rows.

    A known dedupe key is ignored, and so is a message whose run keys were all notified to
    its chat already: a poll repeated after a crash never repeats a notification.
    """
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
            " created_at, not_before, reply_to, thread_id, topic)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                msg.chat_id,
                msg.dedupe_key,
                msg.kind,
                msg.text,
                encode_buttons(msg.buttons),
                msg.photo,
                iso(now),
                iso(now),
                msg.reply_to,
                msg.thread_id,
                msg.topic,
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


# The outbox id of a run told without a message of its own (folded into a sweep card).
TOLD_ELSEWHERE = 0


def mark_told(db: sqlite3.Connection, told: Iterable[tuple[int, str]]) -> None:
    """Record runs a chat was told of another way, inside the caller's transaction."""
    db.executemany(
        "INSERT OR IGNORE INTO notified VALUES (?, ?, ?)",
        [(chat_id, key, TOLD_ELSEWHERE) for chat_id, key in told],
    )


class OutboxRepository:
    """Queue messages, hand out the due ones, and record how each attempt went."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(self, messages: Iterable[OutboxItem], now: datetime) -> list[int]:
        """Write messages to the outbox; a known dedupe key is ignored."""
        with self._db.tx() as db:
            return insert_messages(db, list(messages), now)

    def due(self, now: datetime, limit: int = 50) -> list[OutboxRow]:
        """Return messages that may go now, fairly: each chat's oldest first, chat by chat.

        A message is due once it and every older message of its chat are due, so a chat's
        messages keep their order; chats that refused the bot wait until they come back.
        A message held for quiet hours waits alone: it holds back no other message.
        """
        with self._db.read() as db:
            rows = db.execute(
                f"{_PENDING} SELECT * FROM pending WHERE ready_at<=?"  # noqa: S608
                " AND (held_until IS NULL OR held_until<=?) ORDER BY turn, id LIMIT ?",
                (iso(now), iso(now), limit),
            ).fetchall()
        return [_row(row) for row in rows]

    def next_due_at(self) -> datetime | None:
        """Return when the earliest pending message may be sent."""
        with self._db.read() as db:
            row = db.execute(
                f"{_PENDING} SELECT MIN(MAX(ready_at, COALESCE(held_until, ready_at))) AS t"  # noqa: S608
                " FROM pending"
            ).fetchone()
        return parse_time(row["t"])

    def waiting(self, now: datetime) -> int:
        """Return how many messages written before `now` wait for chats that take them."""
        with self._db.read() as db:
            row = db.execute(
                f"{_PENDING} SELECT COUNT(*) FROM pending WHERE created_at<=?",  # noqa: S608
                (iso(now),),
            ).fetchone()
        return int(row[0])

    def mark_sent(self, outbox_id: int, message_id: int | None, now: datetime) -> None:
        """Record that Telegram accepted a message."""
        with self._db.tx() as db:
            db.execute(
                # A sent chart's bytes are of no more use; the row stays for dedupe.
                "UPDATE outbox SET sent_at=?, message_id=?, attempts=attempts+1, photo=NULL"
                " WHERE id=?",
                (iso(now), message_id, outbox_id),
            )

    def retry_later(
        self, outbox_id: int, error: str, not_before: datetime, *, count: bool = True
    ) -> int:
        """Put a message back to be tried again at `not_before`; return its attempts."""
        with self._db.tx() as db:
            row = db.execute(
                "UPDATE outbox SET last_error=?, not_before=?, attempts=attempts+? WHERE id=?"
                " RETURNING attempts",
                (error, iso(not_before), int(count), outbox_id),
            ).fetchone()
            return int(row["attempts"])

    def hold(self, outbox_id: int, until: datetime | None) -> None:
        """Keep a message back until `until` (quiet hours; None: no more); others may go."""
        with self._db.tx() as db:
            db.execute(
                "UPDATE outbox SET held_until=? WHERE id=?",
                (iso(until) if until else None, outbox_id),
            )

    def held(self, now: datetime) -> list[tuple[int, int, str]]:
        """Return (id, chat, kind) of the unsent messages held beyond `now`."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT id, chat_id, kind FROM outbox WHERE sent_at IS NULL AND dead=0"
                " AND held_until>?",
                (iso(now),),
            ).fetchall()
        return [(int(r["id"]), int(r["chat_id"]), str(r["kind"])) for r in rows]

    def message_id(self, dedupe_key: str) -> int | None:
        """Return the Telegram message id a sent message got, by its dedupe key."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT message_id FROM outbox WHERE dedupe_key=?", (dedupe_key,)
            ).fetchone()
        return int(row["message_id"]) if row and row["message_id"] is not None else None

    def clear_text(self, outbox_id: int) -> None:
        """Forget a pending message's text once it went out ahead of its photo."""
        with self._db.tx() as db:
            db.execute("UPDATE outbox SET text='' WHERE id=?", (outbox_id,))

    def dead_letter(self, outbox_id: int, reason: str) -> None:
        """Give up on a message for good, keeping the reason."""
        with self._db.tx() as db:
            db.execute(
                "UPDATE outbox SET dead=1, last_error=?, attempts=attempts+1 WHERE id=?",
                (reason, outbox_id),
            )

    def counts(self) -> dict[str, int]:
        """Return how many messages are pending, sent and dead."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT SUM(sent_at IS NULL AND dead=0) AS pending,"
                " SUM(sent_at IS NOT NULL) AS sent, SUM(dead) AS dead FROM outbox"
            ).fetchone()
        return {k: int(row[k] or 0) for k in ("pending", "sent", "dead")}

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Return sent messages (newest last), for tests and /status."""
        query = (
            "SELECT id, chat_id, dedupe_key, kind, message_id, sent_at FROM outbox"
            " WHERE sent_at IS NOT NULL"
        )
        args: tuple[Any, ...] = ()
        if chat_id is not None:
            query += " AND chat_id=?"
            args = (chat_id,)
        with self._db.read() as db:
            return [dict(row) for row in db.execute(query + " ORDER BY id", args)]

    def dead_letters(self) -> list[dict[str, Any]]:
        """Return messages given up on, with their reasons."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT id, chat_id, dedupe_key, kind, last_error FROM outbox WHERE dead=1"
                " ORDER BY id"
            ).fetchall()
        return [dict(row) for row in rows]


def _row(row: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        chat_id=row["chat_id"],
        dedupe_key=row["dedupe_key"],
        kind=row["kind"],
        text=row["text"],
        buttons=decode_buttons(row["buttons"]),
        photo=row["photo"],
        attempts=row["attempts"],
        created_at=datetime.fromisoformat(row["created_at"]),
        reply_to=row["reply_to"],
        thread_id=row["thread_id"],
        topic=row["topic"],
        held_until=parse_time(row["held_until"]),
    )
