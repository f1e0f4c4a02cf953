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
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_dedupe_key_is_enqueued_once(store: Store) -> None:
    assert len(store.enqueue([item("a"), item("a")], NOW)) == 1
    assert store.enqueue([item("a")], NOW) == []
    assert [row.dedupe_key for row in store.due(NOW)] == ["a"]


def test_message_whose_runs_were_all_notified_is_dropped(store: Store) -> None:
    store.enqueue([item("burst-1", run_keys=("r1:finished", "r2:finished"))], NOW)
    assert store.enqueue([item("single-r1", run_keys=("r1:finished",))], NOW) == []
    assert len(store.enqueue([item("single-r3", run_keys=("r1:finished", "r3:failed"))], NOW)) == 1
    assert len(store.enqueue([item("other-chat", chat=-200, run_keys=("r1:finished",))], NOW)) == 1


def test_sent_message_is_no_longer_due(store: Store) -> None:
    [outbox_id] = store.enqueue([item("a")], NOW)
    store.mark_sent(outbox_id, 17, NOW)
    assert store.due(NOW) == []
    assert store.outbox_counts() == {"pending": 0, "sent": 1, "dead": 0}


def test_retry_later_hides_message_until_its_time(store: Store) -> None:
    [outbox_id] = store.enqueue([item("a")], NOW)
    attempts = store.retry_later(outbox_id, "429", NOW + timedelta(seconds=5))
    assert attempts == 1
    assert store.due(NOW) == []
    assert [r.id for r in store.due(NOW + timedelta(seconds=5))] == [outbox_id]
    assert store.next_due_at() == NOW + timedelta(seconds=5)


def test_dead_letter_keeps_reason_and_is_never_due(store: Store) -> None:
    [outbox_id] = store.enqueue([item("a")], NOW)
    store.dead_letter(outbox_id, "Bad Request: message is too long")
    assert store.due(NOW + timedelta(days=1)) == []
    assert store.dead_letters()[0]["last_error"] == "Bad Request: message is too long"


def test_migrated_chat_takes_its_subscriptions_and_pending_messages(store: Store) -> None:
    store.subscribe(-100, "lab", "wine", 1, NOW)
    store.enqueue([item("a", chat=-100, run_keys=("r:finished",))], NOW)
    store.migrate_chat(-100, -1001)
    assert store.subscriptions() == {-1001: {("lab", "wine")}}
    assert [r.chat_id for r in store.due(NOW)] == [-1001]
    assert store.migrations() == {-100: -1001}
    assert store.enqueue([item("b", chat=-1001, run_keys=("r:finished",))], NOW) == []


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
    state = store.project_state("lab", "p")
    assert state.baseline_done and state.watermark == NOW and not state.active
    assert store.run_memory("lab", "p") == mem


def test_poll_failures_count_up_and_reset_on_success(store: Store) -> None:
    assert store.record_poll_failure("lab", "p", NOW, "timeout") == 1
    assert store.record_poll_failure("lab", "p", NOW, "timeout") == 2
    store.record_poll("lab", "p", now=NOW, watermark=None, active=True, memory={}, messages=[])
    assert store.project_state("lab", "p").failures == 0


def test_callback_tokens_fit_telegram_callback_data(store: Store) -> None:
    token = store.put_callback("stop", "lab/wine-quality-dev/" + "x" * 80, NOW, user_id=5)
    assert len(f"cb:{token}".encode()) <= 64
    record = store.get_callback(token)
    assert record is not None and record.target.endswith("x" * 80) and record.user_id == 5
    store.drop_callback(token)
    assert store.get_callback(token) is None


