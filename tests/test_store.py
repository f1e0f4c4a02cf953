"""The SQLite store: migrations, outbox exactly-once, crash safety, chat migration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import MIGRATIONS, OutboxItem, Store, SweepRecord

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bot.sqlite3")


def item(key: str, chat: int = -100, run_keys: tuple[str, ...] = ()) -> OutboxItem:
    return OutboxItem(
        chat_id=chat, dedupe_key=key, kind="run", text=f"text {key}", run_keys=run_keys
    )


def test_new_file_is_at_latest_schema_and_reopens_without_migrating_again(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    again = Store(path)
    assert again.schema_version == len(MIGRATIONS)
    assert again.db._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_dedupe_key_is_enqueued_once(store: Store) -> None:
    assert len(store.outbox.enqueue([item("a"), item("a")], NOW)) == 1
    assert store.outbox.enqueue([item("a")], NOW) == []
    assert [row.dedupe_key for row in store.outbox.due(NOW)] == ["a"]


def test_message_whose_runs_were_all_notified_is_dropped(store: Store) -> None:
    store.outbox.enqueue([item("burst-1", run_keys=("r1:finished", "r2:finished"))], NOW)
    assert store.outbox.enqueue([item("single-r1", run_keys=("r1:finished",))], NOW) == []
    assert (
        len(store.outbox.enqueue([item("single-r3", run_keys=("r1:finished", "r3:failed"))], NOW))
        == 1
    )
    assert (
        len(store.outbox.enqueue([item("other-chat", chat=-200, run_keys=("r1:finished",))], NOW))
        == 1
    )


def test_runs_a_sweep_card_told_are_never_announced_by_a_later_poll(store: Store) -> None:
    store.record_poll(
        "lab",
        "wine",
        now=NOW,
        watermark=NOW,
        active=False,
        memory={},
        messages=[],
        told=[(-100, "r1:finished"), (-100, "r2:finished")],
    )
    assert store.outbox.due(NOW) == []
    # The same runs in a later burst: already told in this chat, not in another.
    assert store.outbox.enqueue([item("burst", run_keys=("r1:finished", "r2:finished"))], NOW) == []
    assert len(store.outbox.enqueue([item("b2", chat=-200, run_keys=("r1:finished",))], NOW)) == 1


def test_sent_message_is_no_longer_due(store: Store) -> None:
    [outbox_id] = store.outbox.enqueue([item("a")], NOW)
    store.outbox.mark_sent(outbox_id, 17, NOW)
    assert store.outbox.due(NOW) == []
    assert store.outbox.counts() == {"pending": 0, "sent": 1, "dead": 0}


def test_retry_later_hides_message_until_its_time(store: Store) -> None:
    [outbox_id] = store.outbox.enqueue([item("a")], NOW)
    attempts = store.outbox.retry_later(outbox_id, "429", NOW + timedelta(seconds=5))
    assert attempts == 1
    assert store.outbox.due(NOW) == []
    assert [r.id for r in store.outbox.due(NOW + timedelta(seconds=5))] == [outbox_id]
    assert store.outbox.next_due_at() == NOW + timedelta(seconds=5)


def test_dead_letter_keeps_reason_and_is_never_due(store: Store) -> None:
    [outbox_id] = store.outbox.enqueue([item("a")], NOW)
    store.outbox.dead_letter(outbox_id, "Bad Request: message is too long")
    assert store.outbox.due(NOW + timedelta(days=1)) == []
    assert store.outbox.dead_letters()[0]["last_error"] == "Bad Request: message is too long"


def test_migrated_chat_takes_its_subscriptions_and_pending_messages(store: Store) -> None:
    store.chats.subscribe(-100, "lab", "wine", 1, NOW)
    store.outbox.enqueue([item("a", chat=-100, run_keys=("r:finished",))], NOW)
    store.chats.migrate(-100, -1001)
    assert store.chats.subscriptions() == {-1001: {("lab", "wine")}}
    assert [r.chat_id for r in store.outbox.due(NOW)] == [-1001]
    assert store.chats.migrations() == {-100: -1001}
    assert store.outbox.enqueue([item("b", chat=-1001, run_keys=("r:finished",))], NOW) == []


def test_record_poll_is_atomic_and_idempotent(store: Store) -> None:
    mem = {"lab/p/r1": {"state": "finished"}}
    msgs = [item("x:lab/p/r1:finished", run_keys=("lab/p/r1:finished",))]
    ids = store.record_poll(
        "lab", "p", now=NOW, watermark=NOW, active=False, memory=mem, messages=msgs
    )
    again = store.record_poll(
        "lab", "p", now=NOW, watermark=NOW, active=False, memory=mem, messages=msgs
    )
    assert len(ids) == 1 and again == []
    state = store.runs.project_state("lab", "p")
    assert state.baseline_done and state.watermark == NOW and not state.active
    assert store.runs.memory("lab", "p") == mem


def test_poll_failures_count_up_and_reset_on_success(store: Store) -> None:
    assert store.runs.record_failure("lab", "p", NOW, "timeout") == 1
    assert store.runs.record_failure("lab", "p", NOW, "timeout") == 2
    store.record_poll("lab", "p", now=NOW, watermark=None, active=True, memory={}, messages=[])
    assert store.runs.project_state("lab", "p").failures == 0


def test_callback_tokens_fit_telegram_callback_data(store: Store) -> None:
    token = store.callbacks.put("stop", "lab/wine-quality-dev/" + "x" * 80, NOW, user_id=5)
    assert len(f"cb:{token}".encode()) <= 64
    record = store.callbacks.get(token)
    assert record is not None and record.target.endswith("x" * 80) and record.user_id == 5
    store.callbacks.drop(token)
    assert store.callbacks.get(token) is None


def test_agents_and_sweeps_round_trip(store: Store) -> None:
    store.sweeps.add(
        SweepRecord("lab/p/abc", "wine", -100, 3, 1, "", 1, NOW, None, None, None, (), False)
    )
    agent_id = store.agents.add(
        sweep_path="lab/p/abc",
        idx=0,
        pid=123,
        pgid=123,
        cmdline=["wandb", "agent"],
        log_path="/tmp/a.log",
        gpus="0",
        started_at=NOW,
    )
    assert [a.pid for a in store.agents.all(live_only=True)] == [123]
    assert store.agents.end(agent_id, 0, NOW) and not store.agents.end(agent_id, 0, NOW)
    assert store.agents.all(live_only=True) == []
    store.sweeps.update("lab/p/abc", card_message_id=9, failures=[NOW], finished_at=NOW)
    sweep = store.sweeps.get("lab/p/abc")
    assert sweep is not None and sweep.card_message_id == 9 and sweep.failures == (NOW,)
    assert store.sweeps.all(active_only=True) == []
    assert store.sweeps.get("lab/p/none") is None
    agent = store.agents.get(agent_id)
    assert agent is not None and agent.exit_code == 0 and agent.cmdline == ("wandb", "agent")
    assert store.agents.get(agent_id + 1) is None


def test_pending_callbacks_of_one_action_are_grouped_by_target(store: Store) -> None:
    first = store.callbacks.put("await_stop", "lab/p/a", NOW, chat_id=-1)
    second = store.callbacks.put("await_stop", "lab/p/a", NOW + timedelta(seconds=1), chat_id=-2)
    other = store.callbacks.put("await_stop", "lab/p/b", NOW, chat_id=-1)
    store.callbacks.put("plot", "lab/p/a", NOW)
    pending = store.callbacks.pending("await_stop")
    assert {t: [r.token for r in rs] for t, rs in pending.items()} == {
        "lab/p/a": [first, second],
        "lab/p/b": [other],
    }
    assert pending["lab/p/a"][1].chat_id == -2


def test_record_poll_drops_the_callbacks_its_messages_answer(store: Store) -> None:
    token = store.callbacks.put("await_stop", "lab/p/a", NOW, chat_id=-1)
    store.record_poll(
        "lab",
        "p",
        now=NOW,
        watermark=NOW,
        active=False,
        memory={},
        messages=[item("stopped")],
        used_callbacks=[token],
    )
    assert store.callbacks.get(token) is None
    assert [r.dedupe_key for r in store.outbox.due(NOW)] == ["stopped"]


def test_silences_expire(store: Store) -> None:
    store.silences.add(-100, "lab", "p", NOW + timedelta(hours=1))
    assert (-100, "lab", "p") in store.silences.active(NOW)
    assert store.silences.active(NOW + timedelta(hours=2)) == {}


def test_outbox_row_written_before_kill_9_survives_once(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    writer = textwrap.dedent(
        f"""
        import os, signal, sys
        from datetime import UTC, datetime
        sys.path.insert(0, {str(Path.cwd())!r})
        from bot.store import OutboxItem, Store
        store = Store({str(db)!r})
        store.outbox.enqueue(
            [OutboxItem(-1, "k1", "run", "hello", run_keys=("r:finished",))], datetime.now(UTC)
        )
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", writer], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    reopened = Store(db)
    assert [r.dedupe_key for r in reopened.outbox.due(datetime.now(UTC))] == ["k1"]
    again = OutboxItem(-1, "k1", "run", "hello", run_keys=("r:finished",))
    assert reopened.outbox.enqueue([again], datetime.now(UTC)) == []
    assert reopened.outbox.counts()["pending"] == 1
    assert os.path.exists(db)


