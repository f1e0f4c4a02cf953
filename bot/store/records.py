"""The values the repositories take and return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.render import Buttons


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message to write to the outbox: who gets it, what it says, what it covers."""

    chat_id: int
    dedupe_key: str
    kind: str
    text: str
    buttons: Buttons = ()
    photo: bytes | None = None
    run_keys: tuple[str, ...] = ()
    #: The dedupe key of an earlier message this one answers (sent as a reply to it).
    reply_to: str | None = None
    #: The forum topic (message_thread_id) it goes to when its `topic` has none in the chat.
    thread_id: int | None = None
    #: What it is about (a project's `entity/project`): a chat's topic for it is used first.
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A pending outbox message as stored."""

    id: int
    chat_id: int
    dedupe_key: str
    kind: str
    text: str
    buttons: Buttons
    photo: bytes | None
    attempts: int
    created_at: datetime
    reply_to: str | None = None
    thread_id: int | None = None
    topic: str | None = None
    #: Until when the message waited out its person's quiet hours, if it did.
    held_until: datetime | None = None

    @property
    def queued_at(self) -> datetime:
        """Return since when the message has been waiting to go: its age counts from here."""
        return max(self.created_at, self.held_until or self.created_at)


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
    launcher: str = "local"
    #: The launcher's opaque handle (JSON by convention), handed back to it to adopt or stop.
    handle: str = ""
    host: str = ""


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
    launcher: str = "local"
    #: The forum topic it was started in (its card and reports go there), None for none.
    thread_id: int | None = None


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
    #: The forum topic it was put in (a stop waiting to be confirmed answers there).
    thread_id: int | None = None
