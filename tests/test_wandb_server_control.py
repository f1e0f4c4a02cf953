"""The local W&B server's HTTP surface: GraphQL schema, auth, protocol rules and control API."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.servers.wandb import API_KEY, WandbServer

QUERIES = Path(__file__).resolve().parent / "servers" / "wandb" / "queries"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"api:{API_KEY}".encode()).decode()}
VIEWER = "query Viewer { viewer { id entity username } }"
UPSERT = (
    "mutation UpsertBucket($name: String, $project: String, $entity: String, $config: JSONString,"
    " $sweep: String) { upsertBucket(input: {name: $name, modelName: $project, entityName: $entity,"
    " config: $config, sweep: $sweep}) { bucket { id name } inserted } }"
)
HEARTBEAT = (
    "mutation Heartbeat($id: ID!, $runState: JSONString) {"
    " agentHeartbeat(input: {id: $id, runState: $runState}) { agent { id } commands } }"
)
RUNS = (QUERIES / "Runs__69449a6e.graphql").read_text()


class Client:
    """Talk to one in-process server over HTTP."""

    def __init__(self, server: WandbServer, url: str, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.url = url
        self.session = session

    async def gql(self, query: str, status: int = 200, **variables: Any) -> dict[str, Any]:
        """Post a GraphQL document and return the JSON body."""
        async with self.session.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=AUTH
        ) as resp:
            assert resp.status == status, await resp.text()
            body: dict[str, Any] = await resp.json()
            return body

    async def stream(self, run: str, body: dict[str, Any], project: str = "p") -> dict[str, Any]:
        """Post one file_stream request."""
        async with self.session.post(
            f"{self.url}/files/lab/{project}/{run}/file_stream", json=body, headers=AUTH
        ) as resp:
            assert resp.status == 200
            reply: dict[str, Any] = await resp.json()
            return reply

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API."""
        async with self.session.request(method, f"{self.url}/_control/{path}", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """Start an in-process server with a 0.5 s crash timeout and an HTTP session."""
    server = WandbServer(heartbeat_timeout=0.5, check_interval=0.05)
    url = await server.start()
    async with aiohttp.ClientSession() as session:
        yield Client(server, url, session)
    await server.stop()


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _history(*rows: dict[str, Any], offset: int = 0) -> dict[str, Any]:
    return {
        "files": {
            "wandb-history.jsonl": {"offset": offset, "content": [json.dumps(r) for r in rows]}
        }
    }


@pytest.mark.parametrize("path", sorted(QUERIES.glob("*.graphql")), ids=lambda p: p.stem)
def test_every_document_the_sdk_sends_validates(path: Path) -> None:
    server = WandbServer()
    document = server.graphql.document(path.read_text())
    assert not isinstance(document, list), document


async def test_unknown_fields_and_bad_keys_are_rejected(client: Client) -> None:
    body = await client.gql("query { viewer { id shoeSize } }", status=400)
    assert "shoeSize" in body["errors"][0]["message"]
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"api:nope").decode()}):
        async with client.session.post(
            f"{client.url}/graphql", json={"query": VIEWER}, headers=headers
        ) as resp:
            assert resp.status == 401


async def test_only_selected_fields_are_returned_and_operation_names_are_counted(
    client: Client,
) -> None:
    body = await client.gql("#graphql\n" + VIEWER)
    assert body == {
        "data": {"viewer": {"id": body["data"]["viewer"]["id"], "entity": "lab", "username": "me"}}
    }
    await client.gql("query GetDefaultEntity { viewer { id entity } }")
    await client.stream("r1", {})
    assert await client.control("GET", "requests") == {
        "Viewer": 1,
        "GetDefaultEntity": 1,
        "file_stream": 1,
    }
    await client.control("POST", "requests/reset")
    assert await client.control("GET", "requests") == {}


