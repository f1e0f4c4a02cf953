"""W&B outages: one notice after a while down, one when it answers again, none for blips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.outage import Outage, one_line, track_outage

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
AFTER = 600.0


def play(rounds: list[tuple[float, bool]]) -> list[str]:
    """Feed (seconds from T0, ok) rounds; return the notices' first words."""
    state, said = Outage(), []
    for at, ok in rounds:
        error = None if ok else "connect to W&B: W&B did not answer within 20 s\ntraceback..."
        now = T0 + timedelta(seconds=at)
        state, notice = track_outage(state, ok=ok, error=error, now=now, after=AFTER)
        if notice is not None:
            said.append(notice.text.split()[0] + " " + notice.key.split(":")[0])
    return said


@pytest.mark.parametrize(
    ("rounds", "said"),
    [
        ([(0, True), (30, True)], []),
        # A blip shorter than the setting is nobody's business.
        ([(0, False), (60, False), (300, True)], []),
        # Down for longer: told once however many failed rounds follow, then back once.
        (
            [(0, False), (60, False), (600, False), (900, False), (1200, True), (1230, True)],
            ["⚠️ wandb-down", "✅ wandb-up"],
        ),
        # Two outages make two pairs of notices.
        (
            [(0, False), (700, False), (800, True), (900, False), (1600, False), (1700, True)],
            ["⚠️ wandb-down", "✅ wandb-up", "⚠️ wandb-down", "✅ wandb-up"],
        ),
    ],
)
def test_notices_follow_the_outage(rounds: list[tuple[float, bool]], said: list[str]) -> None:
    assert play(rounds) == said


def test_notices_name_the_error_in_one_line_and_the_duration() -> None:
    state, _ = track_outage(Outage(), ok=False, error="boom <x>\nmore", now=T0, after=AFTER)
    later = T0 + timedelta(minutes=12)
    state, down = track_outage(state, ok=False, error="boom <x>\nmore", now=later, after=AFTER)
    assert down is not None and "12m" in down.text and "boom &lt;x&gt;" in down.text
    assert "more" not in down.text
    _, up = track_outage(state, ok=True, error=None, now=later + timedelta(minutes=3), after=AFTER)
    assert up is not None and "15m" in up.text
    assert down.key != up.key


@pytest.mark.parametrize(
    ("error", "line"),
    [(None, "no answer"), ("", "no answer"), ("\n  a  \nb", "a"), ("x" * 300, "x" * 199 + "…")],
)
def test_one_line(error: str | None, line: str) -> None:
    assert one_line(error) == line
