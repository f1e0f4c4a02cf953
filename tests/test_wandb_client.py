"""The W&B client against the local W&B server, through the real wandb SDK (no mocks)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.servers.wandb import API_KEY, ServerThread, WandbServer, sdk_env
from wandb_client import (
    WandbAuthError,
    WandbClient,
    WandbNotFoundError,
    WandbRequestError,
    WandbUnavailableError,
    wandb_env,
)
from wandb_client.error_mapping import error_class
from wandb_client.snapshots import (
    format_time,
    parse_time,
    run_snapshot,
    sweep_objective,
    unwrap_config,
)

ENTITY = "lab"
PAST = datetime(2026, 1, 1, tzinfo=UTC)
_projects = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(WandbServer()) as thread:
        yield thread


@pytest.fixture
def srv(server: ServerThread) -> WandbServer:
    return server.server


@pytest.fixture
def project() -> str:
    return f"proj-{next(_projects)}-{time.monotonic_ns()}"


@pytest.fixture
async def client(server: ServerThread, tmp_path: Path):
    quiet = {
        k: v
        for k, v in sdk_env(server.base_url, tmp_path).items()
        if k.startswith("WANDB_") and k not in {"WANDB_API_KEY", "WANDB_BASE_URL"}
    }
    c = WandbClient(
        API_KEY,
        base_url=server.base_url,
        default_entity=ENTITY,
        ui_url="https://wandb.example",
        timeout=5,
        concurrency=4,
        subprocess_env=quiet,
    )
    yield c
    await c.close()


def seed_runs(srv: WandbServer, project: str, n: int, **fields) -> list[dict]:
    runs = []
    for i in range(n):
        created = PAST + timedelta(minutes=i)
        run = {
            "entity": ENTITY,
            "project": project,
            "name": f"run{i:04d}",
            "displayName": f"run-{i}",
            "state": "finished",
            "createdAt": created.isoformat(),
            "updatedAt": (created + timedelta(seconds=30)).isoformat(),
            "heartbeatAt": (created + timedelta(seconds=30)).isoformat(),
            "config": {"lr": 0.001 * (i + 1), "depth": i % 7},
            "summary": {"accuracy": ((i * 37) % 101) / 100, "loss": ((i * 53) % 97) / 10},
            "tags": ["seeded"],
        }
        run.update(fields)
        runs.append(run)
    srv.seed({"runs": runs})
    return runs


def runs_requests(srv: WandbServer) -> int:
    return srv.request_counts().get("Runs", 0)


# -- pure conversions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"lr": {"value": 0.1, "desc": None}, "_wandb": {"value": {"t": 1}}}, {"lr": 0.1}),
        ('{"lr": {"value": 0.1}, "wandb_version": 1}', {"lr": 0.1}),
        ({"lr": 0.1, "opt": {"name": "adam"}}, {"lr": 0.1, "opt": {"name": "adam"}}),
        (None, {}),
        ("not json", {}),
    ],
)
def test_unwrap_config_unwraps_values_and_drops_wandb_keys(raw, expected):
    assert unwrap_config(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_time_gives_aware_utc(raw, expected):
    assert parse_time(raw) == expected


def test_format_time_floors_to_seconds_in_utc():
    moment = datetime(2026, 1, 2, 5, 4, 5, 999_999, tzinfo=UTC) + timedelta(hours=0)
    assert format_time(moment) == "2026-01-02T05:04:05Z"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"metric": {"name": "acc", "goal": "maximize"}}, ("acc", "maximize")),
        ({"metric": {"name": "loss"}}, ("loss", "minimize")),
        ({}, (None, None)),
    ],
)
def test_sweep_objective_defaults_to_minimize(config, expected):
    assert sweep_objective(config) == expected


def test_run_snapshot_reads_git_commit_and_links_to_ui():
    snap = run_snapshot(
        {
            "name": "abc",
            "state": "Running",
            "commit": "deadbeef",
            "createdAt": "2026-01-01T00:00:00",
        },
        entity="e",
        project="p",
        ui_url="https://ui/",
    )
    assert (snap.state, snap.git_commit, snap.url) == (
        "running",
        "deadbeef",
        "https://ui/e/p/runs/abc",
    )


@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        ("anything", 401, WandbAuthError),
        ("anything", 404, WandbNotFoundError),
        ("anything", 429, WandbUnavailableError),
        ("anything", 502, WandbUnavailableError),
        ("the service process is busy and did not respond in time", None, WandbUnavailableError),
        ("Could not find project wine", None, WandbNotFoundError),
        ("invalid API key", None, WandbAuthError),
        ("permission denied", None, WandbAuthError),
        ("Cannot pause finished sweep.", None, WandbRequestError),
    ],
)
def test_error_class_maps_statuses_and_texts(text, status, expected):
    assert error_class(text, status) is expected


def test_wandb_env_drops_inherited_wandb_settings_and_sets_this_clients():
    env = wandb_env(
        "local-key",
        "http://127.0.0.1:9/",
        {"WANDB_SILENT": "true"},
        inherit={
            "PATH": "/bin",
            "WANDB_SERVICE": "x",
            "WANDB_API_KEY": "other",
            "NO_PROXY": "a",
            "TELEGRAM_BOT_TOKEN": "123:secret",
            "WTB_LAB_FILE": "lab.yaml",
        },
    )
    assert "TELEGRAM_BOT_TOKEN" not in env and "WTB_LAB_FILE" not in env
    assert env["WANDB_API_KEY"] == "local-key"
    assert env["WANDB_BASE_URL"] == "http://127.0.0.1:9"
    assert env["WANDB_SILENT"] == "true"
    assert env["PATH"] == "/bin"
    assert "WANDB_SERVICE" not in env
    assert env["NO_PROXY"].startswith("a,") and "127.0.0.1" in env["NO_PROXY"]


# -- reading, against the server -------------------------------------------------------------


async def test_viewer_and_projects(client, srv, project):
    seed_runs(srv, project, 1)
    assert await client.viewer() == ENTITY
    assert project in await client.projects(ENTITY)


async def test_changed_runs_baseline_returns_every_run_with_config_and_summary(
    client, srv, project
):
    seeded = seed_runs(srv, project, 12)
    srv.reset_requests()
    runs = await client.changed_runs(ENTITY, project, None)
    assert runs_requests(srv) == 1
    assert srv.request_counts().get("Run", 0) == 0  # no N+1
    assert {r.id for r in runs} == {s["name"] for s in seeded}
    first = next(r for r in runs if r.id == "run0000")
    assert first.config == {"lr": 0.001, "depth": 0}
    assert first.summary["accuracy"] == 0.0
    assert first.display_name == "run-0"
    assert first.tags == ("seeded",)
    assert first.created_at == PAST
    assert first.created_at.tzinfo is not None
    assert first.url == f"https://wandb.example/{ENTITY}/{project}/runs/run0000"


async def test_changed_runs_baseline_pages_through_a_large_project(client, srv, project):
    seed_runs(srv, project, 450)
    srv.reset_requests()
    runs = await client.changed_runs(ENTITY, project, None)
    assert len({r.id for r in runs}) == 450
    assert runs_requests(srv) == 3  # pages of 200


async def test_changed_runs_returns_only_changed_and_running_runs_in_one_request(
    client, srv, project
):
    seed_runs(srv, project, 20)
    seed_runs(srv, project, 2, name=None, state="running", live=True)
    await client.changed_runs(ENTITY, project, None)
    since = datetime.now(UTC) - timedelta(seconds=1)
    for name, state in (("run0003", "failed"), ("run0007", "crashed"), ("run0011", "killed")):
        srv.set_run_state(ENTITY, project, name, state)
    srv.reset_requests()

    runs = await client.changed_runs(ENTITY, project, since)

    assert runs_requests(srv) == 1
    states = {r.id: r.state for r in runs}
    changed = {k: v for k, v in states.items() if v != "running"}
    assert changed == {"run0003": "failed", "run0007": "crashed", "run0011": "killed"}
    assert list(states.values()).count("running") == 2
    assert all(r.config for r in runs)


async def test_idle_project_poll_costs_one_request_and_returns_nothing(client, srv, project):
    seed_runs(srv, project, 30)
    srv.reset_requests()
    for _ in range(3):
        assert await client.changed_runs(ENTITY, project, datetime.now(UTC)) == []
    assert runs_requests(srv) == 3


async def test_poll_of_5000_finished_runs_with_recent_watermark_costs_one_request(
    client, srv, project
):
    srv.seed(
        {
            "generate": {
                "entity": ENTITY,
                "project": project,
                "count": 5000,
                "start": "2026-01-01T00:00:00",
                "stepSeconds": 1,
            }
        }
    )
    srv.reset_requests()
    began = time.monotonic()
    runs = await client.changed_runs(ENTITY, project, datetime.now(UTC) - timedelta(minutes=1))
    assert runs == []
    assert runs_requests(srv) == 1
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
async def test_best_runs_agrees_with_plain_python_in_one_request(client, srv, project, goal):
    seeded = seed_runs(srv, project, 40)
    seed_runs(srv, project, 3, name=None, summary={"other": 1})  # no accuracy: excluded
    srv.reset_requests()

    best = await client.best_runs(ENTITY, project, "accuracy", goal, limit=2)

    assert runs_requests(srv) == 1
    ranked = sorted(seeded, key=lambda r: r["summary"]["accuracy"], reverse=goal == "maximize")
    assert [r.summary["accuracy"] for r in best] == [r["summary"]["accuracy"] for r in ranked[:2]]
    assert all(r.config for r in best)


async def test_best_runs_within_a_sweep(client, srv, project):
    srv.seed(
        {
            "sweeps": [
                {
                    "entity": ENTITY,
                    "project": project,
                    "name": "swp00001",
                    "config": {
                        "method": "grid",
                        "metric": {"name": "accuracy", "goal": "maximize"},
                    },
                }
            ]
        }
    )
    seed_runs(srv, project, 10)
    seed_runs(srv, project, 4, name=None, sweep="swp00001", summary={"accuracy": 0.01})
    srv.reset_requests()
    best = await client.best_runs(
        ENTITY, project, "accuracy", "maximize", limit=3, sweep="swp00001"
    )
    assert runs_requests(srv) == 1
    assert len(best) == 3 and {r.sweep for r in best} == {"swp00001"}


async def test_recent_runs_filters_by_state_newest_first_in_one_request(client, srv, project):
    seed_runs(srv, project, 10)
    srv.reset_requests()
    recent = await client.recent_runs(ENTITY, project, "finished", limit=3)
    assert [r.id for r in recent] == ["run0009", "run0008", "run0007"]
    assert runs_requests(srv) == 1


async def test_run_page_counts_every_matching_run_in_the_same_request(client, srv, project):
    seed_runs(srv, project, 10)
    seed_runs(srv, project, 3, name=None, state="failed")
    srv.reset_requests()
    page = await client.run_page(ENTITY, project, "finished", limit=3)
    assert [r.id for r in page.runs] == ["run0009", "run0008", "run0007"]
    assert page.total == 10
    assert runs_requests(srv) == 1
    every = await client.run_page(ENTITY, project, None, limit=20)
    assert (len(every.runs), every.total) == (13, 13)


async def test_run_history_and_sweep(client, srv, project):
    srv.seed(
        {
            "sweeps": [
                {
                    "entity": ENTITY,
                    "project": project,
                    "name": "abcd1234",
                    "config": {
                        "method": "random",
                        "metric": {"name": "accuracy", "goal": "maximize"},
                        "run_cap": 5,
                        "parameters": {"lr": {"values": [0.1, 0.01]}},
                    },
                }
            ]
        }
    )
    history = [{"_step": i, "loss": 1 / (i + 1), "acc": i / 10} for i in range(20)]
    seed_runs(srv, project, 1, name="hist0001", sweep="abcd1234", history=history)

    run = await client.run(ENTITY, project, "hist0001")
    assert run.sweep == "abcd1234" and run.config["depth"] == 0

    rows = await client.history(ENTITY, project, "hist0001", keys=["loss"], samples=500)
    assert [r.step for r in rows] == list(range(20))
    assert rows[3].values["loss"] == pytest.approx(0.25)

    sweep = await client.sweep(ENTITY, project, "abcd1234")
    assert (sweep.id, sweep.metric, sweep.goal, sweep.method) == (
        "abcd1234",
        "accuracy",
        "maximize",
        "random",
    )
    assert sweep.run_count == 1
    assert sweep.run_cap == 5
    assert sweep.url == f"https://wandb.example/{ENTITY}/{project}/sweeps/abcd1234"

    srv.reset_requests()
    runs = await client.sweep_runs(ENTITY, project, "abcd1234")
    assert [r.id for r in runs] == ["hist0001"]
    assert runs_requests(srv) == 1


# -- failures ---------------------------------------------------------------------------


async def test_missing_project_run_and_sweep_are_not_found(client, srv, project):
    with pytest.raises(WandbNotFoundError):
        await client.changed_runs(ENTITY, f"{project}-missing", None)
    seed_runs(srv, project, 1)
    with pytest.raises(WandbNotFoundError):
        await client.run(ENTITY, project, "nosuchrun")
    with pytest.raises(WandbNotFoundError):
        await client.sweep(ENTITY, project, "nosweep1")


async def test_bad_api_key_is_an_auth_error(server):
    bad = WandbClient("local-" + "0" * 10, base_url=server.base_url, timeout=3)
    try:
        with pytest.raises(WandbAuthError):
            await bad.viewer()
        assert bad.health.consecutive_failures == 1
        assert "local-0000000000" not in (bad.health.last_error or "")
    finally:
        await bad.close()


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_error_burst_on_runs_is_unavailable_after_timeout_without_request_storm(
    server, srv, project, kind
):
    seed_runs(srv, project, 3)
    client = WandbClient(API_KEY, base_url=server.base_url, default_entity=ENTITY, timeout=2)
    try:
        await client.viewer()
        srv.reset_requests()
        srv.inject_fault("Runs", kind, count=1000)
        began = time.monotonic()
        with pytest.raises(WandbUnavailableError):
            await client.changed_runs(ENTITY, project, None)
        elapsed = time.monotonic() - began
        assert 1.5 <= elapsed <= 4.5
        sent = runs_requests(srv)
        assert 1 <= sent <= 3  # wandb-core's own backoff, not a storm
        health = client.health
        assert health.consecutive_failures == 1 and health.last_error
        # wandb-core gives up with us: at most the retry it had already timed goes out,
        # then nothing more arrives.
        await asyncio.sleep(3)
        settled = runs_requests(srv)
        assert settled - sent <= 1
        await asyncio.sleep(2)
        assert runs_requests(srv) == settled
    finally:
        with srv._faults_lock:
            srv._faults.clear()
    try:
        assert len(await client.changed_runs(ENTITY, project, None)) == 3
        assert client.health.consecutive_failures == 0
    finally:
        await client.close()


async def test_concurrency_is_bounded(server, srv, project):
    seed_runs(srv, project, 2)
    client = WandbClient(
        API_KEY, base_url=server.base_url, default_entity=ENTITY, timeout=10, concurrency=2
    )
    try:
        await client.viewer()
        srv.inject_fault("Runs", "delay", count=4, delay=0.6)
        began = time.monotonic()
        await asyncio.gather(*(client.recent_runs(ENTITY, project, None, 1) for _ in range(4)))
        assert time.monotonic() - began >= 1.1  # 4 calls, 2 at a time, 0.6 s each
        assert client.health.sdk_calls >= 5
    finally:
        await client.close()


# -- control ----------------------------------------------------------------------------


async def test_stop_run_flags_the_run_on_the_server(client, srv, project):
    seed_runs(srv, project, 1, name="live0001", state="running", live=True)
    await client.stop_run(ENTITY, project, "live0001")
    assert srv.get_run(ENTITY, project, "live0001")["stopRequested"] is True


@pytest.mark.slow
async def test_create_sweep_and_change_its_state_through_the_cli(client, srv, project):
    config = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "accuracy", "goal": "maximize"},
        "parameters": {"lr": {"values": [0.1, 0.01]}},
    }
    sweep_id = await client.create_sweep(config, ENTITY, project)
    stored = srv.get_sweep(ENTITY, project, sweep_id)
    assert stored is not None and stored["state"] == "RUNNING"

    await client.set_sweep_state(ENTITY, project, sweep_id, "pause")
    assert srv.get_sweep(ENTITY, project, sweep_id)["state"] == "PAUSED"
    await client.set_sweep_state(ENTITY, project, sweep_id, "resume")
    assert srv.get_sweep(ENTITY, project, sweep_id)["state"] == "RUNNING"
    await client.set_sweep_state(ENTITY, project, sweep_id, "stop")
    assert (await client.sweep(ENTITY, project, sweep_id)).state == "finished"

    with pytest.raises(WandbRequestError):
        await client.set_sweep_state(ENTITY, project, sweep_id, "pause")
    assert client.health.subprocess_calls == 5
