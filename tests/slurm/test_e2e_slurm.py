"""End to end: sweeps whose agents are Slurm array tasks running the real examples/wine/train.py."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ENTITY, LAB_CHAT, PROJECT, WINE, Harness, lab_data

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm")]


def services(h: Harness) -> Any:
    assert h.application is not None
    return h.application.bot_data.services


def card_of(h: Harness, path: str) -> Any:
    record = services(h).store.sweeps.get(path)
    assert record is not None and record.card_message_id is not None
    return next(
        m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == record.card_message_id
    )


def card_text(h: Harness, path: str) -> str:
    """Return the sweep card's text, empty while there is no card yet."""
    record = services(h).store.sweeps.get(path)
    if record is None or record.card_message_id is None:
        return ""
    return card_of(h, path).text or ""


def sweep_path_in(text: str) -> str:
    match = re.search(r"/sweeps/([a-z0-9]+)", text)
    assert match, text
    return f"{ENTITY}/{PROJECT}/{match.group(1)}"


def sweep_runs(h: Harness, sweep_id: str) -> list[dict[str, Any]]:
    return [r for r in h.wb.list_runs(ENTITY, PROJECT) if r.get("sweep") == sweep_id]


def slurm_lab(**slurm: Any) -> dict[str, Any]:
    """Return the test lab file with a `wine` sweep whose agents run on Slurm."""
    lab = lab_data()
    sweep = {"file": str(WINE / "sweep.yaml"), "project": PROJECT, "workdir": str(WINE)}
    lab["sweeps"]["wine"] = {**sweep, "launcher": "slurm", "slurm": {"cpus_per_agent": 1}}
    lab["sweeps"]["held"] = {**sweep, "launcher": "slurm", "slurm": {"extra": ["--hold"]}}
    lab["sweeps"]["lost"] = {**sweep, "launcher": "slurm", "workdir": "/nonexistent/wine"}
    lab["sweeps"]["wine-local"] = sweep
    return lab


def told_runs(h: Harness) -> set[str]:
    """Return the names of the runs the lab chat counts as told (by a message or the card)."""
    with services(h).store.db.read() as db:
        rows = db.execute("SELECT run_key FROM notified WHERE chat_id=?", (LAB_CHAT,)).fetchall()
    return {row[0].rsplit("/", 1)[-1].split(":")[0] for row in rows}


def jobs_of(h: Harness, path: str) -> set[str]:
    return {
        json.loads(a.handle)["job"]
        for a in services(h).store.agents.all(sweep_path=path)
        if a.launcher == "slurm"
    }


