"""How the chat sums up agents that wait for, run on or ended on a cluster."""

from __future__ import annotations

import pytest

from bot.domain.control import render_agent_end
from bot.domain.launchers import (
    AgentPlace,
    agents_summary,
    ends_summary,
    group_label,
    place_text,
)

R = AgentPlace("running")
P = AgentPlace("pending", "Resources")
E0 = AgentPlace("ended", "COMPLETED")
E1 = AgentPlace("ended", "FAILED")


@pytest.mark.parametrize(
    ("places", "text"),
    [
        ([R, R, P, P], "4 agents · 2 running · 2 pending (Resources)"),
        ([R, R], "2 agents · 2 running"),
        ([R], "1 agent · 1 running"),
        (
            [P, AgentPlace("pending", "Priority"), AgentPlace("pending")],
            "3 agents · 3 pending (Priority, Resources)",
        ),
        ([R, E0], "2 agents · 1 running · 1 ended"),
        ([AgentPlace("pending", "<held>")], "1 agent · 1 pending (&lt;held&gt;)"),
        ([], "0 agents"),
    ],
)
def test_agents_summary(places: list[AgentPlace], text: str) -> None:
    assert agents_summary(places) == text


@pytest.mark.parametrize(
    ("places", "text"),
    [
        ([E0, E0], "Slurm array 12 · COMPLETED"),
        ([E0, E1], "Slurm array 12 · 1 COMPLETED · 1 FAILED"),
        ([E0, R], "Slurm array 12 · 1 COMPLETED"),
        ([R, P], ""),
    ],
)
def test_ends_summary(places: list[AgentPlace], text: str) -> None:
    assert ends_summary("Slurm array 12", places) == text


@pytest.mark.parametrize(
    ("kind", "wheres", "label"),
    [
        ("slurm", ["12_0", "12_1"], "Slurm array 12"),
        ("slurm", ["12_0", "13_0"], "Slurm arrays 12, 13"),
        ("local", ["vm"], "local"),
    ],
)
def test_group_label(kind: str, wheres: list[str], label: str) -> None:
    assert group_label(kind, wheres) == label


@pytest.mark.parametrize(
    ("place", "text"),
    [
        (P, "pending (Resources)"),
        (AgentPlace("pending"), "pending"),
        (AgentPlace("running", where="node1"), "running on node1"),
        (E1, "FAILED"),
        (AgentPlace("ended"), "ended"),
    ],
)
def test_place_text(place: AgentPlace, text: str) -> None:
    assert place_text(place) == text


def test_an_end_seen_without_an_exit_code_says_how() -> None:
    text = render_agent_end(
        "lab/proj/abc",
        agent=1,
        returncode=None,
        known=True,
        how="TIMEOUT",
        ran_for_s=120,
        done=3,
        count=4,
        log_tail=["slurmstepd: error: *** JOB 12 CANCELLED DUE TO TIME LIMIT ***"],
        ui_url="https://wandb.ai",
    )
    assert text.startswith("⚠️ agent 1 of sweep"), text
    assert "ended TIMEOUT after 2m" in text, text
    assert "runs done: 3/4" in text and "TIME LIMIT" in text


def test_sweeps_status_names_slurm_tasks_by_job_and_says_where_they_are() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.domain.control import AgentView, SweepView, render_sweeps_status

    now = datetime(2026, 1, 1, tzinfo=UTC)
    began = now - timedelta(minutes=3)
    view = SweepView(
        path="lab/proj/abc",
        name="wine",
        count=4,
        started_at=began,
        finished_at=None,
        agents=(
            AgentView(0, 0, began, True, where="slurm 12_0", state="running on n1"),
            AgentView(1, 0, began, True, where="slurm 12_1", state="pending (Resources)"),
            AgentView(2, 0, began, False, exit_code=1, where="slurm 12_2", state="FAILED"),
            AgentView(3, 0, began, True, where="slurm 12_3"),
            AgentView(4, 321, began, True),
        ),
        agents_text="3 agents · 1 running · 1 pending (Resources) · Slurm array 12",
    )
    text = render_sweeps_status([view], now=now, ui_url="https://wandb.ai")
    lines = text.splitlines()
    assert "agents: 3 agents · 1 running · 1 pending (Resources) · Slurm array 12" in lines
    assert "  #0 slurm 12_0 · running on n1 · up 3m 00s" in lines
    assert "  #1 slurm 12_1 · pending (Resources)" in lines
    assert "  #2 slurm 12_2 · FAILED (1)" in lines
    assert "  #3 slurm 12_3 · submitted" in lines
    assert "  #4 pid 321 · up 3m 00s" in lines