def test_old_buttons_and_stale_stop_requests_are_pruned(store: Store) -> None:
    old = store.callbacks.put("config", "lab/p/r", NOW - timedelta(days=40))
    waiting = store.callbacks.put("await_stop", "lab/p/r", NOW - timedelta(days=40))
    fresh = store.callbacks.put("plot", "lab/p/r", NOW)
    assert store.callbacks.prune(NOW - timedelta(days=30)) == 2
    assert store.callbacks.get(old) is None and store.callbacks.get(waiting) is None
    assert store.callbacks.get(fresh) is not None


def test_sent_photo_bytes_are_dropped(store: Store) -> None:
    [outbox_id] = store.outbox.enqueue([OutboxItem(-1, "d", "digest", "t", photo=b"\x89PNG")], NOW)
    store.outbox.mark_sent(outbox_id, 5, NOW)
    assert store.db._db.execute("SELECT photo FROM outbox").fetchone()[0] is None


def test_a_paused_chats_backlog_does_not_hold_up_other_chats(store: Store) -> None:
    store.chats.pause(-1, "Forbidden: bot was kicked from the group chat")
    store.outbox.enqueue(
        [item(f"k{i}", chat=-1) for i in range(120)] + [item("other", chat=-2)], NOW
    )
    assert [r.dedupe_key for r in store.outbox.due(NOW, 100)] == ["other"]
    store.chats.resume(-1)
    assert len(store.outbox.due(NOW, 200)) == 121


