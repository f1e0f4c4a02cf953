"""Serve a local Telegram Bot API that python-telegram-bot talks to through ``base_url``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, ClientSession, ClientTimeout, web

from .faults import Fault
from .flood import FloodControl, FloodLimits, retry_after_seconds
from .forum import ForumError, create_topic, delete_topic, thread_of
from .html import HtmlParseError, ParsedText, parse_html, strip_text, utf16_len
from .state import (
    BOT_USER,
    Chat,
    ChatMessage,
    Files,
    StoredFile,
    StoredMessage,
    Topic,
    chat_type_for,
)

DEFAULT_TOKEN = "7000000001:TEST-token-for-the-local-bot-api"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
FLOOD_LIMITED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)
CONFLICT_TEXT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
NOT_MODIFIED_TEXT = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class ApiError(Exception):
    """An error answer: HTTP status equal to ``error_code``, Telegram's description."""

    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad_request(text: str) -> ApiError:
    """Build a 400 with Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {text}")


@dataclass
class Stats:
    """Count what the server was asked and what it refused."""

    requests: int = 0
    methods: Counter[str] = field(default_factory=Counter)
    too_many_requests: int = 0
    flood_429: int = 0
    errors: Counter[int] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        """Render the control API's JSON for the counters."""
        return {
            "requests": self.requests,
            "methods": dict(self.methods),
            "too_many_requests": self.too_many_requests,
            "flood_429": self.flood_429,
            "errors": {str(k): v for k, v in self.errors.items()},
        }


@dataclass(frozen=True)
class SentUpdate:
    """Ids of an update a simulated user caused."""

    update_id: int
    message_id: int | None = None
    callback_query_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Render the control API's JSON."""
        return {
            "update_id": self.update_id,
            "message_id": self.message_id,
            "callback_query_id": self.callback_query_id,
        }


Params = dict[str, Any]
UploadedFiles = dict[str, tuple[bytes, str | None, str | None]]
Method = Callable[[Params, UploadedFiles], Awaitable[Any]]


