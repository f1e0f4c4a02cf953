"""Decide who hears about a poll's events: subscriptions, silences, migrations, stop replies.

A run of a sweep whose live card sits in a chat folds into that card there: the chat gets
no message of its own for a finish or a kill, only for a failure, a crash or a stall.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.control import render_stop_confirmed
from bot.domain.events import RunEvent
from bot.domain.keys import SweepKey
from bot.domain.notify import Notification, notifications_for, personal_notifications
from config.lab import LabConfig

# A stop is confirmed by whatever ended the run: the kill it asked for or an end that came first.
ENDED_KINDS = frozenset({"killed", "finished", "failed", "crashed"})
# What a sweep's card tells by itself (progress, best so far); the rest needs a message.
FOLDED_KINDS = frozenset({"finished", "killed"})


@dataclass(frozen=True, slots=True)
class StopWaiter:
    """Someone who asked to stop a run and waits for W&B to show it ended."""

    token: str
    chat_id: int
    #: The forum topic the stop was asked in: its confirmation answers there.
    thread_id: int | None = None


@dataclass(frozen=True, slots=True)
class RoutingData:
    """What routing needs beyond the lab file, read from the store once per poll."""

    subscriptions: Mapping[int, Collection[str]] = field(default_factory=dict)
    silenced: Collection[tuple[int, str]] = ()
    migrations: Mapping[int, int] = field(default_factory=dict)
    stop_waiters: Mapping[str, Sequence[StopWaiter]] = field(default_factory=dict)
    #: Telegram users who asked with /mine to hear of their own runs in private.
    mine: Collection[int] = ()
    # Sweeps whose runs fold into their live card, each with the chat that shows the card.
    cards: Mapping[SweepKey, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Routed:
    """The messages a poll's events make, the stop requests they answer, and what folded.

    `folded` holds (chat id, run event key) pairs that a sweep card tells instead of a
    message: they are recorded as told, so no later poll announces them.
    """

    notifications: tuple[Notification, ...]
    answered: tuple[str, ...]
    folded: tuple[tuple[int, str], ...] = ()


def follow_migrations(chat_id: int, migrations: Mapping[int, int]) -> int:
    """Return the id a chat lives under now, following group → supergroup moves."""
    seen = {chat_id}
    while chat_id in migrations:
        chat_id = migrations[chat_id]
        if chat_id in seen:
            break
        seen.add(chat_id)
    return chat_id


def _muted(lab: LabConfig, data: RoutingData) -> set[tuple[int, str]]:
    """Return (chat, project path) pairs that are silenced now, under old ids too.

    A silence set in a migrated group is kept under its new id, while the lab file still
    names the old one.
    """
    muted = set(data.silenced)
    if muted and data.migrations:
        chats = {chat.id for chat in lab.chats} | set(data.subscriptions)
        for chat in chats:
            now_id = follow_migrations(chat, data.migrations)
            muted |= {(chat, path) for (silenced, path) in data.silenced if silenced == now_id}
    return muted


def _confirmations(events: Iterable[RunEvent], data: RoutingData) -> list[Notification]:
    out = []
    for event in events:
        if event.kind not in ENDED_KINDS:
            continue
        for waiter in data.stop_waiters.get(event.run.path, ()):
            out.append(
                Notification(
                    chat_id=waiter.chat_id,
                    dedupe_key=f"{waiter.chat_id}:stopped:{event.dedupe_key}",
                    text=render_stop_confirmed(event),
                    buttons=(),
                    run_keys=(event.dedupe_key,),
                    kind="stop-confirmed",
                    thread_id=waiter.thread_id,
                )
            )
    return out


def _answered(events: Iterable[RunEvent], data: RoutingData) -> tuple[str, ...]:
    return tuple(
        waiter.token
        for event in events
        if event.kind in ENDED_KINDS
        for waiter in data.stop_waiters.get(event.run.path, ())
    )


def card_chat(event: RunEvent, data: RoutingData) -> int | None:
    """Return the chat (its current id) whose sweep card tells this event, if one does."""
    run = event.run
    if event.kind not in FOLDED_KINDS or not run.sweep:
        return None
    chat = data.cards.get(SweepKey(run.entity, run.project, run.sweep))
    return None if chat is None else follow_migrations(chat, data.migrations)


def route(
    events: Sequence[RunEvent],
    lab: LabConfig,
    data: RoutingData,
    *,
    ui_url: str,
    burst_threshold: int = 3,
    sweep_params: Mapping[str, Sequence[str]] | None = None,
    usual: Mapping[str, Mapping[str, Any]] | None = None,
) -> Routed:
    """Return every message these events make, each addressed to the chat's current id."""
    if not events:
        return Routed((), ())
    notes = _confirmations(events, data)
    folded: list[tuple[int, str]] = []

    def folds(chat_id: int, event: RunEvent) -> bool:
        chat = card_chat(event, data)
        if chat is None or chat != follow_migrations(chat_id, data.migrations):
            return False
        folded.append((chat, event.dedupe_key))
        return True

    notes += notifications_for(
        events,
        lab,
        ui_url=ui_url,
        burst_threshold=burst_threshold,
        extra_subscriptions=data.subscriptions,
        muted=_muted(lab, data),
        sweep_params=sweep_params,
        folds=folds if data.cards else None,
        usual=usual,
    )
    notes += personal_notifications(
        events,
        lab,
        data.mine,
        ui_url=ui_url,
        burst_threshold=burst_threshold,
        sweep_params=sweep_params,
    )
    moved = [
        replace(note, chat_id=follow_migrations(note.chat_id, data.migrations)) for note in notes
    ]
    return Routed(tuple(moved), _answered(events, data), tuple(folded))