def test_memory_of_chosen_runs_unfinished_runs_and_pruning(store: Store) -> None:
    memory = {
        "lab/p/a": {"state": "running"},
        "lab/p/b": {"state": "finished"},
        "lab/p/c": {"state": "pending"},
    }
    store.record_poll("lab", "p", now=NOW, watermark=NOW, active=True, memory=memory, messages=[])
    assert set(store.runs.memory("lab", "p", ["lab/p/b", "lab/p/zz"])) == {"lab/p/b"}
    assert sorted(store.runs.unfinished("lab", "p")) == ["lab/p/a", "lab/p/c"]
    assert store.runs.prune(NOW + timedelta(days=1)) == 1
    assert set(store.runs.memory("lab", "p")) == {"lab/p/a", "lab/p/c"}


def test_due_takes_chats_in_turn_oldest_first_within_each(store: Store) -> None:
    store.outbox.enqueue([item(f"busy{i}", chat=-1) for i in range(150)], NOW)
    store.outbox.enqueue([item("quiet1", chat=-2), item("quiet2", chat=-2)], NOW)
    store.outbox.enqueue([item("late", chat=-3)], NOW)
    due = [row.dedupe_key for row in store.outbox.due(NOW, 100)]
    assert due[:6] == ["busy0", "quiet1", "late", "busy1", "quiet2", "busy2"]
    assert len(due) == 100


def test_a_chat_whose_oldest_message_must_wait_keeps_its_order(store: Store) -> None:
    first, _ = store.outbox.enqueue([item("first"), item("second")], NOW)
    store.outbox.retry_later(first, "timed out", NOW + timedelta(seconds=30))
    assert store.outbox.due(NOW) == []
    assert store.outbox.next_due_at() == NOW + timedelta(seconds=30)
    later = NOW + timedelta(seconds=30)
    assert [r.dedupe_key for r in store.outbox.due(later)] == ["first", "second"]


def test_resuming_a_chat_counts_what_was_held(store: Store) -> None:
    store.chats.pause(-1, "kicked")
    store.outbox.enqueue([item("a", chat=-1), item("b", chat=-1), item("c", chat=-2)], NOW)
    assert store.chats.resume(-1) == 2
    assert store.chats.resume(-1) == 0  # no longer paused


def test_data_directory_and_database_files_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    old = os.umask(0)
    try:
        store = Store(data / "bot.sqlite3")
        store.outbox.enqueue([item("a")], NOW)  # the WAL and its index exist from here
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in data.iterdir()}
    assert data.stat().st_mode & 0o777 == 0o700
    assert modes == {"bot.sqlite3": 0o600, "bot.sqlite3-wal": 0o600, "bot.sqlite3-shm": 0o600}
    store.close()


def test_an_existing_world_readable_data_directory_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "bot.sqlite3").touch(mode=0o644)
    Store(data / "bot.sqlite3").close()
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "bot.sqlite3").stat().st_mode & 0o777 == 0o600


def test_outbox_row_keeps_its_thread_and_topic(store: Store) -> None:
    store.outbox.enqueue(
        [
            OutboxItem(-100, "in-topic", "run", "t", thread_id=12, topic="lab/wine"),
            item("plain"),
        ],
        NOW,
    )
    rows = {row.dedupe_key: row for row in store.outbox.due(NOW)}
    assert (rows["in-topic"].thread_id, rows["in-topic"].topic) == (12, "lab/wine")
    assert (rows["plain"].thread_id, rows["plain"].topic) == (None, None)