class TelegramServer:
    """A Telegram Bot API on 127.0.0.1 with Telegram's validation, flood limits and faults.

    Use ``url = await server.start()`` then point PTB at ``f"{url}/bot"`` and
    ``f"{url}/file/bot"``. Migration semantics: after a group migrates, the old id answers
    every send/edit with the migrate error (``migrate_to_chat_id``) for good, its history stays
    readable under the old id, and the new supergroup id is a fresh chat with its own messages.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        flood: bool = True,
        limits: FloodLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        auto_create_chats: bool = False,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        self.token = token
        self.flood_enabled = flood
        self.limits = limits or FloodLimits()
        self.clock = clock
        self.auto_create_chats = auto_create_chats
        self.webhook_retry_delay = webhook_retry_delay
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, tuple[str, Method]] = {}
        for name in (
            "getMe",
            "logOut",
            "close",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "sendMessage",
            "sendPhoto",
            "sendDocument",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
            "deleteMessage",
            "answerCallbackQuery",
            "sendChatAction",
            "getFile",
            "getChat",
            "createForumTopic",
        ):
            self._methods[name.lower()] = (name, getattr(self, f"_m_{name}"))
        self._reset_state()

    # ----------------------------------------------------------------- lifecycle

    def _reset_state(self) -> None:
        self.chats: dict[int, Chat] = {}
        self.files = Files()
        self.updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100000001)
        self._callback_ids = itertools.count(1)
        self._open_queries: dict[str, tuple[int, int]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.calls: list[tuple[str, Params]] = []
        self.stats = Stats()
        self.faults: list[Fault] = []
        self.flood = FloodControl(self.limits, self.clock)
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.allowed_updates: frozenset[str] = DEFAULT_ALLOWED
        self.webhook: dict[str, Any] | None = None
        self._new_update = asyncio.Event()
        self._poll_generation = 0
        self._closing = False

    @property
    def port(self) -> int:
        """Return the bound port (after ``start``)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """Return ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the value for ``ApplicationBuilder().base_url``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the value for ``ApplicationBuilder().base_file_url``."""
        return f"{self.url}/file/bot"

    def make_app(self) -> web.Application:
        """Build the aiohttp application with the Bot API and control routes."""
        app = web.Application(client_max_size=MAX_DOCUMENT_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._bot_route)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file_route)
        c = "/_control"
        app.router.add_post(f"{c}/send", self._c_send)
        app.router.add_post(f"{c}/press", self._c_press)
        app.router.add_get(f"{c}/chats", self._c_chats)
        app.router.add_post(f"{c}/chats", self._c_add_chat)
        app.router.add_get(f"{c}/chats/{{chat_id}}/messages", self._c_messages)
        app.router.add_post(f"{c}/chats/{{chat_id}}/block", self._c_block)
        app.router.add_post(f"{c}/chats/{{chat_id}}/unblock", self._c_unblock)
        app.router.add_post(f"{c}/chats/{{chat_id}}/migrate", self._c_migrate)
        app.router.add_get(f"{c}/chats/{{chat_id}}/topics", self._c_topics)
        app.router.add_post(f"{c}/chats/{{chat_id}}/topics", self._c_add_topic)
        app.router.add_delete(f"{c}/chats/{{chat_id}}/topics/{{thread_id}}", self._c_delete_topic)
        app.router.add_get(f"{c}/callback_answers", self._c_answers)
        app.router.add_get(f"{c}/updates", self._c_updates)
        app.router.add_get(f"{c}/calls", self._c_calls)
        app.router.add_get(f"{c}/stats", self._c_stats)
        app.router.add_get(f"{c}/faults", self._c_faults)
        app.router.add_post(f"{c}/faults", self._c_add_fault)
        app.router.add_delete(f"{c}/faults", self._c_clear_faults)
        app.router.add_post(f"{c}/flood", self._c_flood)
        app.router.add_post(f"{c}/reset", self._c_reset)
        return app

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (port 0 picks a free one) and return ``http://127.0.0.1:PORT``."""
        self._closing = False
        # handler_cancellation: a client that hangs up ends its pending long poll.
        self._runner = web.AppRunner(
            self.make_app(), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        return self.url

    async def stop(self) -> None:
        """Wake long polls, stop webhook delivery and close the listener."""
        self._closing = True
        self._wake()
        await self._stop_webhook()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- controls (Python)

    def reset(self) -> None:
        """Forget chats, updates, files, faults, counters and flood levels."""
        task = self.webhook.get("task") if self.webhook else None
        if task is not None:
            task.cancel()
        self._wake()
        self._reset_state()

    def set_flood(self, enabled: bool, limits: FloodLimits | None = None) -> None:
        """Switch the flood model on or off, optionally with new bucket shapes."""
        self.flood_enabled = enabled
        if limits is not None:
            self.limits = limits
        self.flood = FloodControl(self.limits, self.clock)

    def _mentions(self, parsed: ParsedText) -> ParsedText:
        """Fill in a mentioned user the bot knows; a user it never met stays plain text.

        Telegram guarantees a `tg://user?id=` mention only for users who talked to the bot
        (or are in the chat); here that is a user with a private chat.
        """
        entities = []
        for entity in parsed.entities:
            if entity["type"] == "text_mention":
                known = self.chats.get(entity["user"]["id"])
                if known is None or known.type != "private":
                    continue
                user = {**entity["user"], "first_name": known.first_name or str(known.id)}
                if known.username:
                    user["username"] = known.username
                entity = {**entity, "user": user}
            entities.append(entity)
        return ParsedText(parsed.text, entities)

    def add_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        title: str | None = None,
        *,
        first_name: str | None = None,
        username: str | None = None,
        is_forum: bool | None = None,
        can_manage_topics: bool | None = None,
    ) -> Chat:
        """Make a chat known (as if the bot had been added to it); return it.

        `is_forum` turns topics on (supergroups only); `can_manage_topics` grants or takes
        away the bot's right to open them.
        """
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = Chat(
                id=chat_id,
                type=chat_type or chat_type_for(chat_id),
                title=title,
                first_name=first_name,
                username=username,
            )
            self.chats[chat_id] = chat
        else:
            if title:
                chat.title = title
            if chat_type:
                chat.type = chat_type
        if is_forum is not None:
            chat.is_forum = is_forum and chat.type == "supergroup"
        if can_manage_topics is not None:
            chat.can_manage_topics = can_manage_topics
        return chat

    def open_topic(self, chat_id: int, name: str, *, user_id: int = 1) -> Topic:
        """Have a chat admin open a forum topic; return it."""
        chat = self.add_chat(chat_id)
        actor = self._user(user_id, None, "Admin")
        return create_topic(chat, name, actor, int(time.time()), by_bot=False)

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Have a chat admin delete a forum topic with all its messages."""
        delete_topic(self.add_chat(chat_id), thread_id)

    def topics(self, chat_id: int) -> list[Topic]:
        """Return the chat's open forum topics, oldest first."""
        chat = self.chats.get(chat_id)
        return [chat.topics[k] for k in sorted(chat.topics)] if chat else []

    def block_chat(self, chat_id: int, kind: str | None = None) -> None:
        """Make every send to the chat answer 403 until ``unblock_chat``."""
        chat = self.add_chat(chat_id)
        chat.blocked = self._forbidden_text(chat, kind)

    def unblock_chat(self, chat_id: int) -> None:
        """Let the bot write to the chat again."""
        if chat_id in self.chats:
            self.chats[chat_id].blocked = None

    def migrate_chat(self, chat_id: int, new_chat_id: int | None = None) -> int:
        """Upgrade a group to a supergroup under a new id and return that id."""
        chat = self.add_chat(chat_id)
        if chat.migrated_to is not None:
            return chat.migrated_to
        if new_chat_id is None:
            new_chat_id = int(f"-100{abs(chat_id)}")
        chat.migrated_to = new_chat_id
        new_chat = self.add_chat(new_chat_id, "supergroup", chat.title)
        now = int(time.time())
        actor = {"id": 1, "is_bot": False, "first_name": "Admin"}
        self._service_message(chat, actor, now, {"migrate_to_chat_id": new_chat_id})
        self._service_message(new_chat, actor, now, {"migrate_from_chat_id": chat_id})
        return new_chat_id

    def inject(self, method: str, kind: str, count: int = 1, **options: Any) -> Fault:
        """Arm a fault for the next ``count`` calls of ``method`` (``*`` for any method).

        Options: ``chat_id`` (only calls for that chat), ``retry_after``, ``delay``,
        ``status``, ``migrate_to_chat_id``, ``description``.
        """
        canonical = self._methods.get(method.lower(), (method, None))[0]
        fault = Fault(method=canonical, kind=kind, count=count, **options)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    def user_sends(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int = 1001,
        username: str | None = None,
        first_name: str | None = None,
        chat_type: str | None = None,
        chat_title: str | None = None,
        message_thread_id: int | None = None,
    ) -> SentUpdate:
        """Have a user type ``text`` in a chat (in a forum topic with ``message_thread_id``).

        A leading command gets its entity.
        """
        chat = self.add_chat(
            chat_id,
            chat_type,
            chat_title,
            first_name=first_name if chat_id > 0 else None,
            username=username if chat_id > 0 else None,
        )
        sender = self._user(user_id, username, first_name)
        entities: list[dict[str, Any]] = []
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command)})
        message = StoredMessage(
            message_id=chat.new_message_id(),
            chat_id=chat.id,
            sender=sender,
            date=int(time.time()),
            text=text,
            entities=entities,
            raw=text,
            thread_id=thread_of(chat, message_thread_id),
        )
        chat.messages[message.message_id] = message
        update_id = self._push_update({"message": message.to_api(chat.api())})
        return SentUpdate(update_id=update_id, message_id=message.message_id)

    def press(
        self,
        chat_id: int,
        message_id: int,
        callback_data: str | None = None,
        *,
        user_id: int = 1001,
        username: str | None = None,
        first_name: str | None = None,
        button_text: str | None = None,
    ) -> SentUpdate:
        """Have a user press an inline button (by callback_data or by its text)."""
        chat = self.chats.get(chat_id)
        message = chat.messages.get(message_id) if chat else None
        if chat is None or message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        buttons = [
            b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row
        ]
        if button_text is not None:
            found = [b for b in buttons if b.get("text") == button_text]
            if not found or "callback_data" not in found[0]:
                raise ValueError(f"no callback button {button_text!r} on message {message_id}")
            callback_data = found[0]["callback_data"]
        if callback_data is None:
            raise ValueError("give callback_data or button_text")
        if buttons and callback_data not in [b.get("callback_data") for b in buttons]:
            raise ValueError(f"no button with callback_data {callback_data!r}")
        query_id = f"{next(self._callback_ids)}{abs(chat_id) % 100000:05d}"
        self._open_queries[query_id] = (chat_id, message_id)
        instance = hashlib.sha256(f"{chat_id}".encode()).hexdigest()[:16]
        query = {
            "id": query_id,
            "from": self._user(user_id, username, first_name),
            "chat_instance": str(int(instance, 16)),
            "message": message.to_api(chat.api()),
            "data": callback_data,
        }
        update_id = self._push_update({"callback_query": query})
        return SentUpdate(update_id=update_id, message_id=message_id, callback_query_id=query_id)

    def messages(self, chat_id: int) -> list[ChatMessage]:
        """Return what the chat shows now, oldest first (edits applied, deletions gone)."""
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        return [chat.messages[k].view() for k in sorted(chat.messages)]

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        """Return only the bot's messages in the chat."""
        return [m for m in self.messages(chat_id) if m.from_bot]

    async def wait_for_messages(
        self,
        chat_id: int,
        predicate: Callable[[list[ChatMessage]], bool] | None = None,
        *,
        count: int | None = None,
        from_bot: bool = True,
        timeout: float = 5.0,
    ) -> list[ChatMessage]:
        """Wait until the chat's (bot) messages satisfy ``predicate`` or reach ``count``.

        Returns the messages; raises ``TimeoutError`` with what the chat shows otherwise.
        """
        if predicate is None:
            wanted = 1 if count is None else count
            predicate = lambda msgs: len(msgs) >= wanted  # noqa: E731
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            msgs = self.bot_messages(chat_id) if from_bot else self.messages(chat_id)
            if predicate(msgs):
                return msgs
            if asyncio.get_running_loop().time() >= deadline:
                shown = [m.text if m.text is not None else m.caption for m in msgs]
                raise TimeoutError(f"chat {chat_id} shows {shown!r} after {timeout}s")
            await asyncio.sleep(0.01)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` is true, polling briefly; raise ``TimeoutError``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"condition not met after {timeout}s")
            await asyncio.sleep(0.01)

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _user(user_id: int, username: str | None, first_name: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
        }
        if username:
            user["username"] = username
        return user

    def _service_message(
        self, chat: Chat, actor: dict[str, Any], now: int, extra: dict[str, Any]
    ) -> None:
        message = StoredMessage(chat.new_message_id(), chat.id, actor, now, extra=extra)
        self._push_update({"message": message.to_api(chat.api())})

    def _push_update(self, body: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self.updates.append({"update_id": update_id, **body})
        self._wake()
        return update_id

    def _wake(self) -> None:
        """Wake every long poll and the webhook sender (each waits on the current event)."""
        self._new_update.set()
        self._new_update = asyncio.Event()

    @staticmethod
    def _forbidden_text(chat: Chat, kind: str | None) -> str:
        if kind == "blocked" or (kind is None and chat.type == "private"):
            return "Forbidden: bot was blocked by the user"
        if chat.type == "supergroup":
            return "Forbidden: bot was kicked from the supergroup chat"
        if chat.type == "channel":
            return "Forbidden: bot is not a member of the channel chat"
        return "Forbidden: bot was kicked from the group chat"

    @staticmethod
    def _chat_id_of(params: Params) -> int | None:
        value = params.get("chat_id")
        try:
            return int(value) if value is not None and value != "" else None
        except (TypeError, ValueError):
            return None

    def _error(self, err: ApiError) -> web.Response:
        self.stats.errors[err.code] += 1
        if err.code == 429:
            self.stats.too_many_requests += 1
        body: dict[str, Any] = {
            "ok": False,
            "error_code": err.code,
            "description": err.description,
        }
        if err.parameters:
            body["parameters"] = err.parameters
        return web.json_response(body, status=err.code)

    # ----------------------------------------------------------------- request parsing

    @staticmethod
    def _decode_value(value: str) -> Any:
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null"):
            try:
                return json.loads(stripped)
            except ValueError:
                return value
        return value

    async def _read_params(self, request: web.Request) -> tuple[Params, UploadedFiles]:
        params: Params = {k: self._decode_value(v) for k, v in request.query.items()}
        files: UploadedFiles = {}
        if not request.can_read_body:
            return params, files
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise bad_request("can't parse JSON object") from exc
            if isinstance(body, dict):
                params.update(body)
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if isinstance(part, BodyPartReader) and part.name:
                    data = bytes(await part.read())
                    if part.filename is not None:
                        files[part.name] = (
                            data,
                            part.filename,
                            part.headers.get("Content-Type"),
                        )
                    else:
                        params[part.name] = self._decode_value(data.decode("utf-8"))
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = self._decode_value(value)
                elif isinstance(value, web.FileField):
                    files[key] = (value.file.read(), value.filename, value.content_type)
        return params, files

    # ----------------------------------------------------------------- routes

    async def _bot_route(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return self._error(ApiError(404, "Not Found: method not found"))
        name, handler = entry
        self.stats.methods[name] += 1
        try:
            params, files = await self._read_params(request)
        except ApiError as err:
            return self._error(err)
        self.calls.append((name, params))
        chat_id = self._chat_id_of(params)
        fault = next((f for f in self.faults if f.matches(name, chat_id)), None)
        slow = 0.0
        if fault is not None:
            fault.count -= 1
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "slow_response":
                slow = fault.delay
            else:
                return self._fault_response(fault, name, chat_id)
        try:
            result = await handler(params, files)
        except ApiError as err:
            response = self._error(err)
        except ForumError as err:
            response = self._error(ApiError(400, err.description))
        else:
            response = web.json_response({"ok": True, "result": result})
        if slow:
            await asyncio.sleep(slow)
        return response

    def _fault_response(self, fault: Fault, method: str, chat_id: int | None) -> web.Response:
        kind = fault.kind
        if kind == "flood":
            return self._error(
                ApiError(
                    429,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    {"retry_after": fault.retry_after},
                )
            )
        if kind in ("blocked", "kicked"):
            chat = self.chats.get(chat_id) if chat_id is not None else None
            text = (
                self._forbidden_text(chat, kind)
                if chat is not None
                else (
                    "Forbidden: bot was blocked by the user"
                    if kind == "blocked"
                    else "Forbidden: bot was kicked from the group chat"
                )
            )
            return self._error(ApiError(403, fault.description or text))
        if kind == "migrate":
            if chat_id is not None:
                new_id = self.migrate_chat(chat_id, fault.migrate_to_chat_id)
            else:
                new_id = fault.migrate_to_chat_id or -1001000000000
            return self._error(
                ApiError(
                    400,
                    "Bad Request: group chat was upgraded to a supergroup chat",
                    {"migrate_to_chat_id": new_id},
                )
            )
        if kind == "conflict":
            return self._error(ApiError(409, fault.description or CONFLICT_TEXT))
        if kind == "server_error":
            status = fault.status or 500
            return self._error(ApiError(status, fault.description or "Internal Server Error"))
        if kind == "non_json":
            status = fault.status or 502
            self.stats.errors[status] += 1
            page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return web.Response(
                status=status, text=fault.description or page, content_type="text/html"
            )
        # bad_request
        return self._error(ApiError(fault.status or 400, fault.description or "Bad Request"))

    async def _file_route(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        stored = self.files.by_path.get(request.match_info["path"])
        if stored is None:
            return self._error(ApiError(404, "Not Found"))
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # ----------------------------------------------------------------- parameter helpers

    @staticmethod
    def _int(params: Params, name: str, default: int | None = None) -> int | None:
        value = params.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"invalid {name} specified") from exc

    @staticmethod
    def _bool(params: Params, name: str) -> bool:
        value = params.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def _target_chat(self, params: Params) -> Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        chat: Chat | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in self.chats.values() if c.username == raw[1:]), None)
        else:
            try:
                chat_id = int(raw)
            except (TypeError, ValueError) as exc:
                raise bad_request("chat not found") from exc
            chat = self.chats.get(chat_id)
            if chat is None and self.auto_create_chats:
                chat = self.add_chat(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.blocked:
            raise ApiError(403, chat.blocked)
        return chat

    def _format(
        self, params: Params, text_key: str, entities_key: str, *, caption: bool
    ) -> tuple[ParsedText, str | None, str | None]:
        raw = params.get(text_key)
        if raw is None:
            raw = ""
        raw = str(raw)
        parse_mode = params.get("parse_mode") or None
        if parse_mode is not None:
            parse_mode = str(parse_mode)
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                parsed = parse_html(raw)
            except HtmlParseError as err:
                raise bad_request(f"can't parse entities: {err}") from err
        elif mode in ("", "markdown", "markdownv2"):
            # Markdown is not modelled: the text passes through unparsed.
            entities = params.get(entities_key)
            parsed = ParsedText(raw, list(entities) if isinstance(entities, list) else [])
        else:
            raise bad_request("unsupported parse_mode")
        parsed = self._mentions(strip_text(parsed))
        size = utf16_len(parsed.text)
        if caption:
            if size > MAX_CAPTION:
                raise bad_request("message caption is too long")
        else:
            if size == 0:
                raise bad_request("message text is empty")
            if size > MAX_TEXT:
                raise bad_request("message is too long")
        if len(parsed.entities) > 100:
            parsed = ParsedText(parsed.text, parsed.entities[:100])
        return parsed, raw, parse_mode

    @staticmethod
    def _markup(params: Params) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None  # reply keyboards are accepted but not echoed in the Message
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
            )
        if sum(len(r) for r in rows) > 100 or any(len(r) > 8 for r in rows):
            raise bad_request("reply markup is too long")
        clean_rows: list[list[dict[str, Any]]] = []
        for row in rows:
            clean: list[dict[str, Any]] = []
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text must be non-empty")
                if "callback_data" in button:
                    data = str(button["callback_data"]).encode("utf-8")
                    if not 1 <= len(data) <= 64:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif not any(
                    k in button
                    for k in (
                        "url",
                        "login_url",
                        "switch_inline_query",
                        "switch_inline_query_current_chat",
                        "switch_inline_query_chosen_chat",
                        "web_app",
                        "callback_game",
                        "pay",
                        "copy_text",
                    )
                ):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
                clean.append(dict(button))
            if clean:
                clean_rows.append(clean)
        return {"inline_keyboard": clean_rows} if clean_rows else None

    def _check_flood(self, method: str, chat: Chat) -> None:
        if not self.flood_enabled or method not in FLOOD_LIMITED:
            return
        wait = self.flood.check(chat.id)
        if wait > 0:
            seconds = retry_after_seconds(wait)
            self.stats.flood_429 += 1
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )

    def _reply_to(self, params: Params, chat: Chat) -> int | None:
        reply = params.get("reply_parameters")
        message_id: int | None = None
        allow = self._bool(params, "allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = int(reply["message_id"]) if reply.get("message_id") else None
            allow = allow or bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id"):
            message_id = self._int(params, "reply_to_message_id")
        if message_id is None:
            return None
        if message_id not in chat.messages:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return message_id

    def _render(self, chat: Chat, message: StoredMessage) -> dict[str, Any]:
        reply = None
        if message.reply_to_message_id is not None:
            original = chat.messages.get(message.reply_to_message_id)
            if original is not None:
                reply = original.to_api(chat.api())
        return message.to_api(chat.api(), reply)

    def _upload(self, params: Params, files: UploadedFiles, key: str, kind: str) -> StoredFile:
        value = params.get(key)
        upload_key = key
        if isinstance(value, str) and value.startswith("attach://"):
            upload_key = value[len("attach://") :]
        if upload_key in files:
            data, filename, mime = files[upload_key]
            limit = MAX_PHOTO_BYTES if kind == "photo" else MAX_DOCUMENT_BYTES
            if len(data) > limit:
                raise ApiError(413, "Request Entity Too Large")
            if not data:
                raise bad_request("file must be non-empty")
            stored = self.files.add(data, kind=kind, file_name=filename, mime_type=mime)
            if kind == "photo" and stored.width is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            return stored
        if isinstance(value, str) and value:
            existing = self.files.get(value)
            if existing is not None:
                return existing
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {key} in the request")

    def _new_bot_message(self, chat: Chat, params: Params, **fields: Any) -> dict[str, Any]:
        message = StoredMessage(
            message_id=chat.new_message_id(),
            chat_id=chat.id,
            sender=dict(BOT_USER),
            date=int(time.time()),
            reply_to_message_id=self._reply_to(params, chat),
            **fields,
        )
        chat.messages[message.message_id] = message
        return self._render(chat, message)

    def _message_to_edit(self, params: Params) -> tuple[Chat, StoredMessage]:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._target_chat(params)
        message_id = self._int(params, "message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    # ----------------------------------------------------------------- Bot API methods

    async def _m_getMe(self, params: Params, files: UploadedFiles) -> Any:
        return dict(BOT_USER)

    async def _m_logOut(self, params: Params, files: UploadedFiles) -> Any:
        return True

    async def _m_close(self, params: Params, files: UploadedFiles) -> Any:
        return True

    async def _m_getUpdates(self, params: Params, files: UploadedFiles) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = self._int(params, "offset", 0) or 0
        limit = min(max(self._int(params, "limit", 100) or 100, 1), 100)
        timeout = float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an earlier pending poll ends now with a conflict
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, CONFLICT_TEXT)
            self._drop_unwanted()
            if self.updates or self._closing:
                return self.updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), remaining)

    def _drop_unwanted(self) -> None:
        self.updates = [
            u for u in self.updates if any(k in self.allowed_updates for k in u if k != "update_id")
        ]

    async def _m_setWebhook(self, params: Params, files: UploadedFiles) -> Any:
        url = str(params.get("url") or "")
        await self._stop_webhook()
        if not url:
            return True
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if self._bool(params, "drop_pending_updates"):
            self.updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token") or None,
            "max_connections": self._int(params, "max_connections", 40),
            "last_error_date": None,
            "last_error_message": None,
        }
        self._poll_generation += 1  # a pending getUpdates ends with a conflict
        self._wake()
        self.webhook["task"] = asyncio.create_task(self._deliver_webhook())
        return True

    async def _stop_webhook(self) -> None:
        if self.webhook is None:
            return
        task = self.webhook.pop("task", None)
        self.webhook = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_webhook(self) -> None:
        hook = self.webhook
        assert hook is not None
        headers = {}
        if hook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while self.webhook is hook:
                self._drop_unwanted()
                if not self.updates:
                    await self._new_update.wait()
                    continue
                update = self.updates[0]
                try:
                    async with session.post(hook["url"], json=update, headers=headers) as resp:
                        ok = 200 <= resp.status < 300
                        error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
                except (OSError, TimeoutError) as exc:
                    ok, error = False, f"Connection failed: {exc!r}"
                if ok:
                    if self.updates and self.updates[0] is update:
                        self.updates.pop(0)
                else:
                    hook["last_error_date"] = int(time.time())
                    hook["last_error_message"] = error
                    await asyncio.sleep(self.webhook_retry_delay)

    async def _m_deleteWebhook(self, params: Params, files: UploadedFiles) -> Any:
        await self._stop_webhook()
        if self._bool(params, "drop_pending_updates"):
            self.updates.clear()
        return True

    async def _m_getWebhookInfo(self, params: Params, files: UploadedFiles) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            info["allowed_updates"] = sorted(self.allowed_updates)
            if self.webhook["last_error_date"]:
                info["last_error_date"] = self.webhook["last_error_date"]
                info["last_error_message"] = self.webhook["last_error_message"]
        return info

    @staticmethod
    def _commands_key(params: Params) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    async def _m_setMyCommands(self, params: Params, files: UploadedFiles) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        clean = []
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            description = str(command.get("description", "")) if isinstance(command, dict) else ""
            if not _COMMAND_RE.match(name.lstrip("/").lower()):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("command description must be non-empty")
            clean.append({"command": name.lstrip("/").lower(), "description": description})
        self.commands[self._commands_key(params)] = clean
        return True

    async def _m_getMyCommands(self, params: Params, files: UploadedFiles) -> Any:
        return self.commands.get(self._commands_key(params), [])

    async def _m_deleteMyCommands(self, params: Params, files: UploadedFiles) -> Any:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _m_sendMessage(self, params: Params, files: UploadedFiles) -> Any:
        chat = self._target_chat(params)
        parsed, raw, parse_mode = self._format(params, "text", "entities", caption=False)
        markup = self._markup(params)
        thread_id = thread_of(chat, params.get("message_thread_id"))
        self._check_flood("sendMessage", chat)
        return self._new_bot_message(
            chat,
            params,
            thread_id=thread_id,
            text=parsed.text,
            entities=parsed.entities,
            raw=raw,
            parse_mode=parse_mode,
            reply_markup=markup,
        )

    async def _send_media(self, params: Params, files: UploadedFiles, method: str) -> Any:
        kind = "photo" if method == "sendPhoto" else "document"
        chat = self._target_chat(params)
        parsed, raw, parse_mode = self._format(params, "caption", "caption_entities", caption=True)
        markup = self._markup(params)
        stored = self._upload(params, files, kind, kind)
        thread_id = thread_of(chat, params.get("message_thread_id"))
        self._check_flood(method, chat)
        return self._new_bot_message(
            chat,
            params,
            thread_id=thread_id,
            caption=parsed.text or None,
            caption_entities=parsed.entities,
            raw=raw or None,
            parse_mode=parse_mode,
            reply_markup=markup,
            **{kind: stored},
        )

    async def _m_sendPhoto(self, params: Params, files: UploadedFiles) -> Any:
        return await self._send_media(params, files, "sendPhoto")

    async def _m_sendDocument(self, params: Params, files: UploadedFiles) -> Any:
        return await self._send_media(params, files, "sendDocument")

    def _apply_edit(
        self,
        method: str,
        chat: Chat,
        message: StoredMessage,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        if all(getattr(message, k) == v for k, v in changes.items()):
            raise bad_request(NOT_MODIFIED_TEXT[len("Bad Request: ") :])
        self._check_flood(method, chat)
        for key, value in changes.items():
            setattr(message, key, value)
        message.edit_date = max(int(time.time()), message.date)
        return self._render(chat, message)

    async def _m_editMessageText(self, params: Params, files: UploadedFiles) -> Any:
        chat, message = self._message_to_edit(params)
        parsed, raw, parse_mode = self._format(params, "text", "entities", caption=False)
        markup = self._markup(params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        changes = {
            "text": parsed.text,
            "entities": parsed.entities,
            "reply_markup": markup,
        }
        self._apply_edit("editMessageText", chat, message, changes)
        message.raw, message.parse_mode = raw, parse_mode
        return self._render(chat, message)

    async def _m_editMessageCaption(self, params: Params, files: UploadedFiles) -> Any:
        chat, message = self._message_to_edit(params)
        parsed, raw, parse_mode = self._format(params, "caption", "caption_entities", caption=True)
        markup = self._markup(params)
        if message.photo is None and message.document is None:
            raise bad_request("there is no caption in the message to edit")
        changes = {
            "caption": parsed.text or None,
            "caption_entities": parsed.entities,
            "reply_markup": markup,
        }
        self._apply_edit("editMessageCaption", chat, message, changes)
        message.raw, message.parse_mode = raw or None, parse_mode
        return self._render(chat, message)

    async def _m_editMessageReplyMarkup(self, params: Params, files: UploadedFiles) -> Any:
        chat, message = self._message_to_edit(params)
        markup = self._markup(params)
        return self._apply_edit("editMessageReplyMarkup", chat, message, {"reply_markup": markup})

    async def _m_deleteMessage(self, params: Params, files: UploadedFiles) -> Any:
        chat = self._target_chat(params)
        message_id = self._int(params, "message_id")
        if message_id is None or message_id not in chat.messages:
            raise bad_request("message to delete not found")
        del chat.messages[message_id]
        return True

    async def _m_answerCallbackQuery(self, params: Params, files: UploadedFiles) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_queries:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        chat_id, message_id = self._open_queries.pop(query_id)
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "chat_id": chat_id,
                "message_id": message_id,
                "text": text,
                "show_alert": self._bool(params, "show_alert"),
                "url": params.get("url"),
                "cache_time": self._int(params, "cache_time", 0),
            }
        )
        return True

    async def _m_sendChatAction(self, params: Params, files: UploadedFiles) -> Any:
        self._target_chat(params)
        action = params.get("action")
        valid = {
            "typing",
            "upload_photo",
            "record_video",
            "upload_video",
            "record_voice",
            "upload_voice",
            "upload_document",
            "choose_sticker",
            "find_location",
            "record_video_note",
            "upload_video_note",
        }
        if action not in valid:
            raise bad_request("wrong parameter action in request")
        return True

    async def _m_getFile(self, params: Params, files: UploadedFiles) -> Any:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.file_object()

    async def _m_getChat(self, params: Params, files: UploadedFiles) -> Any:
        chat = self._target_chat(params)
        info = chat.api()
        info["accent_color_id"] = 0
        info["max_reaction_count"] = 11
        info["accepted_gift_types"] = {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        }
        return info

    async def _m_createForumTopic(self, params: Params, files: UploadedFiles) -> Any:
        chat = self._target_chat(params)
        icon = self._int(params, "icon_color")
        name = str(params.get("name") or "")
        return create_topic(chat, name, dict(BOT_USER), int(time.time()), icon_color=icon).api()

    # ----------------------------------------------------------------- control API (HTTP)

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    async def _c_send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            sent = self.user_sends(
                int(body["chat_id"]),
                str(body["text"]),
                user_id=int(body.get("user_id", 1001)),
                username=body.get("username"),
                first_name=body.get("first_name"),
                chat_type=body.get("chat_type"),
                chat_title=body.get("chat_title"),
                message_thread_id=body.get("message_thread_id"),
            )
        except (KeyError, ValueError, ForumError) as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=400)
        return web.json_response({"ok": True, **sent.to_json()})

    async def _c_press(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            sent = self.press(
                int(body["chat_id"]),
                int(body["message_id"]),
                body.get("callback_data"),
                user_id=int(body.get("user_id", 1001)),
                username=body.get("username"),
                first_name=body.get("first_name"),
                button_text=body.get("button_text"),
            )
        except KeyError as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=404)
        except ValueError as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=400)
        return web.json_response({"ok": True, **sent.to_json()})

    async def _c_chats(self, request: web.Request) -> web.Response:
        chats = [
            {
                **chat.api(),
                "message_count": len(chat.messages),
                "blocked": chat.blocked,
                "migrated_to": chat.migrated_to,
                "can_manage_topics": chat.can_manage_topics,
                "topics": [t.api() for t in chat.topics.values()],
            }
            for chat in self.chats.values()
        ]
        return web.json_response({"ok": True, "chats": chats})

    async def _c_add_chat(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        chat = self.add_chat(
            int(body["chat_id"]),
            body.get("type"),
            body.get("title"),
            first_name=body.get("first_name"),
            username=body.get("username"),
            is_forum=body.get("is_forum"),
            can_manage_topics=body.get("can_manage_topics"),
        )
        return web.json_response({"ok": True, "chat": chat.api()})

    async def _c_topics(self, request: web.Request) -> web.Response:
        topics = self.topics(int(request.match_info["chat_id"]))
        return web.json_response({"ok": True, "topics": [t.api() for t in topics]})

    async def _c_add_topic(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            topic = self.open_topic(int(request.match_info["chat_id"]), str(body.get("name", "")))
        except ForumError as exc:
            return web.json_response({"ok": False, "error": exc.description}, status=400)
        return web.json_response({"ok": True, "topic": topic.api()})

    async def _c_delete_topic(self, request: web.Request) -> web.Response:
        chat_id, thread_id = (int(request.match_info[k]) for k in ("chat_id", "thread_id"))
        try:
            self.delete_topic(chat_id, thread_id)
        except ForumError as exc:
            return web.json_response({"ok": False, "error": exc.description}, status=404)
        return web.json_response({"ok": True})

    async def _c_messages(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        messages = [m.to_json() for m in self.messages(chat_id)]
        return web.json_response({"ok": True, "chat_id": chat_id, "messages": messages})

    async def _c_block(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self.block_chat(int(request.match_info["chat_id"]), body.get("kind"))
        return web.json_response({"ok": True})

    async def _c_unblock(self, request: web.Request) -> web.Response:
        self.unblock_chat(int(request.match_info["chat_id"]))
        return web.json_response({"ok": True})

    async def _c_migrate(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        new_id = body.get("new_chat_id")
        migrated = self.migrate_chat(
            int(request.match_info["chat_id"]), int(new_id) if new_id is not None else None
        )
        return web.json_response({"ok": True, "migrate_to_chat_id": migrated})

    async def _c_answers(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "callback_answers": self.callback_answers})

    async def _c_updates(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "updates": self.updates})

    async def _c_calls(self, request: web.Request) -> web.Response:
        calls = [{"method": m, "params": p} for m, p in self.calls]
        return web.json_response({"ok": True, "calls": calls})

    async def _c_stats(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, **self.stats.to_json()})

    async def _c_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "faults": [f.to_json() for f in self.faults]})

    async def _c_add_fault(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        options = {
            k: body[k]
            for k in (
                "chat_id",
                "retry_after",
                "delay",
                "status",
                "migrate_to_chat_id",
                "description",
            )
            if body.get(k) is not None
        }
        try:
            fault = self.inject(
                str(body["method"]), str(body["kind"]), int(body.get("count", 1)), **options
            )
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=400)
        return web.json_response({"ok": True, "fault": fault.to_json()})

    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    async def _c_flood(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        limits = None
        shape = {k: float(v) for k, v in body.items() if k in FloodLimits.__dataclass_fields__}
        if shape:
            limits = FloodLimits(**{**self.limits.__dict__, **shape})
        self.set_flood(bool(body.get("enabled", self.flood_enabled)), limits)
        return web.json_response(
            {"ok": True, "enabled": self.flood_enabled, "limits": self.limits.__dict__}
        )

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})
