"""Decide which chat hears about which run events, grouping bursts into few messages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.events import RunEvent
from bot.domain.people import MINE_KINDS, is_urgent, mention
from bot.domain.render import Button as Button
from bot.domain.render import Buttons, render_burst, render_run_event
from config.lab import ALL_EVENTS, EventKind, LabConfig

__all__ = [
    "Button",
    "Notification",
    "chat_timezone",
    "notifications_for",
    "personal_notifications",
    "subscribed_projects",
]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one chat, ready for the outbox."""

    chat_id: int
    dedupe_key: str
    text: str
    buttons: Buttons
    run_keys: tuple[str, ...]
    kind: str
    #: The project it is about (`entity/project`): a forum chat's topic for it gets it.
    topic: str | None = None
    #: The forum topic it answers in when its project has none (where a command was asked).
    thread_id: int | None = None


@dataclass(frozen=True, slots=True)
class _Subscription:
    chat_id: int
    projects: frozenset[str]
    kinds: frozenset[EventKind]
    tz: tzinfo | None


def _qualify(item: str, lab: LabConfig) -> str:
    """Return `entity/project` for a subscription written as `project` or `entity/project`."""
    if "/" in item:
        return item
    return f"{lab.entity_of(item)}/{item}"


def subscribed_projects(lab: LabConfig, chat_id: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Return the `entity/project` paths a chat hears about (lab file plus /watch)."""
    chat = lab.chat(chat_id)
    items = [*(chat.projects if chat else ()), *extra]
    return frozenset(_qualify(item, lab) for item in items)


def chat_timezone(lab: LabConfig, chat_id: int, default: tzinfo | None = None) -> tzinfo | None:
    """Return the chat's time zone (its own, its digest's, the lab's), else `default`."""
    chat = lab.chat(chat_id)
    named = chat is not None and (chat.timezone or chat.digest is not None)
    if named or lab.timezone:
        return ZoneInfo(lab.chat_zone(chat_id) if named else lab.timezone or "UTC")
    return default


def _subscriptions(
    lab: LabConfig,
    extra: Mapping[int, Iterable[str]],
    paused: frozenset[int],
    tz: tzinfo | None,
    muted: Collection[tuple[int, str]],
) -> list[_Subscription]:
    ids = [chat.id for chat in lab.chats] + [cid for cid in extra if lab.chat(cid) is None]
    out = []
    for chat_id in ids:
        if chat_id in paused:
            continue
        chat = lab.chat(chat_id)
        kinds = frozenset(chat.events if chat else ALL_EVENTS)
        projects = subscribed_projects(lab, chat_id, extra.get(chat_id, ()))
        if muted:
            projects = frozenset(p for p in projects if (chat_id, p) not in muted)
        if projects:
            out.append(_Subscription(chat_id, projects, kinds, chat_timezone(lab, chat_id, tz)))
    return out


def _short_hash(keys: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()
    return digest[:12]


def notifications_for(
    events: Iterable[RunEvent],
    lab: LabConfig,
    *,
    ui_url: str,
    burst_threshold: int = 3,
    tz: tzinfo | None = None,
    extra_subscriptions: Mapping[int, Iterable[str]] | None = None,
    paused_chats: Iterable[int] = (),
    muted: Collection[tuple[int, str]] = (),
    sweep_params: Mapping[str, Sequence[str]] | None = None,
    folds: Callable[[int, RunEvent], bool] | None = None,
    usual: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Notification]:
    """Return the messages these events make, per subscribed chat, bursts grouped.

    Events of one project and sweep that arrive together become one message (a few when
    long) once there are `burst_threshold` of them; fewer become one message each.
    `sweep_params` (sweep id → its parameter names) puts a sweep run's own parameters first.
    `muted` holds (chat id, `entity/project`) pairs silenced for now. Each run's owner is
    named, as a mention when `people:` maps them. `folds(chat, event)` says an event is told
    another way in that chat (a sweep's card): it makes no message. `usual` (`entity/project`
    → its usual parameter values) keeps constants off the message.
    """
    batch = list(events)
    extra = {cid: tuple(items) for cid, items in (extra_subscriptions or {}).items()}
    style = _Style(
        ui_url,
        burst_threshold,
        sweep_params or {},
        lambda u: mention(u, lab.people),
        True,
        usual or {},
    )
    out: list[Notification] = []
    for sub in _subscriptions(lab, extra, frozenset(paused_chats), tz, muted):
        heard = [
            e
            for e in batch
            if e.kind in sub.kinds
            and f"{e.run.entity}/{e.run.project}" in sub.projects
            and (folds is None or not folds(sub.chat_id, e))
        ]
        out += _chat_notifications(sub.chat_id, heard, lab, sub.tz, style)
    return out


def personal_notifications(
    events: Iterable[RunEvent],
    lab: LabConfig,
    subscribers: Iterable[int],
    *,
    ui_url: str,
    burst_threshold: int = 3,
    sweep_params: Mapping[str, Sequence[str]] | None = None,
) -> list[Notification]:
    """Return what `/mine` subscribers hear: their own runs' ends and stalls, in private.

    A subscriber no longer in `people:` hears nothing; nobody hears of another's runs.
    """
    batch = [e for e in events if e.kind in MINE_KINDS]
    # A private chat has no topics, and its reader owns every run in it.
    style = _Style(ui_url, burst_threshold, sweep_params or {}, lambda _user: "", False)
    out: list[Notification] = []
    for user_id in subscribers:
        found = lab.person(user_id)
        if found is None:
            continue
        username, person = found
        theirs = [e for e in batch if e.run.user == username]
        out += _chat_notifications(user_id, theirs, lab, ZoneInfo(lab.person_zone(person)), style)
    return out


@dataclass(frozen=True, slots=True)
class _Style:
    """How notifications are drawn, the same for every chat of one poll."""

    ui_url: str
    burst_threshold: int
    sweep_params: Mapping[str, Sequence[str]]
    owner: Callable[[str | None], str]
    #: Whether messages name their project's forum topic.
    topics: bool
    #: Each project's (`entity/project`) usual parameter values, left off run messages.
    usual: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _chat_notifications(
    chat_id: int, events: Sequence[RunEvent], lab: LabConfig, tz: tzinfo | None, style: _Style
) -> list[Notification]:
    """Return one chat's messages for the events it hears, bursts grouped per project+sweep."""
    groups: dict[tuple[str, str, str | None], list[RunEvent]] = {}
    for event in events:
        run = event.run
        groups.setdefault((run.entity, run.project, run.sweep), []).append(event)
    out: list[Notification] = []
    for (entity, project, _sweep), group in groups.items():
        settings = lab.project(project)
        path = f"{entity}/{project}" if style.topics else None
        if len(group) >= max(1, style.burst_threshold):
            keys = tuple(e.dedupe_key for e in group)
            stem = f"{chat_id}:burst:{_short_hash(keys)}"
            texts = render_burst(group, settings, style.ui_url, owner=style.owner)
            # A burst with a failure in it may not wait out anyone's quiet hours.
            kind = "burst-failed" if any(is_urgent(e.kind) for e in group) else "burst"
            for index, text in enumerate(texts):
                # The first part answers for the runs; the others for themselves only,
                # or they would count as already told once the first is written.
                covers = keys if index == 0 else ()
                out.append(Notification(chat_id, f"{stem}:{index}", text, (), covers, kind, path))
            continue
        for event in group:
            swept = style.sweep_params.get(event.run.sweep or "", ())
            text, buttons = render_run_event(
                event,
                settings,
                style.ui_url,
                tz,
                swept=swept,
                owner=style.owner(event.run.user),
                usual=style.usual.get(f"{entity}/{project}"),
            )
            out.append(
                Notification(
                    chat_id=chat_id,
                    dedupe_key=f"{chat_id}:{event.dedupe_key}",
                    text=text,
                    buttons=buttons,
                    run_keys=(event.dedupe_key,),
                    kind=event.kind,
                    topic=path,
                )
            )
    return out
