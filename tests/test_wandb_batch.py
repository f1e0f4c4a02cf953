"""Many projects' changed runs in one aliased GraphQL request, through the SDK's transport."""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from graphql import parse, validate

from tests.servers.wandb import API_KEY, ServerThread, WandbServer, sdk_env
from tests.servers.wandb.graphql_api import build_wandb_schema
from wandb_client import (
    ChangedRunsQuery,
    WandbClient,
    WandbNotFoundError,
    WandbUnavailableError,
)
from wandb_client.batch import (
    OPERATION,
    PageRequest,
    build_document,
    build_variables,
    changed_filter,
    read_response,
)
from wandb_client.client import POLL_PAGE_SIZE, graphql_transport

ENTITY = "lab"
PAST = datetime(2026, 1, 1, tzinfo=UTC)
SINCE = PAST + timedelta(hours=1)
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(WandbServer()) as thread:
        yield thread


@pytest.fixture
def srv(server: ServerThread) -> Iterator[WandbServer]:
    server.server.reset_requests()
    yield server.server
    server.server.max_root_fields = None


def new_project() -> str:
    return f"batch-{next(_names)}-{time.monotonic_ns()}"


def make_client(server: ServerThread, tmp_path: Path, **kw) -> WandbClient:
    quiet = {
        k: v
        for k, v in sdk_env(server.base_url, tmp_path).items()
        if k.startswith("WANDB_") and k not in {"WANDB_API_KEY", "WANDB_BASE_URL"}
    }
    return WandbClient(
        API_KEY,
        base_url=server.base_url,
        default_entity=ENTITY,
        ui_url="https://wandb.example",
        subprocess_env=quiet,
        **{"timeout": 20, **kw},
    )


@pytest.fixture
async def client(server: ServerThread, tmp_path: Path):
    c = make_client(server, tmp_path, batch_size=3)
    await c.viewer()  # the SDK checks the key once; the tests count what comes after
    server.server.reset_requests()
    yield c
    await c.close()


def seed_project(srv: WandbServer, project: str, old: int, new: int, running: int = 0) -> None:
    """Seed `old` runs last updated before SINCE, `new` after it, `running` running ones."""
    runs = []
    for i in range(old + new + running):
        created = PAST + timedelta(minutes=i)
        updated = created + timedelta(seconds=30) if i < old else SINCE + timedelta(minutes=i + 1)
        runs.append(
            {
                "entity": ENTITY,
                "project": project,
                "name": f"r{i:04d}",
                "state": "running" if i >= old + new else "finished",
                "createdAt": created.isoformat(),
                "updatedAt": updated.isoformat(),
                "heartbeatAt": updated.isoformat(),
                "config": {"lr": 0.01 * (i + 1)},
                "summary": {"val/accuracy": i / 100, "_step": i},
                "tags": ["t"],
                "sweep": None,
            }
        )
    srv.seed({"runs": [{k: v for k, v in r.items() if v is not None} for r in runs]})


def test_the_sdk_still_exposes_its_graphql_transport(server):
    """Fails loudly when a new wandb moves `Api._service_api.execute_graphql`."""
    import wandb
    from wandb.apis.public.service_api import ServiceApi

    params = list(inspect.signature(ServiceApi.execute_graphql).parameters)
    assert params[:3] == ["self", "query", "variables"]
    api = wandb.Api(api_key=API_KEY, overrides={"base_url": server.base_url}, timeout=5)
    assert graphql_transport(api) == api._service_api.execute_graphql


def test_the_batched_document_validates_against_the_schema():
    pages = [PageRequest(ChangedRunsQuery(ENTITY, f"p{i}", SINCE, ("a",))) for i in range(3)]
    document = build_document(pages)
    assert validate(build_wandb_schema(), parse(document)) == []
    variables = build_variables(pages, 200, "+created_at")
    assert variables["name2"] == "p2" and variables["cursor0"] is None
    assert '"$in": ["a"]' in variables["filters1"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, [(False, 0, None)]),
        ({"p0": None}, [(False, 0, None)]),
        (
            {"p0": {"runs": {"edges": [{"node": {"name": "a"}}], "pageInfo": {}}}},
            [(True, 1, None)],
        ),
        (
            {
                "p0": {
                    "runs": {
                        "edges": [{"node": {"name": "a"}}],
                        "pageInfo": {"hasNextPage": True, "endCursor": "1"},
                    }
                }
            },
            [(True, 1, "1")],
        ),
        # A next page promised with an empty page would loop forever: it is not followed.
        ({"p0": {"runs": {"edges": [], "pageInfo": {"hasNextPage": True}}}}, [(True, 0, None)]),
    ],
)
def test_read_response_splits_the_answer_per_alias(data, expected):
    got = [(r.found, len(r.nodes), r.next_cursor) for r in read_response(data, len(expected))]
    assert got == expected


