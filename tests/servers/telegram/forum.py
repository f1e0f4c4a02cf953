"""Forum topics as Telegram keeps them: created in forum supergroups by those with the right."""

from __future__ import annotations

from typing import Any

from .state import Chat, StoredMessage, Topic

# The six colours the Bot API accepts for a new topic's icon (RGB); the first is the default.
ICON_COLORS = (0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F)
MAX_TOPIC_NAME = 128
NOT_A_FORUM = "Bad Request: the chat is not a forum"
NO_RIGHTS = "Bad Request: not enough rights to create a topic"
THREAD_NOT_FOUND = "Bad Request: message thread not found"


class ForumError(Exception):
    """A refusal in Telegram's words (the server answers it as a 400)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def create_topic(
    chat: Chat,
    name: str,
    actor: dict[str, Any],
    date: int,
    *,
    icon_color: int | None = None,
    by_bot: bool = True,
) -> Topic:
    """Open a topic: its id is that of its `forum_topic_created` service message."""
    if not chat.is_forum:
        raise ForumError(NOT_A_FORUM)
    if by_bot and not chat.can_manage_topics:
        raise ForumError(NO_RIGHTS)
    if not 1 <= len(name) <= MAX_TOPIC_NAME:
        raise ForumError(
            "Bad Request: TOPIC_TITLE_EMPTY" if not name else "Bad Request: TOPIC_TITLE_TOO_LONG"
        )
    color = ICON_COLORS[0] if icon_color is None else icon_color
    if color not in ICON_COLORS:
        raise ForumError("Bad Request: TOPIC_ICON_COLOR_INVALID")
    thread_id = chat.new_message_id()
    topic = Topic(thread_id, name, color)
    chat.topics[thread_id] = topic
    created = {"forum_topic_created": {"name": name, "icon_color": color}}
    chat.messages[thread_id] = StoredMessage(
        thread_id, chat.id, actor, date, thread_id=thread_id, extra=created
    )
    return topic


def delete_topic(chat: Chat, thread_id: int) -> None:
    """Delete a topic and every message in it, as a chat admin does."""
    if chat.topics.pop(thread_id, None) is None:
        raise ForumError(THREAD_NOT_FOUND)
    for message_id in [k for k, m in chat.messages.items() if m.thread_id == thread_id]:
        del chat.messages[message_id]


def thread_of(chat: Chat, raw: object) -> int | None:
    """Return the topic a send names (None for the chat itself), or refuse an unknown one."""
    if raw is None or raw == "":
        return None
    try:
        thread_id = int(str(raw))
    except ValueError:
        raise ForumError("Bad Request: invalid message_thread_id specified") from None
    if thread_id not in chat.topics:
        raise ForumError(THREAD_NOT_FOUND)
    return thread_id
