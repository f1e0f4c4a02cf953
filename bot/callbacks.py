"""Inline buttons in one place: keyboards, callback data, stored buttons and the press router."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.domain.commands import Role
from bot.domain.notify import Notification
from bot.domain.render import Buttons
from bot.store import CallbackRecord, OutboxItem, Store
from bot.store.callbacks import ANSWERED

if TYPE_CHECKING:
    from bot.services import CustomContext

# Every button's callback data starts with this, then the token the store keeps the rest under.
CALLBACK_PREFIX = "cb:"
EXPIRED = "This button has expired. Send the command again."
INVALID = "This button is no longer valid."
# Joins the actions of a prompt's buttons under its one token.
CHOICES = "|"

C = TypeVar("C")
ButtonAction = Callable[["CustomContext", CallbackRecord], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class ButtonSpec(Generic[C]):
    """One button action: what runs when it is pressed, who may press it, what others hear."""

    action: str
    callback: C
    role: Role
    refusal: str = "Only lab admins can do that."


def keyboard(
    store: Store,
    buttons: Buttons,
    now: datetime,
    *,
    chat_id: int | None = None,
    user_id: int | None = None,
    ttl: float | None = None,
    prompt: bool = False,
) -> InlineKeyboardMarkup | None:
    """Turn buttons into Telegram buttons whose callback data is a short stored token.

    A `prompt` (Yes/No on one target) stores ONE token for all its buttons, each button
    adding its choice's index, so answering one revokes them all at once.
    """
    if not buttons:
        return None
    expires = now + timedelta(seconds=ttl) if ttl else None

    def put(action: str, target: str) -> str:
        return store.callbacks.put(
            action, target, now, chat_id=chat_id, user_id=user_id, expires_at=expires
        )

    choices = [b for row in buttons for b in row if not b.url]
    shared = put(CHOICES.join(b.action for b in choices), choices[0].target) if prompt else ""
    markup: list[list[InlineKeyboardButton]] = []
    for row in buttons:
        line = []
        for button in row:
            if button.url:
                line.append(InlineKeyboardButton(button.label, url=button.url))
                continue
            data = (
                f"{shared}:{choices.index(button)}" if prompt else put(button.action, button.target)
            )
            line.append(InlineKeyboardButton(button.label, callback_data=CALLBACK_PREFIX + data))
        markup.append(line)
    return InlineKeyboardMarkup(markup)


def to_outbox(notification: Notification) -> OutboxItem:
    """Turn a domain notification into an outbox row; its buttons become tokens when sent."""
    return OutboxItem(
        chat_id=notification.chat_id,
        dedupe_key=notification.dedupe_key,
        kind=notification.kind,
        text=notification.text,
        buttons=notification.buttons,
        run_keys=notification.run_keys,
        topic=notification.topic,
        thread_id=notification.thread_id,
    )


def pressed(store: Store, data: str | None, now: datetime) -> CallbackRecord | str:
    """Return what a press stands for, or the one line that says why it does nothing.

    A prompt's press comes back with the action of the chosen button.
    """
    if not data or not data.startswith(CALLBACK_PREFIX):
        return INVALID
    token, _, choice = data.removeprefix(CALLBACK_PREFIX).partition(":")
    record = store.callbacks.get(token) if token else None
    if record is None or (record.expires_at is not None and record.expires_at < now):
        return EXPIRED
    if record.action.startswith(ANSWERED):
        return f"This was already answered by {record.action.removeprefix(ANSWERED)}."
    actions = record.action.split(CHOICES)
    if not choice:
        return record if len(actions) == 1 else INVALID
    if not choice.isdigit() or int(choice) >= len(actions) or len(actions) == 1:
        return INVALID
    return dataclasses.replace(record, action=actions[int(choice)])


def find_spec(specs: Sequence[ButtonSpec[C]], action: str) -> ButtonSpec[C] | None:
    """Return the spec of an action, None for an action no table row knows."""
    return next((spec for spec in specs if spec.action == action), None)


def button_router(
    specs: Sequence[ButtonSpec[ButtonAction]],
) -> Callable[[Update, CustomContext], Coroutine[Any, Any, None]]:
    """Return the one callback-query handler: look the token up and run its action.

    Every press gets an answer, so no button is left spinning: a press that is not ours or
    whose token is gone says so.
    """

    async def button_pressed(update: Update, context: CustomContext) -> None:
        query = update.callback_query
        found = pressed(context.services.store, query.data if query else None, context.now)
        spec = find_spec(specs, found.action) if not isinstance(found, str) else None
        if isinstance(found, str) or spec is None:
            await context.refuse(found if isinstance(found, str) else EXPIRED)
            return
        await spec.callback(context, found)
        await context.answer()

    return button_pressed
