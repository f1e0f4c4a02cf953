"""SQLite by concern: one connection, small repositories, one cross-table unit of work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.store.alerts import AlertRepository
from bot.store.callbacks import CallbackRepository, drop_tokens
from bot.store.chats import ChatRepository, DigestRepository, SilenceRepository
from bot.store.db import MIGRATIONS, Database
from bot.store.outbox import OutboxRepository, insert_messages, mark_told
from bot.store.people import PeopleRepository
from bot.store.records import (
    AgentRecord,
    CallbackRecord,
    OutboxItem,
    OutboxRow,
    ProjectState,
    SweepRecord,
)
from bot.store.runs import RunRepository
from bot.store.sweeps import AgentRepository, SweepRepository
from bot.store.topics import TopicRepository

__all__ = [
    "MIGRATIONS",
    "AgentRecord",
    "AgentRepository",
    "AlertRepository",
    "CallbackRecord",
    "CallbackRepository",
    "ChatRepository",
    "Database",
    "DigestRepository",
    "OutboxItem",
    "OutboxRepository",
    "OutboxRow",
    "PeopleRepository",
    "ProjectState",
    "RunRepository",
    "SilenceRepository",
    "Store",
    "SweepRecord",
    "SweepRepository",
    "TopicRepository",
]


class Store:
    """Open the bot's SQLite file and hand out one repository per concern."""

    def __init__(self, path: Path | str) -> None:
        self.db = Database(path)
        self.runs = RunRepository(self.db)
        self.outbox = OutboxRepository(self.db)
        self.chats = ChatRepository(self.db)
        self.silences = SilenceRepository(self.db)
        self.digests = DigestRepository(self.db)
        self.callbacks = CallbackRepository(self.db)
        self.sweeps = SweepRepository(self.db)
        self.agents = AgentRepository(self.db)
        self.alerts = AlertRepository(self.db)
        self.topics = TopicRepository(self.db)
        self.people = PeopleRepository(self.db)

    @property
    def schema_version(self) -> int:
        """Return the schema version the file is at."""
        return self.db.schema_version

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
        used_callbacks: Sequence[str] = (),
        told: Sequence[tuple[int, str]] = (),
    ) -> list[int]:
        """Persist one successful poll atomically; return the new outbox ids.

        Run memory, watermark, new messages and the callback tokens those messages answer
        (a stop confirmation's `await_stop`) are written together or not at all, so a
        failed write neither loses a confirmation nor repeats a notification. `told` holds
        (chat, run key) pairs a sweep card tells instead of a message.
        """
        with self.db.tx() as db:
            self.runs.write_poll(
                db, entity, project, now=now, watermark=watermark, active=active, memory=memory
            )
            ids = insert_messages(db, messages, now)
            mark_told(db, told)
            drop_tokens(db, used_callbacks)
            return ids

    def close(self) -> None:
        """Close the database file."""
        self.db.close()