async def test_faults_429_500_503_malformed_and_delay_hit_n_requests(client: Client) -> None:
    await client.control(
        "POST", "faults", {"operation": "Viewer", "kind": "429", "count": 2, "reset": 7}
    )
    for _ in range(2):
        async with client.session.post(
            f"{client.url}/graphql", json={"query": VIEWER}, headers=AUTH
        ) as resp:
            assert resp.status == 429
            assert resp.headers["RateLimit-Reset"] == "7"
    await client.gql(VIEWER)
    for kind in ("500", "503"):
        client.server.inject_fault("file_stream", kind)
        async with client.session.post(
            f"{client.url}/files/lab/p/r/file_stream", json={}, headers=AUTH
        ) as resp:
            assert resp.status == int(kind)
    await client.control("POST", "faults", {"operation": "Viewer", "kind": "malformed"})
    async with client.session.post(
        f"{client.url}/graphql", json={"query": VIEWER}, headers=AUTH
    ) as resp:
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.text())
    client.server.inject_fault("Viewer", "delay", delay=0.3)
    started = time.monotonic()
    await client.gql(VIEWER)
    assert time.monotonic() - started >= 0.3
    assert (await client.control("GET", "requests"))["Viewer"] == 5


async def test_seeding_10000_runs_is_quick_and_they_page_with_filters(client: Client) -> None:
    started = time.monotonic()
    counts = await client.control(
        "POST",
        "seed",
        {
            "generate": {
                "entity": "lab",
                "project": "big",
                "count": 10_000,
                "states": ["finished", "failed"],
            }
        },
    )
    assert counts["runs"] == 10_000
    assert time.monotonic() - started < 10
    flt = json.dumps(
        {"$and": [{"state": "failed"}, {"createdAt": {"$gte": "2026-01-02T00:00:00Z"}}]}
    )
    names: list[str] = []
    cursor = None
    while True:
        body = await client.gql(
            RUNS,
            project="big",
            entity="lab",
            filters=flt,
            order="+created_at",
            perPage=500,
            cursor=cursor,
        )
        page = body["data"]["project"]["runs"]
        names += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    expected = [f"gen{i:06d}" for i in range(10_000) if i % 2 == 1 and i >= 1440]
    assert names == expected
    assert body["data"]["project"]["runCount"] == len(expected)


async def test_file_stream_keeps_history_by_offset_and_moves_timestamps(client: Client) -> None:
    await client.gql(
        UPSERT, name="r1", project="p", entity="lab", config=json.dumps({"lr": {"value": 1}})
    )
    first = client.server.get_run("lab", "p", "r1")
    assert first is not None and first["state"] == "running"
    await client.stream("r1", _history({"_step": 0, "a": 1}, {"_step": 1, "a": 2}))
    await client.stream("r1", _history({"_step": 1, "a": 2}, {"_step": 2, "a": 3}, offset=1))
    run = await client.control("GET", "runs/lab/p/r1")
    assert [r["a"] for r in run["history"]] == [1, 2, 3]
    assert run["updatedAt"] > first["updatedAt"] and run["heartbeatAt"] > first["heartbeatAt"]
    await client.stream(
        "r1",
        {
            "files": {"wandb-summary.json": {"offset": 0, "content": ['{"a": 3}']}},
            "complete": True,
            "exitcode": 0,
        },
    )
    assert client.server.get_run("lab", "p", "r1")["state"] == "finished"  # type: ignore[index]
    changed = await client.control("POST", "runs/lab/p/r1/state", {"state": "crashed"})
    assert changed["state"] == "crashed" and changed["updatedAt"] > run["updatedAt"]


