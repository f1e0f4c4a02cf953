"""Routing is one pure function: subscriptions, silences, migrations and stop replies as data."""

from __future__ import annotations

import pytest

from bot.domain.keys import SweepKey
from bot.domain.routing import RoutingData, StopWaiter, follow_migrations, route
from config.lab import LabConfig
from tests.test_domain_notify import UI, make_event

LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "chats": [
            {"id": 1, "projects": ["wine"]},
            {"id": 2, "projects": ["wine", "other/iris"]},
        ],
    }
)


def chats(routed) -> list[tuple[int, str]]:
    return sorted((note.chat_id, note.kind) for note in routed.notifications)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (RoutingData(), [(1, "finished"), (2, "finished")]),
        # A silence mutes one chat for one project only.
        (RoutingData(silenced={(1, "lab/wine")}), [(2, "finished")]),
        (RoutingData(silenced={(1, "other/iris")}), [(1, "finished"), (2, "finished")]),
        # /watch adds a chat the lab file does not name; silenced, it hears nothing.
        (
            RoutingData(subscriptions={7: ["lab/wine"]}),
            [(1, "finished"), (2, "finished"), (7, "finished")],
        ),
        (
            RoutingData(subscriptions={7: ["lab/wine"]}, silenced={(7, "lab/wine")}),
            [(1, "finished"), (2, "finished")],
        ),
        # A migrated group hears under its new id; a silence set there mutes the old entry.
        (RoutingData(migrations={1: 10}), [(2, "finished"), (10, "finished")]),
        (RoutingData(migrations={1: 10}, silenced={(10, "lab/wine")}), [(2, "finished")]),
        (RoutingData(migrations={1: 10, 10: 11}), [(2, "finished"), (11, "finished")]),
    ],
)
def test_who_hears_a_finished_run(data: RoutingData, expected: list[tuple[int, str]]) -> None:
    assert chats(route([make_event(0)], LAB, data, ui_url=UI)) == expected


def test_a_stop_request_is_answered_once_the_run_ends_and_its_token_is_returned() -> None:
    event = make_event(0, "killed")
    data = RoutingData(stop_waiters={event.run.path: [StopWaiter("tok", 2)]}, migrations={2: 20})
    routed = route([event], LAB, data, ui_url=UI)
    assert (20, "stop-confirmed") in chats(routed)
    assert routed.answered == ("tok",)
    confirmation = next(n for n in routed.notifications if n.kind == "stop-confirmed")
    assert confirmation.run_keys == (event.dedupe_key,)


@pytest.mark.parametrize("kind", ["stalled", "recovered"])
def test_a_stop_request_waits_while_the_run_lives(kind: str) -> None:
    event = make_event(0, kind)
    data = RoutingData(stop_waiters={event.run.path: [StopWaiter("tok", 2)]})
    routed = route([event], LAB, data, ui_url=UI)
    assert "stop-confirmed" not in [n.kind for n in routed.notifications]
    assert routed.answered == ()


def test_no_events_route_nowhere() -> None:
    routed = route([], LAB, RoutingData(subscriptions={7: ["lab/wine"]}), ui_url=UI)
    assert routed.notifications == () and routed.answered == ()


def test_migration_cycles_end() -> None:
    assert follow_migrations(1, {1: 2, 2: 1}) in (1, 2)
    assert follow_migrations(5, {1: 2}) == 5


CARD = SweepKey("lab", "wine", "sw1")


@pytest.mark.parametrize(
    ("kinds", "data", "expected"),
    [
        # The card's chat hears nothing of finished or killed runs; the other chat does.
        (["finished", "killed"], RoutingData(cards={CARD: 1}), [(2, "finished"), (2, "killed")]),
        # Failures, crashes and stalls still get their own message in the card's chat.
        (
            ["failed", "crashed", "stalled"],
            RoutingData(cards={CARD: 1}),
            [(chat, kind) for chat in (1, 2) for kind in ("crashed", "failed", "stalled")],
        ),
        # The card follows its chat to a supergroup: the lab file's old id folds there too.
        (["finished"], RoutingData(cards={CARD: 1}, migrations={1: 10}), [(2, "finished")]),
        # A sweep no card claims (another sweep's card, or `sweep_runs: each`) is told as ever.
        (
            ["finished"],
            RoutingData(cards={SweepKey("lab", "wine", "other"): 1}),
            [(1, "finished"), (2, "finished")],
        ),
    ],
)
def test_a_sweep_card_tells_its_finished_runs_instead_of_a_message(
    kinds: list[str], data: RoutingData, expected: list[tuple[int, str]]
) -> None:
    events = [make_event(i, kind, sweep="sw1") for i, kind in enumerate(kinds)]
    assert chats(route(events, LAB, data, ui_url=UI, burst_threshold=9)) == expected


def test_folded_runs_are_recorded_as_told_in_the_cards_chat_only() -> None:
    events = [make_event(i, "finished", sweep="sw1") for i in range(5)]
    routed = route(events, LAB, RoutingData(cards={CARD: 1}, migrations={1: 10}), ui_url=UI)
    assert sorted(routed.folded) == sorted((10, e.dedupe_key) for e in events)
    # The other chat still gets its burst, which names every run.
    assert [n.kind for n in routed.notifications] == ["burst"]
    assert routed.notifications[0].chat_id == 2


def test_a_run_outside_any_sweep_never_folds() -> None:
    routed = route([make_event(0)], LAB, RoutingData(cards={CARD: 1}), ui_url=UI)
    assert chats(routed) == [(1, "finished"), (2, "finished")] and routed.folded == ()
