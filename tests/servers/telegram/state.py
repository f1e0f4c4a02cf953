"""Keep what the fake Telegram knows: chats, their messages, pending updates and files."""

from __future__ import annotations

import hashlib
import html
import itertools
import struct
from dataclasses import dataclass, field
from typing import Any

BOT_USER: dict[str, Any] = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Lab Bot",
    "username": "lab_bot",
}


def chat_type_for(chat_id: int) -> str:
    """Guess a chat's type from its id the way Telegram numbers them."""
    if chat_id > 0:
        return "private"
    if str(chat_id).startswith("-100"):
        return "supergroup"
    return "group"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Read width and height from PNG, JPEG or GIF bytes; ``None`` if not an image."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + seg_len
    return None


@dataclass
class StoredFile:
    """One uploaded file, downloadable through getFile and the file route."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None

    def file_object(self) -> dict[str, Any]:
        """Return the Bot API File object for getFile."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }

    def photo_sizes(self) -> list[dict[str, Any]]:
        """Return PhotoSize entries, smallest first, the original last.

        Telegram stores downscaled copies; this server does not resample, so the smaller
        entries only report scaled dimensions (they download the original bytes).
        """
        width, height = self.width or 0, self.height or 0
        sizes: list[dict[str, Any]] = []
        for box, suffix in ((90, "s"), (320, "m"), (800, "x")):
            if max(width, height) > box:
                scale = box / max(width, height)
                sizes.append(
                    {
                        "file_id": f"{self.file_id}_{suffix}",
                        "file_unique_id": f"{self.file_unique_id}{suffix}",
                        "width": max(1, round(width * scale)),
                        "height": max(1, round(height * scale)),
                        "file_size": max(1, round(len(self.data) * scale * scale)),
                    }
                )
        sizes.append(
            {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "width": width,
                "height": height,
                "file_size": len(self.data),
            }
        )
        return sizes


