"""Forum topics on the local Telegram Bot API server, as a real python-telegram-bot sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot, ForumTopic, Message, Update
from telegram.error import BadRequest
from telegram.ext import CommandHandler, ContextTypes

from tests.servers.telegram import DEFAULT_TOKEN, TelegramServer
from tests.servers.telegram.forum import ICON_COLORS
from tests.test_telegram_server import build_app, make_png, polling

FORUM = -1004000000001
PLAIN = -1004000000002


@pytest.fixture
async def server() -> AsyncIterator[TelegramServer]:
    srv = TelegramServer(DEFAULT_TOKEN, flood=False)
    await srv.start()
    srv.add_chat(FORUM, "supergroup", "Lab forum", is_forum=True)
    srv.add_chat(PLAIN, "supergroup", "Lab")
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server: TelegramServer) -> AsyncIterator[Bot]:
    async with Bot(
        DEFAULT_TOKEN, base_url=server.base_url, base_file_url=server.base_file_url
    ) as b:
        yield b


async def test_create_forum_topic_returns_a_forum_topic_and_sends_land_in_it(server, bot):
    topic = await bot.create_forum_topic(FORUM, "wine-quality-dev")
    assert isinstance(topic, ForumTopic)
    assert (topic.name, topic.icon_color) == ("wine-quality-dev", ICON_COLORS[0])
    sent = await bot.send_message(FORUM, "in topic", message_thread_id=topic.message_thread_id)
    assert sent.is_topic_message and sent.message_thread_id == topic.message_thread_id
    photo = await bot.send_photo(
        FORUM, make_png(4, 3), caption="chart", message_thread_id=topic.message_thread_id
    )
    assert photo.message_thread_id == topic.message_thread_id
    general = await bot.send_message(FORUM, "general")
    assert general.message_thread_id is None and not general.is_topic_message
    # An edit names no thread: the message stays in its topic.
    edited = await bot.edit_message_text("edited", FORUM, sent.message_id)
    assert isinstance(edited, Message) and edited.message_thread_id == topic.message_thread_id
    threads = [m.message_thread_id for m in server.bot_messages(FORUM)]
    # The topic's own service message opens it: its id is the thread id.
    assert threads == [topic.message_thread_id] * 3 + [None]
    assert (await bot.get_chat(FORUM)).is_forum is True
    assert not (await bot.get_chat(PLAIN)).is_forum


@pytest.mark.parametrize(
    ("chat", "rights", "description"),
    [
        (PLAIN, True, "the chat is not a forum"),
        (FORUM, False, "not enough rights to create a topic"),
    ],
)
async def test_create_forum_topic_refusals_are_telegrams(server, bot, chat, rights, description):
    server.add_chat(chat, can_manage_topics=rights)
    with pytest.raises(BadRequest) as caught:
        await bot.create_forum_topic(chat, "wine")
    assert caught.value.message == description.capitalize()
    assert server.topics(chat) == []


async def test_unknown_or_deleted_thread_is_message_thread_not_found(server, bot):
    topic = await bot.create_forum_topic(FORUM, "wine")
    await bot.send_message(FORUM, "before", message_thread_id=topic.message_thread_id)
    server.delete_topic(FORUM, topic.message_thread_id)
    assert server.bot_messages(FORUM) == []  # its messages went with it
    for chat, thread in ((FORUM, topic.message_thread_id), (FORUM, 999), (PLAIN, 5)):
        with pytest.raises(BadRequest, match="Message thread not found"):
            await bot.send_message(chat, "lost?", message_thread_id=thread)


async def test_a_command_typed_in_a_topic_is_answered_there_by_reply_text(server):
    seen: list[int | None] = []

    async def status_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.message_thread_id)
        await update.effective_message.reply_text("ok", do_quote=False)

    app = build_app(server)
    app.add_handler(CommandHandler("status", status_command))
    topic = server.open_topic(FORUM, "wine")
    async with polling(app):
        server.user_sends(FORUM, "/status", message_thread_id=topic.message_thread_id)
        [answer] = await server.wait_for_messages(FORUM, count=1)
    assert seen == [topic.message_thread_id]
    assert answer.message_thread_id == topic.message_thread_id


async def test_control_api_opens_lists_deletes_topics_and_sends_in_them(server):
    base = f"{server.url}/_control"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/chats", json={"chat_id": -1004000000003, "is_forum": True}):
            pass
        async with http.post(f"{base}/chats/{FORUM}/topics", json={"name": "wine"}) as resp:
            thread = (await resp.json())["topic"]["message_thread_id"]
        async with http.post(f"{base}/chats/{PLAIN}/topics", json={"name": "x"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "Bad Request: the chat is not a forum"
        body = {"chat_id": FORUM, "text": "/status", "message_thread_id": thread}
        async with http.post(f"{base}/send", json=body) as resp:
            assert (await resp.json())["ok"]
        message = server.updates[-1]["message"]
        assert (message["message_thread_id"], message["is_topic_message"]) == (thread, True)
        assert message["chat"]["is_forum"] is True
        async with http.get(f"{base}/chats/{FORUM}/messages") as resp:
            shown = (await resp.json())["messages"]
        assert [m["message_thread_id"] for m in shown] == [thread, thread]
        async with http.get(f"{base}/chats") as resp:
            chats = {c["id"]: c for c in (await resp.json())["chats"]}
        assert chats[-1004000000003]["is_forum"] is True
        assert [t["name"] for t in chats[FORUM]["topics"]] == ["wine"]
        async with http.delete(f"{base}/chats/{FORUM}/topics/{thread}") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/chats/{FORUM}/topics") as resp:
            assert (await resp.json())["topics"] == []
        async with http.post(f"{base}/send", json=body) as resp:
            assert resp.status == 400
