"""The local Telegram Bot API server, exercised by a real python-telegram-bot 22."""

from __future__ import annotations

import asyncio
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
)

from tests.servers.telegram import DEFAULT_TOKEN, FloodLimits, TelegramServer

TOKEN = DEFAULT_TOKEN
GROUP = -4000000001
USER = 1001
LOOSE_CHAT = {"chat_rate": 1000.0, "chat_burst": 1000.0}


def make_png(width: int, height: int) -> bytes:
    """Build a real RGB PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + b"".join(bytes((x % 256, y % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch):
    """Opt in to PTB 23's timedelta ``retry_after`` instead of its deprecation warning."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def ptb_message(description: str) -> str:
    """Return the text PTB shows for a Telegram description (prefix cut, capitalised)."""
    return description.removeprefix("Bad Request: ").capitalize()


def retry_seconds(exc: RetryAfter) -> float:
    """Read ``retry_after`` in seconds (a timedelta once PTB_TIMEDELTA is on)."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@pytest.fixture
async def server() -> AsyncIterator[TelegramServer]:
    srv = TelegramServer(TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server: TelegramServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as b:
        yield b


def build_app(server: TelegramServer, **kwargs) -> Application:
    builder = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML))
    )
    if "rate_limiter" in kwargs:
        builder = builder.rate_limiter(kwargs["rate_limiter"])
    return builder.build()


@asynccontextmanager
async def polling(app: Application) -> AsyncIterator[Application]:
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


# --------------------------------------------------------------------------- updates


async def test_group_command_reaches_command_handler_with_args(server):
    seen: list[list[str]] = []

    async def best_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(list(context.args or []))
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"best of <b>{' '.join(context.args or [])}</b>")

    app = build_app(server)
    app.add_handler(CommandHandler("best", best_command))
    async with polling(app):
        server.user_sends(GROUP, "/best wine-quality-dev", chat_type="group", chat_title="Lab")
        server.user_sends(GROUP, "/best@lab_bot wine count=20", user_id=1002)
        server.user_sends(GROUP, "/best@other_bot ignored")
        msgs = await server.wait_for_messages(GROUP, count=2)
    assert seen == [["wine-quality-dev"], ["wine", "count=20"]]
    assert [m.text for m in msgs] == ["best of wine-quality-dev", "best of wine count=20"]
    assert msgs[0].html == "best of <b>wine-quality-dev</b>"
    assert msgs[0].entities == [{"type": "bold", "offset": 8, "length": 16}]
    shown = server.messages(GROUP)
    assert [m.from_bot for m in shown] == [False, False, False, True, True]
    assert [m.message_id for m in shown] == [1, 2, 3, 4, 5]


async def test_button_press_reaches_callback_handler_and_chat_shows_the_edit(server):
    server.add_chat(GROUP, "group", "Lab")
    pressed: list[str] = []

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        pressed.append(query.data)
        await query.answer("stopping", show_alert=True)
        await query.edit_message_text(f"Stopped <code>{query.data}</code>")

    app = build_app(server)
    app.add_handler(CallbackQueryHandler(on_press))
    async with polling(app):
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Stop", callback_data="stop:run-1")]]
        )
        sent = await app.bot.send_message(
            GROUP, "Run <b>run-1</b> is running", parse_mode=ParseMode.HTML, reply_markup=keyboard
        )
        assert sent.reply_markup == keyboard
        server.press(GROUP, sent.message_id, "stop:run-1", user_id=USER)
        msgs = await server.wait_for_messages(GROUP, lambda ms: ms[-1].edit_date is not None)
    assert pressed == ["stop:run-1"]
    assert msgs[-1].text == "Stopped stop:run-1"
    assert msgs[-1].html == "Stopped <code>stop:run-1</code>"
    assert msgs[-1].reply_markup is None  # editing text without markup drops the keyboard
    assert server.callback_answers[0]["text"] == "stopping"
    assert server.callback_answers[0]["show_alert"] is True


async def test_press_refuses_a_button_the_message_does_not_have(server, bot):
    server.add_chat(USER)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await bot.send_message(USER, "pick", reply_markup=keyboard)
    with pytest.raises(ValueError, match="no button"):
        server.press(USER, sent.message_id, "b")
    update = server.press(USER, sent.message_id, button_text="A")
    assert server.updates[-1]["callback_query"]["data"] == "a"
    assert server.updates[-1]["update_id"] == update.update_id


async def test_long_poll_wakes_at_once_and_answers_empty_on_timeout(server, bot):
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 0.9

    async def later() -> None:
        await asyncio.sleep(0.1)
        server.user_sends(USER, "hello")

    task = asyncio.create_task(later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=10)
    await task
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["hello"]
    # offset acknowledges; limit caps
    server.user_sends(USER, "two")
    server.user_sends(USER, "three")
    updates = await bot.get_updates(offset=updates[-1].update_id + 1, limit=1)
    assert [u.message.text for u in updates if u.message] == ["two"]
    assert len(server.updates) == 2
    updates = await bot.get_updates(
        offset=updates[-1].update_id + 1, allowed_updates=["callback_query"]
    )
    assert updates == ()
    assert server.updates == []  # not-allowed update types are dropped


async def test_two_pollers_conflict(server):
    async with (
        Bot(TOKEN, base_url=server.base_url) as first,
        Bot(TOKEN, base_url=server.base_url) as second,
    ):
        pending = asyncio.create_task(first.get_updates(timeout=5))
        await server.wait_for(lambda: server.stats.methods["getUpdates"] == 1)
        second_task = asyncio.create_task(second.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await pending
        assert await second_task == ()


async def test_webhook_delivers_updates_with_secret_token(server, bot):
    received: list[tuple[dict, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        assert await bot.set_webhook(url, secret_token="s3cret")
        info = await bot.get_webhook_info()
        assert info.url == url
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        server.user_sends(USER, "/start")
        await server.wait_for(lambda: len(received) == 1)
        assert received[0][0]["message"]["text"] == "/start"
        assert received[0][1] == "s3cret"
        assert (await bot.get_webhook_info()).pending_update_count == 0
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- sending


async def test_send_photo_png_arrives_whole_and_downloads(server, bot):
    server.add_chat(GROUP, "group", "Lab")
    png = make_png(640, 480)
    msg = await bot.send_photo(GROUP, png, caption="<i>loss</i> curve", parse_mode=ParseMode.HTML)
    assert (msg.photo[-1].width, msg.photo[-1].height) == (640, 480)
    assert msg.photo[-1].file_size == len(png)
    assert [p.width for p in msg.photo] == [90, 320, 640]
    assert msg.caption == "loss curve"
    shown = server.messages(GROUP)[-1]
    assert shown.photo is not None
    assert (shown.photo["width"], shown.photo["height"], shown.photo["size_bytes"]) == (
        640,
        480,
        len(png),
    )
    assert shown.html == "<i>loss</i> curve"
    file = await bot.get_file(msg.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == png
    # re-sending by file_id reuses the stored file
    again = await bot.send_photo(GROUP, msg.photo[-1].file_id)
    assert again.photo[-1].file_unique_id == msg.photo[-1].file_unique_id


async def test_send_document_and_delete_and_chat_action(server, bot):
    server.add_chat(USER)
    doc = await bot.send_document(USER, b"a,b\n1,2\n", filename="runs.csv")
    assert doc.document is not None
    assert doc.document.file_name == "runs.csv"
    assert doc.document.file_size == 8
    assert await bot.send_chat_action(USER, "typing")
    file = await bot.get_file(doc.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"
    assert server.messages(USER)[0].document == {
        "file_name": "runs.csv",
        "size_bytes": 8,
        "mime_type": "text/csv",
        "file_id": doc.document.file_id,
    }
    assert await bot.delete_message(USER, doc.message_id)
    assert server.messages(USER) == []
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(USER, doc.message_id)
    chat = await bot.get_chat(USER)
    assert chat.type == "private"


async def test_commands_round_trip(bot):
    from telegram import BotCommand

    await bot.set_my_commands([BotCommand("best", "Best run of a sweep")])
    assert await bot.get_my_commands() == (BotCommand("best", "Best run of a sweep"),)


@pytest.mark.parametrize(
    ("kwargs", "description"),
    [
        ({"text": "a<br>b"}, 'can\'t parse entities: Unsupported start tag "br" at byte offset 1'),
        (
            {"text": "<b>x</i>"},
            "can't parse entities: Unmatched end tag at byte offset 4, "
            'expected "</b>", found "</i>"',
        ),
        (
            {"text": "<b>x"},
            "can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        ),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "😀" * 2049}, "message is too long"),  # 4098 UTF-16 code units
        ({"text": "<b> </b>"}, "message text is empty"),
        (
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("big", callback_data="d" * 65)]]
                ),
            },
            "BUTTON_DATA_INVALID",
        ),
        (
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton(str(i), callback_data=str(i)) for i in range(9)]]
                ),
            },
            "reply markup is too long",
        ),
    ],
)
async def test_send_message_refusals_match_telegram(server, bot, kwargs, description):
    server.add_chat(GROUP, "group")
    with pytest.raises(BadRequest) as info:
        await bot.send_message(GROUP, parse_mode=ParseMode.HTML, **kwargs)
    assert info.value.message == ptb_message(f"Bad Request: {description}")
    assert server.calls[-1][0] == "sendMessage"
    assert server.messages(GROUP) == []


async def test_bad_request_descriptions_are_telegrams_words(server):
    server.add_chat(GROUP, "group")
    async with aiohttp.ClientSession() as http:
        url = f"{server.base_url}{TOKEN}/sendMessage"
        form = {"chat_id": str(GROUP), "text": "x<br>", "parse_mode": "HTML"}
        async with http.post(url, data=form) as resp:
            assert resp.status == 400
            assert await resp.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: can't parse entities: "
                'Unsupported start tag "br" at byte offset 1',
            }


async def test_text_at_exactly_4096_is_accepted(server, bot):
    server.add_chat(GROUP, "group")
    msg = await bot.send_message(GROUP, "&amp;" + "x" * 4095, parse_mode=ParseMode.HTML)
    assert msg.text is not None and len(msg.text) == 4096


async def test_overlong_caption_is_refused(server, bot):
    server.add_chat(GROUP, "group")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(GROUP, make_png(4, 4), caption="c" * 1025)
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(GROUP, b"not an image")


async def test_edits_refuse_identical_and_unknown_messages(server, bot):
    server.add_chat(GROUP, "group")
    msg = await bot.send_message(GROUP, "<b>same</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Message is not modified: specified new message content"):
        await bot.edit_message_text("<b>same</b>", GROUP, msg.message_id, parse_mode=ParseMode.HTML)
    edited = await bot.edit_message_text("<i>same</i>", GROUP, msg.message_id, parse_mode="HTML")
    assert isinstance(edited, type(msg)) and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", GROUP, 999)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-999, "x")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    await bot.edit_message_reply_markup(GROUP, msg.message_id, reply_markup=keyboard)
    assert server.messages(GROUP)[0].callback_data == ["a"]
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(GROUP, msg.message_id, reply_markup=keyboard)


# --------------------------------------------------------------------------- flood


async def test_group_gets_429_after_twenty_messages_a_minute(bot):
    srv = TelegramServer(TOKEN, limits=FloodLimits(**LOOSE_CHAT))  # the group bucket alone
    await srv.start()
    try:
        srv.add_chat(GROUP, "group")
        async with Bot(TOKEN, base_url=srv.base_url) as b:
            outcomes: list[int | None] = []
            for i in range(25):
                try:
                    await b.send_message(GROUP, f"n{i}")
                    outcomes.append(None)
                except RetryAfter as exc:
                    outcomes.append(int(retry_seconds(exc)))
        assert outcomes[:20] == [None] * 20
        assert all(o is not None and 1 <= o <= 3 for o in outcomes[20:])
        assert srv.stats.flood_429 == 5
        assert srv.stats.too_many_requests == 5
        assert len(srv.messages(GROUP)) == 20
    finally:
        await srv.stop()


async def test_private_chat_burst_then_one_per_second(server, bot):
    server.add_chat(USER)
    for i in range(3):
        await bot.send_message(USER, f"n{i}")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(USER, "n3")
    assert retry_seconds(info.value) == 1
    # edits count too; getMe and answerCallbackQuery do not
    with pytest.raises(RetryAfter):
        await bot.edit_message_text("edited", USER, 1)
    await bot.get_me()
    server.set_flood(False)
    await bot.send_message(USER, "n4")
    assert server.stats.too_many_requests == 2


async def test_aioratelimiter_keeps_a_group_under_the_same_limit():
    # 20 per 2 s on the server. The limiter keeps two messages of headroom (18 per 2 s), as a
    # client should: the server's bucket starts leaking when the burst *arrives*, later than the
    # limiter's, so an exactly equal limiter can be a hair too fast after a burst.
    srv = TelegramServer(TOKEN, limits=FloodLimits(group_max=20, group_period=2.0, **LOOSE_CHAT))
    await srv.start()
    try:
        srv.add_chat(GROUP, "group")
        limiter = AIORateLimiter(group_max_rate=18, group_time_period=2.0)
        app = build_app(srv, rate_limiter=limiter)
        async with app:
            started = time.monotonic()
            await asyncio.gather(*(app.bot.send_message(GROUP, f"n{i}") for i in range(26)))
            elapsed = time.monotonic() - started
        assert srv.stats.too_many_requests == 0
        assert len(srv.messages(GROUP)) == 26
        assert elapsed >= 0.7  # 8 messages past the burst at 9 per second
    finally:
        await srv.stop()


# --------------------------------------------------------------------------- faults


async def test_migrated_group_raises_chat_migrated_and_lives_on_under_new_id(server, bot):
    server.add_chat(GROUP, "group", "Lab")
    server.inject("sendMessage", "migrate", chat_id=GROUP, migrate_to_chat_id=-1004000000001)
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(GROUP, "hello")
    assert info.value.new_chat_id == -1004000000001
    with pytest.raises(ChatMigrated):  # the old id keeps answering the migrate error
        await bot.send_message(GROUP, "again")
    msg = await bot.send_message(info.value.new_chat_id, "hello")
    assert msg.chat.type == "supergroup"
    assert msg.chat.title == "Lab"
    assert [m.text for m in server.bot_messages(-1004000000001)] == ["hello"]
    kinds = [next(k for k in u if k != "update_id") for u in server.updates]
    assert kinds == ["message", "message"]  # migrate_to / migrate_from service messages
    assert server.updates[0]["message"]["migrate_to_chat_id"] == -1004000000001


async def test_blocked_and_kicked_raise_forbidden(server, bot):
    server.add_chat(USER)
    server.block_chat(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    server.unblock_chat(USER)
    await bot.send_message(USER, "hi")
    server.add_chat(GROUP, "group")
    server.inject("sendPhoto", "kicked", count=1)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_photo(GROUP, make_png(2, 2))
    await bot.send_photo(GROUP, make_png(2, 2))


async def test_injected_delay_raises_timed_out(server, bot):
    server.add_chat(USER)
    server.inject("sendMessage", "delay", delay=3.0)
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "slow", read_timeout=0.3)
    await bot.send_message(USER, "fast")
    assert [m.text for m in server.messages(USER)] == ["fast"]


async def test_slow_response_times_out_but_the_message_was_sent(server, bot):
    server.add_chat(USER)
    server.inject("sendMessage", "slow_response", delay=1.0)
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "delivered anyway", read_timeout=0.3)
    assert [m.text for m in server.messages(USER)] == ["delivered anyway"]


@pytest.mark.parametrize(
    ("kind", "status"), [("server_error", 500), ("non_json", 502), ("server_error", 503)]
)
async def test_server_errors_raise_network_error(server, bot, kind, status):
    server.add_chat(USER)
    server.inject("sendMessage", kind, status=status)
    with pytest.raises(NetworkError) as info:
        await bot.send_message(USER, "x")
    assert type(info.value) is NetworkError
    await bot.send_message(USER, "x")


async def test_injected_429_and_conflict(server, bot):
    server.inject("getUpdates", "conflict")
    with pytest.raises(Conflict):
        await bot.get_updates()
    server.add_chat(USER)
    server.inject("*", "flood", retry_after=7, chat_id=USER)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(USER, "x")
    assert retry_seconds(info.value) == 7
    assert server.stats.too_many_requests == 1
    assert server.stats.flood_429 == 0


async def test_wrong_token_is_invalid_token(server):
    with pytest.raises(InvalidToken):
        async with Bot("123:wrong", base_url=server.base_url):
            pass


# --------------------------------------------------------------------------- control API and wire formats


async def test_control_api_over_http(server):
    base = server.url
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/_control/send",
            json={
                "chat_id": GROUP,
                "chat_type": "group",
                "chat_title": "Lab",
                "user_id": 5,
                "text": "/best@lab_bot x",
            },
        ) as resp:
            sent = await resp.json()
        assert sent["ok"] and sent["message_id"] == 1
        entity = server.updates[0]["message"]["entities"][0]
        assert entity == {"type": "bot_command", "offset": 0, "length": len("/best@lab_bot")}
        # the bot answers with a JSON body; other clients may use JSON or query strings
        async with http.post(
            f"{base}/bot{TOKEN}/SENDMESSAGE",
            json={
                "chat_id": GROUP,
                "text": "<b>hi</b>",
                "parse_mode": "HTML",
                "reply_markup": {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]},
            },
        ) as resp:
            assert (await resp.json())["result"]["text"] == "hi"
        async with http.get(f"{base}/bot{TOKEN}/getMe") as resp:
            assert (await resp.json())["result"]["username"] == "lab_bot"
        async with http.get(f"{base}/bot{TOKEN}/sendMessage?chat_id={GROUP}&text=q") as resp:
            assert resp.status == 200
        async with http.post(f"{base}/botwrong/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(
            f"{base}/_control/press",
            json={"chat_id": GROUP, "message_id": 2, "callback_data": "go", "user_id": 5},
        ) as resp:
            pressed = await resp.json()
        assert pressed["callback_query_id"]
        async with http.post(
            f"{base}/bot{TOKEN}/answerCallbackQuery",
            data={
                "callback_query_id": pressed["callback_query_id"],
                "text": "ok",
                "show_alert": "true",
            },
        ) as resp:
            assert resp.status == 200
        async with http.get(f"{base}/_control/callback_answers") as resp:
            answers = (await resp.json())["callback_answers"]
        assert answers[0]["text"] == "ok" and answers[0]["show_alert"] is True
        async with http.get(f"{base}/_control/chats/{GROUP}/messages") as resp:
            messages = (await resp.json())["messages"]
        assert [(m["from"], m["text"]) for m in messages] == [
            ("user", "/best@lab_bot x"),
            ("bot", "hi"),
            ("bot", "q"),
        ]
        assert messages[1]["html"] == "<b>hi</b>" and messages[1]["parse_mode"] == "HTML"
        async with http.post(
            f"{base}/_control/faults", json={"method": "sendMessage", "kind": "blocked", "count": 1}
        ) as resp:
            assert (await resp.json())["fault"]["kind"] == "blocked"
        async with http.post(
            f"{base}/bot{TOKEN}/sendMessage", data={"chat_id": str(GROUP), "text": "x"}
        ) as resp:
            assert resp.status == 403
        async with http.post(
            f"{base}/_control/flood", json={"enabled": False, "group_max": 5}
        ) as resp:
            body = await resp.json()
        assert body["enabled"] is False and body["limits"]["group_max"] == 5
        async with http.get(f"{base}/_control/stats") as resp:
            stats = await resp.json()
        assert stats["methods"]["sendMessage"] == 3
        assert stats["requests"] == 6
        assert stats["errors"] == {"401": 1, "403": 1}
        async with http.post(f"{base}/_control/reset") as resp:
            assert resp.status == 200
        assert server.messages(GROUP) == [] and server.stats.requests == 0


def test_command_line_prints_listening_line():
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.telegram", "--port", "0", "--token", "1:abc"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


async def test_a_user_link_is_a_mention_of_a_user_the_bot_knows_else_plain_text(server, bot):
    server.add_chat(-100777, "supergroup", "lab")
    server.add_chat(4001, "private", first_name="Alice", username="alice")
    html = '<a href="tg://user?id=4001">Al</a> and <a href="tg://user?id=4002">Bo</a>'
    sent = await bot.send_message(-100777, html, parse_mode=ParseMode.HTML)
    assert sent.text == "Al and Bo"
    [mention] = sent.entities
    assert mention.type == "text_mention" and (mention.offset, mention.length) == (0, 2)
    assert mention.user is not None and mention.user.first_name == "Alice"
    assert mention.user.id == 4001 and mention.user.username == "alice"