@dataclass
class StoredMessage:
    """A message as the chat holds it: plain text plus what was sent to produce it."""

    message_id: int
    chat_id: int
    sender: dict[str, Any]
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    raw: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo: StoredFile | None = None
    document: StoredFile | None = None
    edit_date: int | None = None
    reply_to_message_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The forum topic it is in (None for the chat itself, a forum's General topic included).
    thread_id: int | None = None

    @property
    def from_bot(self) -> bool:
        """Tell whether the bot sent this message."""
        return bool(self.sender.get("id") == BOT_USER["id"])

    def to_api(
        self, chat: dict[str, Any], reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Render the Bot API Message object."""
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(chat),
            "date": self.date,
        }
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if self.thread_id is not None:
            message["message_thread_id"] = self.thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if self.text is not None:
            message["text"] = self.text
            if self.entities:
                message["entities"] = [dict(e) for e in self.entities]
        if self.photo is not None:
            message["photo"] = self.photo.photo_sizes()
        if self.document is not None:
            message["document"] = {
                "file_id": self.document.file_id,
                "file_unique_id": self.document.file_unique_id,
                "file_name": self.document.file_name,
                "mime_type": self.document.mime_type,
                "file_size": len(self.document.data),
            }
        if self.caption is not None:
            message["caption"] = self.caption
            if self.caption_entities:
                message["caption_entities"] = [dict(e) for e in self.caption_entities]
        if self.reply_markup is not None:
            message["reply_markup"] = self.reply_markup
        message.update(self.extra)
        return message

    def view(self) -> ChatMessage:
        """Snapshot what a person looking at the chat would see."""
        shown = self.text if self.text is not None else self.caption
        if self.parse_mode and self.parse_mode.lower() == "html":
            as_html = self.raw
        else:
            as_html = html.escape(shown) if shown is not None else None
        return ChatMessage(
            message_id=self.message_id,
            from_bot=self.from_bot,
            sender_id=int(self.sender["id"]),
            sender_username=self.sender.get("username"),
            text=self.text,
            caption=self.caption,
            entities=list(self.entities or self.caption_entities),
            html=as_html,
            raw=self.raw,
            parse_mode=self.parse_mode,
            reply_markup=self.reply_markup,
            photo=(
                {
                    "size_bytes": len(self.photo.data),
                    "width": self.photo.width,
                    "height": self.photo.height,
                    "file_id": self.photo.file_id,
                }
                if self.photo
                else None
            ),
            document=(
                {
                    "file_name": self.document.file_name,
                    "size_bytes": len(self.document.data),
                    "mime_type": self.document.mime_type,
                    "file_id": self.document.file_id,
                }
                if self.document
                else None
            ),
            date=self.date,
            edit_date=self.edit_date,
            reply_to_message_id=self.reply_to_message_id,
            message_thread_id=self.thread_id,
        )


@dataclass(frozen=True)
class ChatMessage:
    """What a chat shows for one message, for assertions and the control API."""

    message_id: int
    from_bot: bool
    sender_id: int
    sender_username: str | None
    text: str | None
    caption: str | None
    entities: list[dict[str, Any]]
    html: str | None
    raw: str | None
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    photo: dict[str, Any] | None
    document: dict[str, Any] | None
    date: int
    edit_date: int | None
    reply_to_message_id: int | None
    message_thread_id: int | None = None

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """Return the inline keyboard rows (empty if none)."""
        if not self.reply_markup:
            return []
        return [list(row) for row in self.reply_markup.get("inline_keyboard", [])]

    @property
    def callback_data(self) -> list[str]:
        """Return every button's callback_data, row by row."""
        return [b["callback_data"] for row in self.buttons for b in row if "callback_data" in b]

    def to_json(self) -> dict[str, Any]:
        """Render the control API's JSON for this message."""
        return {
            "message_id": self.message_id,
            "from": "bot" if self.from_bot else "user",
            "sender_id": self.sender_id,
            "sender_username": self.sender_username,
            "text": self.text,
            "caption": self.caption,
            "entities": self.entities,
            "html": self.html,
            "raw": self.raw,
            "parse_mode": self.parse_mode,
            "reply_markup": self.reply_markup,
            "photo": self.photo,
            "document": self.document,
            "date": self.date,
            "edit_date": self.edit_date,
            "reply_to_message_id": self.reply_to_message_id,
            "message_thread_id": self.message_thread_id,
        }


@dataclass
class Topic:
    """A forum topic: its thread id is the id of the message that opened it."""

    message_thread_id: int
    name: str
    icon_color: int

    def api(self) -> dict[str, Any]:
        """Render the Bot API ForumTopic object."""
        return {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }


@dataclass
class Chat:
    """A chat with its own message numbering and its persistent states."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    next_message_id: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    blocked: str | None = None  # the Forbidden description while the bot is blocked/kicked
    migrated_to: int | None = None
    #: A supergroup with topics on; the bot may open topics while it has the right to.
    is_forum: bool = False
    can_manage_topics: bool = True
    topics: dict[int, Topic] = field(default_factory=dict)

    def api(self) -> dict[str, Any]:
        """Render the Bot API Chat object."""
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.is_forum:
            chat["is_forum"] = True
        if self.type == "private":
            chat["first_name"] = self.first_name or "User"
            if self.username:
                chat["username"] = self.username
        else:
            chat["title"] = self.title or f"Chat {self.id}"
        return chat

    def new_message_id(self) -> int:
        """Hand out the next message id of this chat."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


class Files:
    """Store uploads under stable ids and paths."""

    def __init__(self) -> None:
        self.by_id: dict[str, StoredFile] = {}
        self.by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def add(
        self,
        data: bytes,
        *,
        kind: str,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """Store bytes and return the file record (photos get their dimensions)."""
        n = next(self._counter)
        digest = hashlib.sha256(data).hexdigest()
        size = image_size(data) if kind == "photo" else None
        ext = (file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else "bin")[:8]
        folder = "photos" if kind == "photo" else "documents"
        stored = StoredFile(
            file_id=f"{kind[:3].upper()}{n:06d}{digest[:24]}",
            file_unique_id=f"U{digest[:15]}",
            data=data,
            file_path=f"{folder}/file_{n}.{'jpg' if kind == 'photo' else ext}",
            file_name=file_name,
            mime_type=mime_type,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
        self.by_id[stored.file_id] = stored
        self.by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """Find a file by id, including the ids of its downscaled photo sizes."""
        stored = self.by_id.get(file_id)
        if stored is None and "_" in file_id:
            stored = self.by_id.get(file_id.rsplit("_", 1)[0])
        return stored
