"""Forum topics: the lab file's shape, and TopicService against the local Telegram server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, Message
from telegram.error import BadRequest

from bot.callbacks import to_outbox
from bot.domain.routing import RoutingData, StopWaiter, route
from bot.domain.topics import TopicChoice, choose_topic, digest_thread
from bot.store import Store
from bot.topics import TopicService, check_topics
from config import LabFileError, parse_lab
from config.lab import LabConfig
from tests.servers.telegram import DEFAULT_TOKEN, TelegramServer
from tests.test_domain_notify import LAB, make_event

FORUM = -1005000000001
PLAIN = -1005000000002
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def lab(chat: dict[str, Any], **extra: Any) -> LabConfig:
    return parse_lab({"entity": "lab", "chats": [{"id": FORUM, **chat}], **extra})


# -- the lab file --------------------------------------------------------------------------


def test_projects_may_be_names_or_name_and_topic_and_old_files_stay_valid() -> None:
    old = lab({"projects": ["wine", "other/iris"]})
    assert old.chats[0].projects == ("wine", "other/iris")
    assert old.chats[0].topics == "off" and old.chats[0].project_topics == {}
    new = lab(
        {
            "projects": ["wine", {"name": "other/iris", "topic": 12}, {"name": "beer"}],
            "topics": "auto",
            "digest": {"cron": "0 9 * * *", "topic": 7},
        }
    )
    chat = new.chats[0]
    assert chat.projects == ("wine", "other/iris", "beer")
    assert chat.project_topics == {"other/iris": 12}
    assert choose_topic(new, FORUM, "other/iris") == TopicChoice(thread_id=12)
    assert choose_topic(new, FORUM, "lab/wine") == TopicChoice(open_as="wine")
    assert choose_topic(new, FORUM, "else/x") == TopicChoice(open_as="else/x")
    assert choose_topic(new, FORUM, None) is None and choose_topic(new, PLAIN, "lab/wine") is None
    assert choose_topic(old, FORUM, "lab/wine") is None
    assert digest_thread(new, FORUM) == 7 and digest_thread(old, FORUM) is None


def test_yaml_off_and_on_read_as_the_switch() -> None:
    assert lab({"topics": False}).chats[0].topics == "off"
    assert lab({"topics": True}).chats[0].topics == "auto"


@pytest.mark.parametrize(
    ("chat", "expected"),
    [
        ({"topics": "yes"}, "chats[0].topics: Input should be 'auto' or 'off'"),
        (
            {"projects": [{"name": "wine", "topic": 0}]},
            "projects[0].topic: Input should be greater",
        ),
        (
            {"projects": [{"name": "wine", "topic": "x"}]},
            "projects[0].topic: Input should be a valid",
        ),
        ({"projects": [{"name": "wine", "thread": 3}]}, "projects[0].thread: Extra inputs"),
        ({"projects": [{"topic": 3}]}, "projects[0].name: Field required"),
        ({"projects": [{"name": "../x"}]}, "chats[0].projects: project '..' may use only"),
        ({"digest": {"cron": "0 9 * * *", "topic": -2}}, "chats[0].digest.topic: Input should be"),
        ({"project_topics": {"wine": 3}}, "give each project's topic as {name: P, topic: N}"),
    ],
)
def test_bad_topic_settings_stop_the_bot_naming_the_field(chat: dict, expected: str) -> None:
    with pytest.raises(LabFileError) as caught:
        lab(chat)
    assert any(expected in line for line in caught.value.problems), caught.value.problems


# -- TopicService, with a real Bot against the local server --------------------------------


@pytest.fixture
async def server() -> AsyncIterator[TelegramServer]:
    srv = TelegramServer(DEFAULT_TOKEN, flood=False)
    await srv.start()
    srv.add_chat(FORUM, "supergroup", "forum", is_forum=True)
    srv.add_chat(PLAIN, "supergroup", "plain")
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server: TelegramServer) -> AsyncIterator[Bot]:
    async with Bot(DEFAULT_TOKEN, base_url=server.base_url) as b:
        yield b


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bot.sqlite3")


def service(store: Store, bot: Bot, chats: list[dict[str, Any]]) -> TopicService:
    data = parse_lab({"entity": "lab", "chats": chats})
    return TopicService(store, bot, data, lambda: NOW)


def say(bot: Bot, chat_id: int, text: str) -> Callable[[int | None], Awaitable[Message]]:
    def send(thread: int | None) -> Awaitable[Message]:
        return bot.send_message(chat_id, text, message_thread_id=thread)

    return send


def pending_texts(store: Store) -> list[str]:
    return [row.text for row in store.outbox.due(NOW)]


async def test_auto_opens_one_topic_per_project_once_even_when_asked_at_once(server, bot, store):
    topics = service(store, bot, [{"id": FORUM, "projects": ["wine", "beer"], "topics": "auto"}])
    sent: list[Message] = await asyncio.gather(
        *(topics.send(FORUM, "lab/wine", None, say(bot, FORUM, f"w{i}")) for i in range(3)),
        topics.send(FORUM, "lab/beer", None, say(bot, FORUM, "b")),
    )
    names = {t.message_thread_id: t.name for t in server.topics(FORUM)}
    assert sorted(names.values()) == ["beer", "wine"]
    assert {names[m.message_thread_id or 0] for m in sent} == {"wine", "beer"}
    # A new service (a restart) finds the topic in the store and opens none.
    again = service(store, bot, [{"id": FORUM, "projects": ["wine"], "topics": "auto"}])
    message = await again.send(FORUM, "lab/wine", None, say(bot, FORUM, "after restart"))
    assert names[message.message_thread_id or 0] == "wine"
    assert [m for m, _ in server.calls].count("createForumTopic") == 2


async def test_a_deleted_topic_is_opened_again_once_and_the_message_goes(server, bot, store):
    topics = service(store, bot, [{"id": FORUM, "projects": ["wine"], "topics": "auto"}])
    first = await topics.send(FORUM, "lab/wine", None, say(bot, FORUM, "one"))
    server.delete_topic(FORUM, first.message_thread_id)
    second = await topics.send(FORUM, "lab/wine", None, say(bot, FORUM, "two"))
    assert second.message_thread_id not in (None, first.message_thread_id)
    assert [t.name for t in server.topics(FORUM)] == ["wine"]
    assert store.topics.thread(FORUM, "lab/wine") == second.message_thread_id
    assert [m.text for m in server.bot_messages(FORUM) if m.text] == ["two"]


async def test_a_chat_that_cannot_have_topics_is_told_once_and_gets_every_message(
    server, bot, store
):
    server.add_chat(FORUM, can_manage_topics=False)
    topics = service(
        store,
        bot,
        [
            {"id": PLAIN, "projects": ["wine"], "topics": "auto"},
            {"id": FORUM, "projects": ["wine"], "topics": "auto"},
        ],
    )
    for i in range(2):
        plain = await topics.send(PLAIN, "lab/wine", None, say(bot, PLAIN, f"p{i}"))
        forum = await topics.send(FORUM, "lab/wine", None, say(bot, FORUM, f"f{i}"))
        assert plain.message_thread_id is None and forum.message_thread_id is None
    told = pending_texts(store)
    assert len(told) == 2, told
    assert "not a forum" in told[0] and "Manage Topics" in told[1]
    assert "not a forum" in (topics.problem(PLAIN) or "")
    # Once the lab file stops asking for topics there, there is no problem to show.
    assert service(store, bot, [{"id": PLAIN, "projects": ["wine"]}]).problem(PLAIN) is None
    # The refusal is remembered: no new createForumTopic for every message.
    assert [m for m, _ in server.calls].count("createForumTopic") == 2


async def test_a_lab_topic_that_is_gone_falls_back_to_the_asked_thread_then_the_chat(
    server, bot, store
):
    asked = server.open_topic(FORUM, "where /sweep was typed").message_thread_id
    topics = service(store, bot, [{"id": FORUM, "projects": [{"name": "wine", "topic": 999}]}])
    message = await topics.send(FORUM, "lab/wine", asked, say(bot, FORUM, "card"))
    assert message.message_thread_id == asked
    server.delete_topic(FORUM, asked)
    message = await topics.send(FORUM, "lab/wine", asked, say(bot, FORUM, "card 2"))
    assert message.message_thread_id is None
    [notice] = pending_texts(store)
    assert "topic 999 of wine" in notice
    # Where the messages go is said once, not twice.
    assert notice.count("go to the chat itself") == 1, notice


async def test_other_refusals_are_not_taken_for_a_missing_topic(server, bot, store):
    topics = service(store, bot, [{"id": FORUM, "projects": ["wine"], "topics": "auto"}])
    with pytest.raises(BadRequest, match="Message text is empty"):
        await topics.send(FORUM, "lab/wine", None, say(bot, FORUM, ""))


async def test_check_says_which_chats_that_want_topics_are_no_forum(server, bot) -> None:
    data = parse_lab(
        {
            "entity": "lab",
            "chats": [
                {"id": FORUM, "name": "forum", "topics": "auto"},
                {"id": PLAIN, "name": "plain", "projects": [{"name": "wine", "topic": 3}]},
                {"id": -1005000000003, "name": "no topics"},
                {"id": -1005000000004, "name": "gone", "topics": "auto"},
            ],
        }
    )
    lines = await check_topics(bot, data)
    assert lines == [
        "  chat forum: a forum, topics ok",
        "  ⚠️ chat plain: not a forum, so its messages go to the chat itself"
        " (turn Topics on, or drop its topics)",
        "  ⚠️ chat gone: Chat not found",
    ]


def test_every_message_about_a_project_names_it_and_a_stop_confirmation_its_thread() -> None:
    single = [make_event(0, "failed", entity="other", project="iris")]
    burst = [make_event(i, "finished") for i in range(4)]
    waiter = StopWaiter("tok", 1, thread_id=9)
    data = RoutingData(stop_waiters={burst[0].run.path: [waiter]})
    notes = route(single + burst, LAB, data, ui_url="https://wandb.ai").notifications
    items = [to_outbox(note) for note in notes]
    assert {(i.chat_id, i.kind, i.topic, i.thread_id) for i in items} == {
        (1, "stop-confirmed", None, 9),  # answers where /stop was asked
        (1, "burst", "lab/wine", None),
        (2, "failed", "other/iris", None),
    }
