"""The bot's HTTP endpoint: Prometheus metrics and W&B automation webhooks, on the real app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.hooks import HookPayloadError, parse_hook
from bot.health import MAX_HOOK_BYTES
from tests.harness import ENTITY, PROJECT, Harness

SECRET = "hook-secret-0123456789"
HOOK = {"event_type": "RUN_STATE", "entity": ENTITY, "project": PROJECT}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse Prometheus text with prometheus_client's own parser: (name, labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[Any, float]:
    async with session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return samples(await response.text())


def hook_settings(**extra: str) -> dict[str, str]:
    return {"WTB_HTTP_PORT": "0", "WTB_WANDB_HOOK_SECRET": SECRET, **extra}


async def test_metrics_show_polls_requests_lag_notifications_and_commands(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings={"WTB_HTTP_PORT": "0"}) as h:
        assert h.application is not None
        services = h.application.bot_data.services
        assert services.health is not None
        await h.end_seeded_run("metrics-run-1")
        await h.wait_for_text("metrics-run-1")
        await h.reply_to("/help")
        async with aiohttp.ClientSession() as session:
            found = await scrape(session, services.health.url)
    project = (("project", f"{ENTITY}/{PROJECT}"),)
    assert found[("wtb_polls_total", (("outcome", "ok"), *project))] >= 2
    assert found[("wtb_wandb_requests_total", ())] >= 2
    assert 0 <= found[("wtb_poll_lag_seconds", project)] < 30
    assert found[("wtb_notifications_sent_total", ())] >= 1
    assert found[("wtb_notifications_queued", ())] >= 0
    assert found[("wtb_outbox_oldest_age_seconds", ())] >= 0
    assert found[("wtb_agents_running", ())] == 0
    assert found[("process_resident_memory_bytes", ())] > 0
    assert ("wtb_telegram_rate_limited_total", ()) in found
    assert ("wtb_notifications_retried_total", ()) in found
    assert ("wtb_notifications_dead_total", ()) in found
    assert found[("wtb_commands_total", (("command", "help"), ("outcome", "ok")))] >= 1
    assert found[("wtb_command_seconds_count", (("command", "help"),))] >= 1


async def test_metrics_count_w_and_b_errors_by_kind(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings={"WTB_HTTP_PORT": "0", "WTB_WANDB_TIMEOUT": "1"}) as h:
        assert h.application is not None
        services = h.application.bot_data.services
        assert services.health is not None
        h.wb.inject_fault("Runs", "500", count=1000)
        await h.wait_until(lambda: services.wandb.health.consecutive_failures > 0, timeout=20)
        async with aiohttp.ClientSession() as session:
            found = await scrape(session, services.health.url)
    assert found[("wtb_wandb_errors_total", (("kind", "unavailable"),))] >= 1
    project = (("project", f"{ENTITY}/{PROJECT}"),)
    assert found[("wtb_polls_total", (("outcome", "error"), *project))] >= 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-secret"},
        {"Authorization": SECRET},
        {"Authorization": f"Bearer {SECRET}x"},
    ],
    ids=["none", "wrong", "no-bearer", "longer"],
)
async def test_a_hook_without_the_right_secret_is_refused(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with Harness(tmp_path, settings=hook_settings()) as h:
        assert h.application is not None
        health = h.application.bot_data.services.health
        assert health is not None
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{health.url}/hooks/wandb", json=HOOK, headers=headers) as response,
        ):
            assert response.status == 401


async def test_a_big_or_bad_hook_body_is_refused(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {SECRET}"}
    async with Harness(tmp_path, settings=hook_settings()) as h:
        assert h.application is not None
        health = h.application.bot_data.services.health
        assert health is not None
        url = f"{health.url}/hooks/wandb"
        async with aiohttp.ClientSession() as session:
            big = b'{"project": "' + b"x" * MAX_HOOK_BYTES + b'"}'
            async with session.post(url, data=big, headers=auth) as response:
                assert response.status == 413
            async with session.post(url, data=b"[1, 2]", headers=auth) as response:
                assert response.status == 400


async def test_a_hook_brings_the_finished_run_within_two_seconds_at_a_minute_poll(
    tmp_path: Path,
) -> None:
    slow = {"WTB_POLL_INTERVAL": "60", "WTB_IDLE_POLL_INTERVAL": "60"}
    async with Harness(tmp_path, settings=hook_settings(**slow)) as h:
        assert h.application is not None
        services = h.application.bot_data.services
        assert services.health is not None
        url, auth = f"{services.health.url}/hooks/wandb", {"Authorization": f"Bearer {SECRET}"}
        await h.wait_until(
            lambda: services.store.runs.project_state(ENTITY, PROJECT).baseline_done,
            what="baseline",
        )
        polls = services.monitor.polls
        h.wb.seed(
            {"runs": [{"entity": ENTITY, "project": PROJECT, "name": "hooked", "state": "running"}]}
        )
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=HOOK, headers=auth) as response:
                assert response.status == 202 and (await response.json())["polling"] is True
            await h.wait_until(
                lambda: f"{ENTITY}/{PROJECT}/hooked" in services.store.runs.memory(ENTITY, PROJECT),
                timeout=2,
                what="the running run seen",
            )
            h.wb.set_run_state(ENTITY, PROJECT, "hooked", "finished")
            started = asyncio.get_running_loop().time()
            async with session.post(url, json=HOOK, headers=auth) as response:
                assert response.status == 202
            await h.wait_for_text(lambda t: "hooked" in t and "finished" in t, timeout=2)
        assert asyncio.get_running_loop().time() - started < 2
        # Two hooks, two polls: no poll came from the 60 s schedule meanwhile.
        assert services.monitor.polls == polls + 2


async def test_a_hook_for_a_project_nobody_watches_polls_nothing(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings=hook_settings()) as h:
        assert h.application is not None
        health = h.application.bot_data.services.health
        assert health is not None
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{health.url}/hooks/wandb",
                json={"project": "someone-elses"},
                headers={"Authorization": f"Bearer {SECRET}"},
            ) as response,
        ):
            assert response.status == 202 and (await response.json())["polling"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"project": "p", "entity": "e", "event_type": "RUN_STATE"}', ("e", "p", "RUN_STATE")),
        (b'{"project_name": "p", "entity_name": "e"}', ("e", "p", "")),
        (b'{"project": "e/p"}', ("e", "p", "")),
        (b'{"project": "p", "entity": ""}', (None, "p", "")),
    ],
)
def test_parse_hook_reads_the_project(body: bytes, expected: tuple[Any, ...]) -> None:
    hook = parse_hook(body)
    assert (hook.entity, hook.project, hook.event) == expected


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", b'{"project": 3}', b'{"project": "a b"}', b'{"project": "a\\nb"}'],
)
def test_parse_hook_refuses_what_names_no_project(body: bytes) -> None:
    with pytest.raises(HookPayloadError):
        parse_hook(body)