def test_changed_filter_keeps_the_poll_semantics():
    assert changed_filter(None, ("x",)) is None
    assert changed_filter(SINCE, ("b", "a", "b")) == {
        "$or": [
            {"updatedAt": {"$gt": "2026-01-01T01:00:00Z"}},
            {"state": "running"},
            {"name": {"$in": ["a", "b"]}},
        ]
    }


async def test_one_request_returns_the_same_snapshots_as_per_project_listings(srv, client):
    projects = [new_project() for _ in range(3)]
    for n, project in enumerate(projects):
        seed_project(srv, project, old=4, new=n, running=1)
    queries = [
        ChangedRunsQuery(ENTITY, projects[0], None),
        ChangedRunsQuery(ENTITY, projects[1], SINCE),
        ChangedRunsQuery(ENTITY, projects[2], SINCE, ("r0001",)),
    ]
    srv.reset_requests()
    batched = await client.changed_runs_many(queries)
    assert srv.request_counts() == {OPERATION: 1}
    single = [await client.changed_runs(q.entity, q.project, q.since, q.also) for q in queries]
    assert batched == single
    assert [len(r) for r in batched] == [5, 2, 4]  # type: ignore[arg-type]
    assert batched[2][0].summary == {"val/accuracy": 0.01, "_step": 1}  # type: ignore[index]


async def test_a_missing_project_is_not_found_and_the_others_still_answer(srv, client):
    project = new_project()
    seed_project(srv, project, old=0, new=2)
    missing, present = await client.changed_runs_many(
        [ChangedRunsQuery(ENTITY, new_project(), SINCE), ChangedRunsQuery(ENTITY, project, SINCE)]
    )
    assert isinstance(missing, WandbNotFoundError)
    assert [r.id for r in present] == ["r0000", "r0001"]  # type: ignore[union-attr]


async def test_projects_go_in_batches_of_the_configured_size(srv, client):
    projects = [new_project() for _ in range(7)]
    for project in projects:
        seed_project(srv, project, old=1, new=1)
    srv.reset_requests()
    results = await client.changed_runs_many([ChangedRunsQuery(ENTITY, p, SINCE) for p in projects])
    assert srv.request_counts() == {OPERATION: 3}  # 3 + 3 + 1
    assert [[r.project for r in runs] for runs in results] == [[p] for p in projects]  # type: ignore[union-attr]


async def test_further_pages_are_followed_for_just_the_projects_that_have_them(srv, client):
    big, small = new_project(), new_project()
    seed_project(srv, big, old=0, new=POLL_PAGE_SIZE + 5)
    seed_project(srv, small, old=3, new=1)
    srv.reset_requests()
    runs_big, runs_small = await client.changed_runs_many(
        [ChangedRunsQuery(ENTITY, big, SINCE), ChangedRunsQuery(ENTITY, small, SINCE)]
    )
    assert srv.request_counts() == {OPERATION: 2}
    assert [r.id for r in runs_big] == [f"r{i:04d}" for i in range(POLL_PAGE_SIZE + 5)]  # type: ignore[union-attr]
    assert [r.id for r in runs_small] == ["r0003"]  # type: ignore[union-attr]


async def test_a_refused_batch_is_asked_again_one_project_at_a_time(srv, client):
    projects = [new_project() for _ in range(3)]
    for project in projects:
        seed_project(srv, project, old=2, new=1)
    srv.max_root_fields = 2  # W&B's limit on one document, here smaller than the batch
    srv.reset_requests()
    results = await client.changed_runs_many([ChangedRunsQuery(ENTITY, p, SINCE) for p in projects])
    assert srv.request_counts() == {OPERATION: 1, "Runs": 3}
    assert [[r.id for r in runs] for runs in results] == [["r0002"]] * 3  # type: ignore[union-attr]


async def test_an_unanswered_batch_is_that_error_for_each_project_without_retrying_each(
    srv, server, tmp_path
):
    project = new_project()
    seed_project(srv, project, old=1, new=1)
    client = make_client(server, tmp_path, timeout=2, batch_size=5)
    try:
        await client.viewer()
        srv.inject_fault(OPERATION, "503", count=50)
        results = await client.changed_runs_many(
            [ChangedRunsQuery(ENTITY, project, SINCE), ChangedRunsQuery(ENTITY, project, None)]
        )
        counts = srv.request_counts()
    finally:
        srv.reset()
        await client.close()
    assert all(isinstance(r, WandbUnavailableError) for r in results)
    assert counts.get(OPERATION, 0) >= 1 and counts.get("Runs", 0) == 0


async def test_best_runs_order_by_a_metric_whose_name_has_a_slash(srv, client):
    project = new_project()
    seed_project(srv, project, old=5, new=0)
    best = await client.best_runs(ENTITY, project, "val/accuracy", "maximize", limit=2)
    assert [r.id for r in best] == ["r0004", "r0003"]
    worst = await client.best_runs(ENTITY, project, "val/accuracy", "minimize", limit=1)
    assert [r.summary["val/accuracy"] for r in worst] == [0.0]
