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
        ([R, R], "2 agents"),
        ([R], "1 agent"),
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
