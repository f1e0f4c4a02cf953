"""Events reach the chats subscribed to them, one message each or grouped in bursts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.events import RunEvent
from bot.domain.format import utf16_len
from bot.domain.notify import Button, notifications_for, subscribed_projects
from config.lab import LabConfig
from wandb_client.models import RunSnapshot

T0 = datetime(2024, 11, 23, 9, 0, tzinfo=UTC)
UI = "https://wandb.ai"

LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "chats": [
            {"id": 1, "projects": ["wine"]},
            {"id": 2, "projects": ["wine", "other/iris"], "events": ["failed", "crashed"]},
            {"id": 3, "projects": ["iris"]},
        ],
        "projects": {"wine": {"metric": "accuracy"}},
    }
)


def make_event(i=0, kind="finished", entity="lab", project="wine", sweep=None, name=None):
    run = RunSnapshot(
        entity=entity,
        project=project,
        id=f"id{i}",
        display_name=name or f"run-{i}",
        state=kind if kind not in ("stalled", "recovered") else "running",
        url=f"{UI}/{entity}/{project}/runs/id{i}",
        created_at=T0,
        sweep=sweep,
        summary={"accuracy": i / 100, "_step": i, "_runtime": 10.0 * i},
    )
    return RunEvent(kind, run, "running", T0 + timedelta(seconds=i))


def by_chat(notes):
    out: dict[int, list] = {}
    for note in notes:
        out.setdefault(note.chat_id, []).append(note)
    return out


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # chat 1 hears everything of lab/wine; chat 2 only failures of lab/wine and other/iris
        ([make_event(0, "finished")], {1: ["finished"]}),
        ([make_event(0, "failed")], {1: ["failed"], 2: ["failed"]}),
        ([make_event(0, "failed", entity="other", project="iris")], {2: ["failed"]}),
        ([make_event(0, "failed", project="iris")], {3: ["failed"]}),
        ([make_event(0, "stalled", project="nobody")], {}),
    ],
)
def test_each_chat_hears_its_projects_and_event_kinds(events, expected):
    notes = notifications_for(events, LAB, ui_url=UI)
    assert {cid: [n.kind for n in ns] for cid, ns in by_chat(notes).items()} == expected


@pytest.mark.parametrize(
    ("count", "threshold", "expected_kinds"),
    [
        (1, 3, ["finished"]),
        (2, 3, ["finished", "finished"]),
        (3, 3, ["burst"]),
        (12, 3, ["burst"]),
        (3, 4, ["finished"] * 3),
    ],
)
def test_burst_threshold(count, threshold, expected_kinds):
    events = [make_event(i) for i in range(count)]
    notes = notifications_for(events, LAB, ui_url=UI, burst_threshold=threshold)
    assert [n.kind for n in notes] == expected_kinds
    assert sorted(k for n in notes for k in n.run_keys) == sorted(e.dedupe_key for e in events)


def test_groups_are_per_project_and_sweep():
    events = [make_event(i, sweep="aaaa1111") for i in range(3)]
    events += [make_event(10 + i, sweep="bbbb2222") for i in range(2)]
    notes = notifications_for(events, LAB, ui_url=UI)
    assert [n.kind for n in notes] == ["burst", "finished", "finished"]
    assert "aaaa1111" in notes[0].text


def test_single_event_message_has_its_buttons_and_key():
    event = make_event(7)
    (note,) = notifications_for([event], LAB, ui_url=UI)
    assert note.dedupe_key == f"1:{event.dedupe_key}"
    assert note.run_keys == (event.dedupe_key,)
    assert note.buttons == (
        (Button("Config", "config", event.run.path), Button("Plot", "plot", event.run.path)),
    )


def test_extra_subscriptions_and_paused_chats():
    events = [make_event(0, "finished", project="pears")]
    notes = notifications_for(
        events, LAB, ui_url=UI, extra_subscriptions={1: ["pears"], 99: ["lab/pears"]}
    )
    assert sorted(n.chat_id for n in notes) == [1, 99]
    notes = notifications_for(
        events, LAB, ui_url=UI, extra_subscriptions={1: ["pears"], 99: ["pears"]}, paused_chats={1}
    )
    assert [n.chat_id for n in notes] == [99]


def test_bare_project_means_the_lab_entity_or_the_projects_own():
    lab = LabConfig.model_validate(
        {
            "entity": "lab",
            "chats": [{"id": 1, "projects": ["a", "x/b"]}],
            "projects": {"c": {"entity": "team"}},
        }
    )
    assert subscribed_projects(lab, 1, ["c"]) == {"lab/a", "x/b", "team/c"}


def test_sixty_events_make_few_messages_within_the_limit():
    events = [
        make_event(i, "failed" if i % 3 else "crashed", name='<b>&"x' * 60) for i in range(60)
    ]
    notes = [n for n in notifications_for(events, LAB, ui_url=UI) if n.chat_id == 1]
    assert 1 <= len(notes) <= 5
    assert all(utf16_len(n.text) <= 4096 for n in notes)
    assert len({n.dedupe_key for n in notes}) == len(notes)


def test_burst_keys_are_stable_and_distinct():
    events = [make_event(i) for i in range(5)]
    first = notifications_for(events, LAB, ui_url=UI)
    again = notifications_for(list(reversed(events)), LAB, ui_url=UI)
    other = notifications_for([make_event(i) for i in range(1, 6)], LAB, ui_url=UI)
    assert [n.dedupe_key for n in first] == [n.dedupe_key for n in again]
    assert first[0].dedupe_key.startswith("1:burst:") and first[0].dedupe_key.endswith(":0")
    assert first[0].dedupe_key != other[0].dedupe_key


def test_keys_differ_per_chat():
    notes = notifications_for([make_event(0, "failed")], LAB, ui_url=UI)
    assert len({n.dedupe_key for n in notes}) == 2


def test_chat_time_zone_comes_from_its_digest():
    lab = LabConfig.model_validate(
        {
            "entity": "lab",
            "chats": [
                {
                    "id": 1,
                    "projects": ["wine"],
                    "digest": {"cron": "0 9 * * *", "timezone": "Asia/Tokyo"},
                }
            ],
        }
    )
    run = make_event(0, "crashed").run
    run = RunSnapshot(**{**{f: getattr(run, f) for f in run.__slots__}, "heartbeat_at": T0})
    (note,) = notifications_for([RunEvent("crashed", run, "running", T0)], lab, ui_url=UI)
    assert "since 18:00" in note.text


def test_no_events_no_messages():
    assert notifications_for([], LAB, ui_url=UI) == []


def test_a_sweep_runs_own_parameters_lead_its_message() -> None:
    from dataclasses import replace

    event = make_event(1, sweep="k3x9q")
    run = replace(event.run, config={"dataset": "wine", "max_depth": 4, "n_estimators": 50})
    event = replace(event, run=run)
    [plain] = notifications_for([event], LAB, ui_url=UI)
    [swept] = notifications_for(
        [event], LAB, ui_url=UI, sweep_params={"k3x9q": ("n_estimators", "max_depth")}
    )
    assert "dataset=wine · max_depth=4 · n_estimators=50" in plain.text
    assert "n_estimators=50 · max_depth=4" in swept.text and "dataset=" not in swept.text


def test_every_part_of_a_long_burst_reaches_the_store() -> None:
    from datetime import UTC, datetime

    from bot.callbacks import to_outbox
    from bot.store import Store

    events = [make_event(i, "crashed", name=f"node-{i}-" + "x" * 60) for i in range(80)]
    notes = [n for n in notifications_for(events, LAB, ui_url=UI) if n.chat_id == 1]
    assert len(notes) > 1
    store = Store(":memory:")
    ids = store.outbox.enqueue([to_outbox(n) for n in notes], datetime.now(UTC))
    assert len(ids) == len(notes)


def test_a_finished_runs_parameter_line_leaves_out_the_projects_usual_values() -> None:
    event = make_event(0)
    config = {"dataset": "wine", "epochs": 5, "lr": 0.3, "seed": 4}
    event = replace(event, run=replace(event.run, config=config))
    usual = {"lab/wine": {"dataset": "wine", "epochs": 5, "lr": 0.01}}
    [plain] = notifications_for([event], LAB, ui_url=UI)
    [note] = notifications_for([event], LAB, ui_url=UI, usual=usual)
    assert "dataset=wine" in plain.text and "epochs=5" in plain.text
    assert "dataset=" not in note.text and "epochs=" not in note.text
    assert "lr=0.3" in note.text and "seed=4" in note.text