async def test_silent_runs_crash_and_stopped_runs_are_killed(client: Client) -> None:
    await client.gql(UPSERT, name="quiet", project="p", entity="lab")
    await client.gql(UPSERT, name="stopme", project="p", entity="lab")
    gid = base64.b64encode(b"Run:lab/p/stopme").decode()
    stop = "mutation StopRun($id: ID!) { stopRun(input: {id: $id}) { success } }"
    assert (await client.gql(stop, id=gid))["data"]["stopRun"]["success"] is True
    assert (await client.stream("stopme", {}))["stopped"] is True
    await client.stream("quiet", {})  # it streamed once, then went silent
    await _until(lambda: client.server.get_run("lab", "p", "quiet")["state"] == "crashed")  # type: ignore[index]
    await _until(lambda: client.server.get_run("lab", "p", "stopme")["state"] == "killed")  # type: ignore[index]
    await client.stream("quiet", {})
    assert client.server.get_run("lab", "p", "quiet")["state"] == "running"  # type: ignore[index]


async def test_agent_heartbeats_hand_out_one_run_at_a_time_and_honour_run_cap(
    client: Client,
) -> None:
    client.server.heartbeat_timeout = 60
    config = (
        "method: grid\nprogram: train.py\nrun_cap: 2\nparameters:\n  a:\n    values: [1, 2, 3]\n"
    )
    create = (QUERIES / "UpsertSweep__2ebbb379.graphql").read_text()
    body = await client.gql(create, config=config, entityName="lab", projectName="p")
    sweep = body["data"]["upsertSweep"]["sweep"]["name"]
    assert len(sweep) == 8
    agent = await client.gql(
        (QUERIES / "CreateAgent__f6509777.graphql").read_text(),
        host="h",
        projectName="p",
        entityName="lab",
        sweep=sweep,
    )
    aid = agent["data"]["createAgent"]["agent"]["id"]

    async def beat(state: dict[str, bool]) -> list[dict[str, Any]]:
        reply = await client.gql(HEARTBEAT, id=aid, runState=json.dumps(state))
        commands: list[dict[str, Any]] = json.loads(reply["data"]["agentHeartbeat"]["commands"])
        return commands

    (first,) = await beat({})
    assert first["type"] == "run" and first["program"] == "train.py" and len(first["run_id"]) == 8
    assert first["args"] == {"a": {"value": 1}}
    assert await beat({first["run_id"]: True}) == []
    await client.gql(
        UPSERT,
        name=first["run_id"],
        project="p",
        entity="lab",
        sweep=sweep,
        config=json.dumps({"a": {"value": 1}}),
    )
    await client.stream(first["run_id"], {"complete": True, "exitcode": 0})
    (second,) = await beat({})
    assert second["args"] == {"a": {"value": 2}}
    await client.gql(UPSERT, name=second["run_id"], project="p", entity="lab", sweep=sweep)
    client.server.store.stop_run(
        base64.b64encode(f"Run:lab/p/{second['run_id']}".encode()).decode()
    )
    assert await beat({second["run_id"]: True}) == [{"type": "stop", "run_id": second["run_id"]}]
    await client.stream(second["run_id"], {"complete": True, "exitcode": 255})
    assert client.server.get_run("lab", "p", second["run_id"])["state"] == "killed"  # type: ignore[index]
    assert await beat({}) == [{"type": "exit"}]
    assert client.server.get_sweep("lab", "p", sweep)["state"] == "FINISHED"  # type: ignore[index]


async def test_paused_sweep_gives_nothing_to_do(client: Client) -> None:
    client.server.seed(
        {
            "sweeps": [
                {
                    "entity": "lab",
                    "project": "p",
                    "name": "sw",
                    "state": "PAUSED",
                    "config": {"method": "random", "parameters": {"a": {"values": [1]}}},
                }
            ]
        }
    )
    agent = client.server.store.create_agent("lab", "p", "sw", "h")
    assert client.server.store.agent_heartbeat(agent.gid, {}) == []


def test_command_line_prints_the_url_and_serves() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.servers.wandb", "--port", "0", "--heartbeat-timeout", "3"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            url = line.split()[-1]
            import urllib.request

            with urllib.request.urlopen(f"{url}/_control/health", timeout=5) as resp:
                assert json.loads(resp.read()) == {"ok": True}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
