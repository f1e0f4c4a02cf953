"""People: the lab file's `people:`, owner mentions, /mine routing and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.commands import UsageError
from bot.domain.events import RunEvent
from bot.domain.people import hold_until, is_urgent, mention, parse_mine, quiet_until
from bot.domain.routing import RoutingData, route
from config.lab import EventKind, LabConfig, LabFileError, QuietHours, parse_lab
from wandb_client.models import RunSnapshot

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UI = "https://wandb.ai"
ALICE, BOB = 1001, 1002
LAB_CHAT = -100

LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "chats": [{"id": LAB_CHAT, "projects": ["wine"]}],
        "people": {
            "alice": {"telegram": ALICE, "name": "Alice <A&B>", "quiet": "22:00-08:00"},
            "bob": BOB,
        },
        "timezone": "Europe/Berlin",
    }
)


def event(kind: EventKind = "failed", user: str | None = "alice", i: int = 0) -> RunEvent:
    run = RunSnapshot(
        entity="lab",
        project="wine",
        id=f"id{i}",
        display_name=f"run-{i}",
        state=kind if kind != "stalled" else "running",
        url=f"{UI}/lab/wine/runs/id{i}",
        created_at=T0,
        user=user,
        summary={"_step": 3, "_runtime": 10.0},
    )
    return RunEvent(kind, run, "running", T0 + timedelta(seconds=i))


# --- the lab file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("people", "problem"),
    [
        ({"alice": -5}, "people.alice.telegram: Input should be greater than 0"),
        ({"alice": "x"}, "people.alice: must be a Telegram user id"),
        ({"alice": {"telegram": 5, "quiet": "22:00-8"}}, "people.alice.quiet: quiet '22:00-8'"),
        ({"alice": {"telegram": 5, "quiet": "24:00-08:00"}}, "people.alice.quiet"),
        ({"alice": {"telegram": 5, "quiet": "08:00-08:00"}}, "starts and ends at the same"),
        ({"alice": {"telegram": 5, "timezone": "Mars/Base"}}, "unknown time zone 'Mars/Base'"),
        ({"alice": {"telegram": 5, "nick": "a"}}, "people.alice.nick: Extra inputs"),
        ({"a": 5, "b": 5}, "people: Telegram user 5 is both 'a' and 'b'"),
        ({"a b": 5}, "people: W&B username 'a b' may use only"),
    ],
)
def test_a_bad_person_stops_the_bot_naming_the_field(people: object, problem: str) -> None:
    with pytest.raises(LabFileError) as caught:
        parse_lab({"entity": "lab", "people": people})
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_short_and_long_forms_read_alike() -> None:
    alice = LAB.people["alice"]
    assert LAB.people["bob"].telegram == BOB and LAB.people["bob"].quiet is None
    assert alice.quiet == QuietHours.parse("22:00-08:00") and str(alice.quiet) == "22:00-08:00"
    assert LAB.person(ALICE) == ("alice", alice) and LAB.person(999) is None
    assert LAB.person_zone(alice) == "Europe/Berlin"


# --- mentions ---------------------------------------------------------------------------


def test_a_mapped_owner_is_a_mention_with_the_name_escaped() -> None:
    assert (
        mention("alice", LAB.people) == f'<a href="tg://user?id={ALICE}">Alice &lt;A&amp;B&gt;</a>'
    )
    assert mention("bob", LAB.people) == f'<a href="tg://user?id={BOB}">bob</a>'


def test_an_unmapped_owner_is_plain_text_and_never_dropped() -> None:
    assert mention("carol<x>", LAB.people) == "carol&lt;x&gt;"
    assert mention(None, LAB.people) == ""


def test_the_lab_chat_message_names_the_owner_in_its_first_line() -> None:
    routed = route([event("failed"), event("finished", "carol", 1)], LAB, RoutingData(), ui_url=UI)
    first = {n.kind: n.text.splitlines()[0] for n in routed.notifications}
    assert first["failed"].endswith(f'👤 <a href="tg://user?id={ALICE}">Alice &lt;A&amp;B&gt;</a>')
    assert first["finished"].endswith("👤 carol")


# --- /mine routing ----------------------------------------------------------------------


def test_mine_sends_a_person_their_own_runs_and_nobody_elses() -> None:
    events = [event("failed", "alice", 0), event("finished", "bob", 1), event("killed", "alice", 2)]
    data = RoutingData(mine=[ALICE, BOB])
    notes = route(events, LAB, data, ui_url=UI).notifications
    private = {(n.chat_id, n.kind) for n in notes if n.chat_id > 0}
    # A stop is its owner's own doing: /mine leaves killed runs to the lab chat.
    assert private == {(ALICE, "failed"), (BOB, "finished")}
    mine = next(n for n in notes if n.chat_id == ALICE)
    assert "tg://user" not in mine.text and "id0" in mine.text


def test_mine_of_someone_no_longer_in_people_sends_nothing() -> None:
    data = RoutingData(mine=[4242])
    notes = route([event("failed", "alice")], LAB, data, ui_url=UI).notifications
    assert {n.chat_id for n in notes} == {LAB_CHAT}


def test_a_burst_of_a_persons_runs_with_a_failure_is_urgent() -> None:
    events = [event("finished", "alice", i) for i in range(3)] + [event("failed", "alice", 3)]
    notes = route(events, LAB, RoutingData(mine=[ALICE]), ui_url=UI).notifications
    assert [n.kind for n in notes if n.chat_id == ALICE] == ["burst-failed"]
    calm = route(events[:3], LAB, RoutingData(mine=[ALICE]), ui_url=UI).notifications
    assert [n.kind for n in calm if n.chat_id == ALICE] == ["burst"]


@pytest.mark.parametrize(("args", "on"), [([], True), (["off"], False), (["OFF"], False)])
def test_mine_parses(args: list[str], on: bool) -> None:
    assert parse_mine(args) is on


@pytest.mark.parametrize("args", [["on"], ["off", "now"]])
def test_mine_refuses_other_words_with_its_usage(args: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        parse_mine(args)
    assert caught.value.usage == "/mine [off]"


# --- quiet hours ------------------------------------------------------------------------

NIGHT = QuietHours.parse("22:00-08:00")
LUNCH = QuietHours.parse("12:00-13:30")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "quiet", "zone", "until"),
    [
        # Berlin is UTC+1 in winter: 22:00-08:00 local is 21:00-07:00 UTC.
        ("2026-11-30T20:59:59", NIGHT, "Europe/Berlin", None),
        ("2026-11-30T21:00:00", NIGHT, "Europe/Berlin", "2026-12-01T07:00:00"),
        ("2026-11-30T23:30:00", NIGHT, "Europe/Berlin", "2026-12-01T07:00:00"),  # after midnight
        ("2026-12-01T06:59:00", NIGHT, "Europe/Berlin", "2026-12-01T07:00:00"),
        ("2026-12-01T07:00:00", NIGHT, "Europe/Berlin", None),  # the end is not quiet
        ("2026-11-30T12:00:00", LUNCH, "UTC", "2026-11-30T13:30:00"),  # same-day range
        ("2026-11-30T13:30:00", LUNCH, "UTC", None),
        ("2026-11-30T11:59:00", LUNCH, "UTC", None),
        # A night that spans spring forward (29 Mar 2026, 02:00 → 03:00): 08:00 is UTC+2.
        ("2026-03-28T22:00:00", NIGHT, "Europe/Berlin", "2026-03-29T06:00:00"),
        # ...and fall back (25 Oct 2026, 03:00 → 02:00): 08:00 is UTC+1 again.
        ("2026-10-24T21:00:00", NIGHT, "Europe/Berlin", "2026-10-25T07:00:00"),
        # An end in the skipped hour comes at the same wall time after the jump (03:30).
        (
            "2026-03-28T23:00:00",
            QuietHours.parse("22:00-02:30"),
            "Europe/Berlin",
            "2026-03-29T01:30:00",
        ),
        # An end in the repeated hour: the first 02:30, or the second when past the first.
        (
            "2026-10-24T23:00:00",
            QuietHours.parse("22:00-02:30"),
            "Europe/Berlin",
            "2026-10-25T00:30:00",
        ),
        (
            "2026-10-25T01:10:00",
            QuietHours.parse("22:00-02:30"),
            "Europe/Berlin",
            "2026-10-25T01:30:00",
        ),
        # Across the date line.
        ("2026-11-30T10:00:00", NIGHT, "Pacific/Auckland", "2026-11-30T19:00:00"),
    ],
)
def test_quiet_until_reads_the_wall_clock_of_the_zone(
    now: str, quiet: QuietHours, zone: str, until: str | None
) -> None:
    assert quiet_until(utc(now), quiet, zone) == (utc(until) if until else None)


@pytest.mark.parametrize(
    ("kind", "urgent"),
    [
        ("finished", False),
        ("digest", False),
        ("burst", False),
        ("killed", False),
        ("sweep-end", False),
        ("failed", True),
        ("crashed", True),
        ("stalled", True),
        ("burst-failed", True),
        ("alert", True),
        ("attention", True),
        ("config", True),
        ("digest-asked", True),
    ],
)
def test_only_non_urgent_messages_wait(kind: str, urgent: bool) -> None:
    night = utc("2026-11-30T23:00:00")
    assert is_urgent(kind) is urgent
    held = hold_until(ALICE, kind, night, LAB.people, "Europe/Berlin")
    assert held == (None if urgent else utc("2026-12-01T07:00:00"))


def test_quiet_hours_hold_only_their_persons_private_chat() -> None:
    night = utc("2026-11-30T23:00:00")
    assert hold_until(LAB_CHAT, "finished", night, LAB.people, "UTC") is None
    assert hold_until(BOB, "finished", night, LAB.people, "UTC") is None  # no quiet hours
    own_zone = LAB.people["alice"].model_copy(update={"timezone": "UTC"})
    people = {"alice": own_zone}
    assert hold_until(ALICE, "finished", night, people, "Europe/Berlin") == utc(
        "2026-12-01T08:00:00"
    )
