"""/compare end to end: runs logged by the real training script, one photo, diff and delta."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.domain.format import fmt_number
from tests.harness import ENTITY, MEMBER, OTHER_LAB_CHAT, PROJECT, Harness, lab_data
from tests.test_e2e_insight import decode_png, ink

pytestmark = pytest.mark.slow

PROD = "wine-quality-prod"
# (run id, display name, project, training arguments)
RUNS = (
    ("cmpsmall1", "small-forest", PROJECT, ("--n_estimators", "5", "--max_depth", "2")),
    ("cmpbig001", "big-forest", PROJECT, ("--n_estimators", "60", "--max_depth", "8")),
    ("cmpcurve1", "curve-a", PROJECT, ("--curve", "0.5,0.6,0.7")),
    ("cmpcurve2", "curve-b", PROJECT, ("--curve", "0.55,0.7,0.82", "--seed", "3")),
    ("cmpprod01", "prod-forest", PROD, ("--n_estimators", "5", "--max_depth", "2")),
    ("cmptwin01", "twin", PROJECT, ("--seed", "1")),
    ("cmptwin02", "twin", PROJECT, ("--seed", "2")),
)


def compare_lab() -> dict[str, object]:
    """The test lab with a second project, and no chat watching either (no notifications)."""
    return lab_data(
        chats=[
            {"id": -1001234567890, "name": "ml-alerts", "projects": []},
            {"id": OTHER_LAB_CHAT, "name": "ml-quiet", "projects": []},
        ],
        projects={PROJECT: {"metric": "accuracy", "goal": "maximize"}, PROD: {}},
    )


async def train_all(h: Harness, runs: Sequence[tuple[str, str, str, Sequence[str]]] = RUNS) -> None:
    """Log these runs with the real SDK, all at once."""
    codes = await asyncio.gather(
        *(
            h.train_to_end(
                *args, project=project, env={"WANDB_RUN_ID": rid, "WANDB_NAME": name}, timeout=120
            )
            for rid, name, project, args in runs
        )
    )
    assert codes == [0] * len(runs)


def summary(h: Harness, project: str, run_id: str) -> dict[str, object]:
    run = next(r for r in h.wb.list_runs(ENTITY, project) if r["name"] == run_id)
    return dict(run["summary"])


def photos(h: Harness) -> int:
    return sum(1 for m in h.telegram.bot_messages(OTHER_LAB_CHAT) if m.photo)


async def test_compare_sends_one_photo_with_the_differing_keys_and_the_delta(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, lab=compare_lab(), flood=False) as h:
        await train_all(h)
        ask = f"/compare {PROJECT}/small-forest {PROJECT}/cmpbig001"

        reply = await h.reply_to(ask, chat_id=OTHER_LAB_CHAT, user_id=MEMBER, timeout=60)

        assert reply.photo is not None and photos(h) == 1
        assert ink(decode_png(h, reply.photo, "compare-default.png")) > 0.01
        caption = reply.caption or ""
        # The lab file's metric and goal, both runs' final values, who is ahead and by how much.
        assert caption.startswith("📈 compare · accuracy (higher is better, from the lab file)")
        a = float(summary(h, PROJECT, "cmpsmall1")["accuracy"])  # type: ignore[arg-type]
        b = float(summary(h, PROJECT, "cmpbig001")["accuracy"])  # type: ignore[arg-type]
        assert f"A small-forest {fmt_number(a)}" in caption
        assert f"B big-forest {fmt_number(b)}" in caption
        word = "better" if b > a else "worse" if b < a else "tie"
        assert word in caption, caption
        differs = next(line for line in caption.splitlines() if line.startswith("differs: "))
        assert "n_estimators 5 → 60" in differs and "max_depth 2 → 8" in differs, differs
        # Keys both runs share with the same value are not differences.
        assert "dataset" not in differs and "epochs" not in differs, differs
        await asyncio.sleep(0.5)
        assert photos(h) == 1, "exactly one photo for one /compare"

        curves = await h.reply_to(
            f"/compare {PROJECT}/curve-a {PROJECT}/curve-b val/accuracy",
            chat_id=OTHER_LAB_CHAT,
            user_id=MEMBER,
            timeout=60,
        )
        assert curves.photo is not None
        decode_png(h, curves.photo, "compare-curves.png")
        caption = curves.caption or ""
        assert "A curve-a 0.7000" in caption and "B curve-b 0.8200" in caption, caption
        assert "B is 0.1200 better (+0.1200)" in caption, caption
        assert "seed 0 → 3" in caption and "curve " in caption, caption

        # Runs of two projects: allowed, each labelled by its project.
        reply = await h.reply_to(
            f"/compare {PROJECT}/small-forest {PROD}/prod-forest",
            chat_id=OTHER_LAB_CHAT,
            user_id=MEMBER,
            timeout=60,
        )
        assert reply.photo is not None
        caption = reply.caption or ""
        assert f"A {PROJECT}/small-forest" in caption and f"B {PROD}/prod-forest" in caption
        assert "same config" in caption, caption

        # A name two runs share: pick one, the other run and the metric are kept.
        choice = await h.reply_to(
            f"/compare {PROJECT}/twin {PROJECT}/cmpsmall1 loss",
            chat_id=OTHER_LAB_CHAT,
            user_id=MEMBER,
        )
        assert choice.text is not None and '2 runs are called "twin"' in choice.text
        labels = [b["text"] for row in choice.buttons for b in row]
        assert len(labels) == 2 and all(label.startswith("cmptwin0") for label in labels)
        before = photos(h)
        h.telegram.press(OTHER_LAB_CHAT, choice.message_id, button_text=labels[0], user_id=MEMBER)
        picked = await h.wait_for_text("📈 compare · loss", chat_id=OTHER_LAB_CHAT, timeout=60)
        assert picked.photo is not None and photos(h) == before + 1
        assert "lower is better" in (picked.caption or "")


BAD = (
    ("/compare", "Say which two runs."),
    ("/compare small-forest", "Name two runs."),
    (f"/compare {PROJECT}/small-forest {PROJECT}/small-forest", "same run twice"),
    (f"/compare {PROJECT}/small-forest {PROJECT}/cmpsmall1", "same run twice"),
    (
        f"/compare {PROJECT}/small-forest {PROJECT}/big-forest nosuch",
        'do not both have history for "nosuch". Metrics both logged: accuracy, epoch, f1',
    ),
    (f"/compare {PROJECT}/small-forest {PROJECT}/nosuchrun", 'No run "nosuchrun"'),
    (f"/compare {PROJECT}/a {PROJECT}/b c d", "at most one metric"),
    (f"/compare {PROJECT}/a {PROJECT}/b <b>", "is not a metric name"),
)


async def test_compare_refuses_bad_input_in_one_line_with_the_usage(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=compare_lab(), flood=False) as h:
        await train_all(h, RUNS[:2])
        for command, expected in BAD:
            reply = await h.reply_to(command, chat_id=OTHER_LAB_CHAT, user_id=MEMBER, timeout=60)
            assert reply.photo is None, command
            text = reply.text or ""
            assert expected in text, text
            # A run W&B does not know is a fact, not a mistake of writing: no usage with it.
            assert "Usage: /compare <run> <run> [metric]" in text or "No run" in text, text
        assert photos(h) == 0