def squeue(job: str) -> str:
    """Return what plain `squeue` (pending and running jobs) shows of a job."""
    out = subprocess.run(
        ["squeue", "--noheader", f"--jobs={job}", "--format=%i %T"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


def task_states(job: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "--noheader", "--array", "--states=all", f"--jobs={job}", "--format=%T"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.split()


def processes_of(job: str) -> list[int]:
    """Return the processes that run in a Slurm job (its environment names the array)."""
    found = []
    needle = f"SLURM_ARRAY_JOB_ID={job}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def cancel_leftovers(tmp_path: Path) -> Iterator[None]:
    """Cancel the Slurm jobs a failed test left behind (only this test's, by job id)."""
    yield
    from bot.store import Store

    db = tmp_path / "data" / "bot.sqlite3"
    if not db.exists():
        return
    store = Store(db)
    try:
        jobs = {json.loads(a.handle)["job"] for a in store.agents.all() if a.launcher == "slurm"}
    finally:
        store.close()
    for job in jobs:
        subprocess.run(["scancel", job], check=False, capture_output=True)


@pytest.mark.usefixtures("cancel_leftovers")
async def test_a_slurm_sweep_runs_its_array_to_the_end(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=slurm_lab()) as h:
        h.say("/sweep start wine count=4 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        (job,) = jobs_of(h, path)
        assert f"{job}_0" in (reply.text or "") and f"{job}_1" in (reply.text or ""), reply.text

        # Agents that end cleanly fold into the card: it ends 4/4 with the array COMPLETED.
        await h.wait_until(
            lambda: all(word in card_text(h, path) for word in ("4/4", "finished", "COMPLETED")),
            timeout=270,
            what="final card",
        )
        runs = sweep_runs(h, sweep_id)
        assert len(runs) == 4
        assert all(r["state"] == "finished" for r in runs)
        assert task_states(job) == ["COMPLETED", "COMPLETED"]

        # The card tells the finished runs: each counts as told, none gets a message.
        names = {r["name"] for r in runs}
        await h.wait_until(lambda: names <= told_runs(h), timeout=20, what="runs counted as told")
        assert not [t for t in h.texts() if t.startswith(("✅", "📦"))], h.texts()
        await h.wait_until(
            lambda: all(word in card_text(h, path) for word in ("4/4", "finished", "COMPLETED")),
            timeout=20,
            what="final card",
        )
        for index in range(2):
            assert not any(f"agent {index} of sweep" in t for t in h.texts())
        status = await h.reply_to(f"/sweep status {sweep_id}")
        lines = (status.text or "").splitlines()
        assert f"agents: Slurm array {job} · COMPLETED" in lines, lines
        assert f"  #0 slurm {job}_0 · COMPLETED (0)" in lines, lines


@pytest.mark.usefixtures("cancel_leftovers")
async def test_sweep_stop_leaves_no_job_and_no_training_process(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=slurm_lab()) as h:
        h.say("/sweep start wine count=8 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        (job,) = jobs_of(h, path)
        await h.wait_until(
            lambda: any(r["state"] == "running" for r in sweep_runs(h, sweep_id)),
            timeout=240,
            what="a sweep run running",
        )
        assert len(processes_of(job)) >= 2  # the batch shell, the agent, its training run
        await h.wait_until(
            lambda: re.search(rf"\d running.* · Slurm array {job}", card_text(h, path)) is not None,
            timeout=20,
            what="card with running tasks",
        )

        h.say(f"/sweep stop {sweep_id}")
        stopped = await h.wait_for_text(f"🛑 sweep {sweep_id} stopped", timeout=60)
        assert "2 agents ended" in (stopped.text or ""), stopped.text
        assert squeue(job) == ""
        assert processes_of(job) == []
        assert (h.wb.get_sweep(ENTITY, PROJECT, sweep_id) or {}).get("state") == "FINISHED"
        assert not services(h).store.agents.all(live_only=True)
        assert not any(f"of sweep {sweep_id}" in t and "agent" in t for t in h.texts()[-3:])


@pytest.mark.usefixtures("cancel_leftovers")
async def test_a_task_that_fails_gives_one_exit_message_with_its_log_tail(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=slurm_lab()) as h:
        h.say("/sweep start lost count=1")
        reply = await h.wait_for_text("started sweep", timeout=60)
        sweep_id = sweep_path_in(reply.html or "").rsplit("/", 1)[1]
        failed = await h.wait_for_text(f"agent 0 of sweep {sweep_id}", timeout=240)
        text = failed.text or ""
        assert "/nonexistent/wine" in text and "No such file or directory" in text, text
        await h.wait_until(
            lambda: not services(h).store.agents.all(live_only=True), timeout=10, what="agent ended"
        )
        assert sum(f"agent 0 of sweep {sweep_id}" in t for t in h.texts()) == 1


@pytest.mark.usefixtures("cancel_leftovers")
async def test_gpu_ids_on_a_slurm_sweep_are_refused_with_one_line(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=slurm_lab()) as h:
        answer = await h.reply_to("/sweep start wine gpus=0,1")
        assert "gpus_per_agent" in (answer.text or ""), answer.text
        assert "\n" not in (answer.text or "")
        assert not services(h).store.sweeps.all()
        assert not h.wb.list_sweeps(ENTITY, PROJECT)


@pytest.mark.usefixtures("cancel_leftovers")
async def test_a_sigkilled_bot_adopts_its_pending_array_and_reports_its_end_once(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, lab=slurm_lab())
    await h.start_servers()
    try:
        await h.start_bot_process()
        h.say("/sweep start held count=2 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        await h.kill_bot_process()

        await h.start_bot()
        (job,) = jobs_of(h, path)
        assert task_states(job) == ["PENDING", "PENDING"]
        status = await h.reply_to("/sweeps")
        assert "pending" in (status.text or "") and "JobHeldUser" in (status.text or ""), (
            status.text
        )
        subprocess.run(["scontrol", "release", job], check=True, capture_output=True)
        await h.wait_until(
            lambda: "2/2" in card_text(h, path) and "finished" in card_text(h, path),
            timeout=270,
            what="final card",
        )
        await h.wait_until(
            lambda: not services(h).store.agents.all(live_only=True),
            timeout=30,
            what="the adopted tasks seen to end",
        )
        # Clean ends fold into the card: no message per task.
        for index in range(2):
            assert not any(f"agent {index} of sweep" in t for t in h.texts())
        assert not any("ended while I was down" in t for t in h.texts())
        assert all(r["state"] == "finished" for r in sweep_runs(h, sweep_id))
    finally:
        await h.__aexit__(None, None, None)


@pytest.mark.usefixtures("cancel_leftovers")
async def test_an_array_cancelled_outside_the_bot_is_reported_once_per_task(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, lab=slurm_lab()) as h:
        h.say("/sweep start held count=2 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        (job,) = jobs_of(h, path)
        await h.wait_until(
            lambda: "2 pending (JobHeldUser)" in card_text(h, path),
            timeout=20,
            what="card with pending tasks",
        )
        subprocess.run(["scancel", job], check=True, capture_output=True)
        for index in range(2):
            ended = await h.wait_for_text(f"agent {index} of sweep {sweep_id}", timeout=30)
            assert "ended CANCELLED" in (ended.text or ""), ended.text
        await h.wait_until(
            lambda: f"Slurm array {job} · CANCELLED" in card_text(h, path),
            timeout=20,
            what="final card",
        )
        for index in range(2):
            assert sum(f"agent {index} of sweep" in t for t in h.texts()) == 1


def processes_of_task(job: str, task: int) -> list[int]:
    """Return the processes of one task of a Slurm array."""
    wanted = f"SLURM_ARRAY_TASK_ID={task}".encode()
    found = []
    for pid in processes_of(job):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0"):
            found.append(pid)
    return found


@pytest.mark.usefixtures("cancel_leftovers")
async def test_stopping_one_task_from_sweep_agents_leaves_the_other_and_the_sweep_running(
    tmp_path: Path,
) -> None:
    from tests.harness import ADMIN
    from tests.test_e2e_sweep_agents import SLOW_SWEEP, button, listing_with_buttons

    sweep_file = tmp_path / "slow.yaml"
    sweep_file.write_text(SLOW_SWEEP)
    lab = slurm_lab()
    lab["crash_loop"] = {"failures": 1, "window": 600}
    lab["sweeps"]["slow"] = {
        "file": str(sweep_file),
        "project": PROJECT,
        "workdir": str(WINE),
        "launcher": "slurm",
        "slurm": {"cpus_per_agent": 1},
    }
    async with Harness(tmp_path, lab=lab) as h:
        h.say("/sweep start slow count=4 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        (job,) = jobs_of(h, path)
        await h.wait_until(
            lambda: sum(r["state"] == "running" for r in sweep_runs(h, sweep_id)) == 2,
            timeout=240,
            what="both tasks on a run",
        )
        h.say(f"/sweep agents {sweep_id}")
        await h.wait_until(lambda: listing_with_buttons(h, sweep_id), timeout=30, what="list")
        listing = listing_with_buttons(h, sweep_id)
        assert f"agent 1 · slurm task {job}_1" in (listing.text or ""), listing.text
        h.telegram.press(
            LAB_CHAT, listing.message_id, button(listing, "Stop agent 1"), user_id=ADMIN
        )
        prompt = await h.wait_for_text(f"stop agent 1 of sweep {sweep_id}", timeout=30)
        h.telegram.press(
            LAB_CHAT, prompt.message_id, button(prompt, "Yes, stop agent 1"), user_id=ADMIN
        )
        await h.wait_for_text(f"🛑 agent 1 of sweep {sweep_id} stopped by", timeout=90)

        assert processes_of_task(job, 1) == []
        assert processes_of_task(job, 0) != []
        assert (h.wb.get_sweep(ENTITY, PROJECT, sweep_id) or {}).get("state") == "RUNNING"
        assert [a.idx for a in services(h).store.agents.all(live_only=True, sweep_path=path)] == [0]
        await h.wait_until(
            lambda: "4/4" in card_text(h, path) and "finished" in card_text(h, path),
            timeout=270,
            what="the sweep finishing its count on the task left",
        )
        assert len(sweep_runs(h, sweep_id)) == 4
        record = services(h).store.sweeps.get(path)
        assert record is not None and not record.breaker_tripped
        assert not any(f"agent 1 of sweep {sweep_id}" in t and "exited" in t for t in h.texts())