def test_agents_and_sweeps_round_trip(store: Store) -> None:
    store.add_sweep(
        SweepRecord("lab/p/abc", "wine", -100, 3, 1, "", 1, NOW, None, None, None, (), False)
    )
    agent_id = store.add_agent(
        sweep_path="lab/p/abc",
        idx=0,
        pid=123,
        pgid=123,
        cmdline=["wandb", "agent"],
        log_path="/tmp/a.log",
        gpus="0",
        started_at=NOW,
    )
    assert [a.pid for a in store.agents(live_only=True)] == [123]
    assert store.end_agent(agent_id, 0, NOW) and not store.end_agent(agent_id, 0, NOW)
    assert store.agents(live_only=True) == []
    store.update_sweep("lab/p/abc", card_message_id=9, failures=[NOW], finished_at=NOW)
    sweep = store.sweep("lab/p/abc")
    assert sweep is not None and sweep.card_message_id == 9 and sweep.failures == (NOW,)
    assert store.sweeps(active_only=True) == []


def test_silences_expire(store: Store) -> None:
    store.silence(-100, "lab", "p", NOW + timedelta(hours=1))
    assert (-100, "lab", "p") in store.silences(NOW)
    assert store.silences(NOW + timedelta(hours=2)) == {}


def test_outbox_row_written_before_kill_9_survives_once(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    writer = textwrap.dedent(
        f"""
        import os, signal, sys
        from datetime import UTC, datetime
        sys.path.insert(0, {str(Path.cwd())!r})
        from bot.store import OutboxItem, Store
        store = Store({str(db)!r})
        store.enqueue([OutboxItem(-1, "k1", "run", "hello", run_keys=("r:finished",))],
                      datetime.now(UTC))
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", writer], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    reopened = Store(db)
    assert [r.dedupe_key for r in reopened.due(datetime.now(UTC))] == ["k1"]
    again = OutboxItem(-1, "k1", "run", "hello", run_keys=("r:finished",))
    assert reopened.enqueue([again], datetime.now(UTC)) == []
    assert reopened.outbox_counts()["pending"] == 1
    assert os.path.exists(db)


def test_old_buttons_and_stale_stop_requests_are_pruned(store: Store) -> None:
    old = store.put_callback("config", "lab/p/r", NOW - timedelta(days=40))
    waiting = store.put_callback("await_stop", "lab/p/r", NOW - timedelta(days=40))
    fresh = store.put_callback("plot", "lab/p/r", NOW)
    assert store.prune_callbacks(NOW - timedelta(days=30)) == 2
    assert store.get_callback(old) is None and store.get_callback(waiting) is None
    assert store.get_callback(fresh) is not None


def test_sent_photo_bytes_are_dropped(store: Store) -> None:
    [outbox_id] = store.enqueue([OutboxItem(-1, "d", "digest", "t", photo=b"\x89PNG")], NOW)
    store.mark_sent(outbox_id, 5, NOW)
    assert store._db.execute("SELECT photo FROM outbox").fetchone()[0] is None


def test_a_paused_chats_backlog_does_not_hold_up_other_chats(store: Store) -> None:
    store.pause_chat(-1, "Forbidden: bot was kicked from the group chat")
    store.enqueue([item(f"k{i}", chat=-1) for i in range(120)] + [item("other", chat=-2)], NOW)
    assert [r.dedupe_key for r in store.due(NOW, 100)] == ["other"]
    store.resume_chat(-1)
    assert len(store.due(NOW, 200)) == 121


def test_memory_of_chosen_runs_unfinished_runs_and_pruning(store: Store) -> None:
    memory = {
        "lab/p/a": {"state": "running"},
        "lab/p/b": {"state": "finished"},
        "lab/p/c": {"state": "pending"},
    }
    store.record_poll("lab", "p", now=NOW, watermark=NOW, active=True, memory=memory, messages=[])
    assert set(store.run_memory("lab", "p", ["lab/p/b", "lab/p/zz"])) == {"lab/p/b"}
    assert sorted(store.unfinished_runs("lab", "p")) == ["lab/p/a", "lab/p/c"]
    assert store.prune_runs(NOW + timedelta(days=1)) == 1
    assert set(store.run_memory("lab", "p")) == {"lab/p/a", "lab/p/c"}
