"""Which forum topic of a chat a message goes to, as the lab file says: pure."""

from __future__ import annotations

from dataclasses import dataclass

from config.lab import LabConfig

# Telegram's longest topic name.
MAX_TOPIC_NAME = 128


@dataclass(frozen=True, slots=True)
class TopicChoice:
    """Where one project's messages go in a chat: a topic the lab file names, or one to open."""

    #: The lab file's topic for the project (`{name: P, topic: N}`).
    thread_id: int | None = None
    #: With `topics: auto`, the name of the topic the bot opens (once) for the project.
    open_as: str | None = None


def _path(item: str, lab: LabConfig) -> str:
    return item if "/" in item else f"{lab.entity_of(item)}/{item}"


def wants_topics(lab: LabConfig, chat_id: int) -> bool:
    """Tell whether the lab file gives a chat's projects topics (by name or `topics: auto`)."""
    chat = lab.chat(chat_id)
    return chat is not None and (chat.topics == "auto" or bool(chat.project_topics))


def choose_topic(lab: LabConfig, chat_id: int, key: str | None) -> TopicChoice | None:
    """Return the topic for messages about `key` (`entity/project`) in a chat, None for none."""
    chat = lab.chat(chat_id)
    if chat is None or not key:
        return None
    for item, thread_id in chat.project_topics.items():
        if _path(item, lab) == key:
            return TopicChoice(thread_id=thread_id)
    if chat.topics != "auto":
        return None
    entity, _, project = key.rpartition("/")
    name = project if entity in ("", lab.entity) else key
    return TopicChoice(open_as=name[:MAX_TOPIC_NAME])


def digest_thread(lab: LabConfig, chat_id: int) -> int | None:
    """Return the topic a chat's digest goes to: the lab file's, else the General topic."""
    chat = lab.chat(chat_id)
    return chat.digest.topic if chat is not None and chat.digest is not None else None
