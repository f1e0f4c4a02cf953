"""/best, /plot and the Config and Plot buttons, end to end against the local servers."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg

from bot.domain.format import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, fmt_number, utf16_len
from tests.harness import ADMIN, ENTITY, LAB_CHAT, OTHER_LAB_CHAT, PROJECT, Harness, lab_data

CHARTS = Path("/tmp/charts-e2e")
SWEEP_ID = "sw3ep7ab"
LONG_NAME = "run-<b>&amp;-" + "very-long-name-" * 20


def unwatched_lab() -> dict[str, Any]:
    """Return the test lab with nobody watching the project, so no poll adds requests."""
    return lab_data(
        chats=[
            {"id": LAB_CHAT, "name": "ml-alerts", "projects": []},
            {"id": OTHER_LAB_CHAT, "name": "ml-quiet", "projects": []},
        ]
    )


def decode_png(h: Harness, photo: dict[str, Any], save_as: str) -> np.ndarray:
    """Fetch a sent photo's bytes from the Telegram server, keep a copy, and decode it."""
    stored = h.telegram.files.get(photo["file_id"])
    assert stored is not None
    CHARTS.mkdir(parents=True, exist_ok=True)
    (CHARTS / save_as).write_bytes(stored.data)
    return mpimg.imread(io.BytesIO(stored.data), format="png")


def ink(pixels: np.ndarray) -> float:
    """Return the share of pixels that are not (near) white."""
    rgb = pixels[..., :3]
    return float((rgb < 0.9).any(axis=-1).mean())


def expected_best(h: Harness, metric: str, goal: str) -> list[tuple[float, str]]:
    """Rank the seeded runs by `metric` in plain Python: (value, display name), best first."""
    scored = [
        (r["summary"][metric], r["displayName"])
        for r in h.wb.list_runs(ENTITY, PROJECT)
        if isinstance(r["summary"].get(metric), float) and math.isfinite(r["summary"][metric])
    ]
    return sorted(scored, reverse=goal == "max")


@pytest.mark.parametrize(
    ("command", "metric", "goal"),
    [
        ("/best wine-quality-dev", "accuracy", "max"),
        ("/best wine-quality-dev accuracy min", "accuracy", "min"),
        ("/best wine-quality-dev loss min", "loss", "min"),
        ("/best wine-quality-dev loss max", "loss", "max"),
    ],
)
async def test_best_of_ten_thousand_runs_is_right_and_costs_one_runs_request(
    tmp_path: Path, command: str, metric: str, goal: str
) -> None:
    async with Harness(tmp_path, lab=unwatched_lab()) as h:
        seeded = h.wb.seed(
            {"generate": {"entity": ENTITY, "project": PROJECT, "count": 10_000, "seed": 7}}
        )
        assert seeded["runs"] == 10_000
        (best, best_name), (runner_up, _) = expected_best(h, metric, goal)[:2]
        h.wb.reset_requests()

        answer = await h.reply_to(command)

        assert h.wb.request_counts().get("Runs") == 1, h.wb.request_counts()
        assert answer.html is not None
        first, second = answer.html.split("\n")[:2]
        assert first.startswith("🏆") and f"by {metric} ({goal})" in first
        assert f">{best_name}</a>" in second
        assert fmt_number(best) in second and fmt_number(runner_up) in second
        assert [b["text"] for row in answer.buttons for b in row] == ["Config", "Plot"]


def edge_runs() -> list[dict[str, Any]]:
    """Runs that break naive rendering: missing, NaN and infinite metrics, nesting, long names."""
    nested = {
        "optimizer": {"name": "adam", "betas": [0.9, 0.999], "schedule": {"kind": "cosine"}},
        "notes": "<script>alert('x')</script> & more " * 40,
        **{f"feature_{i:03d}_" + "x" * 40: "value-" * 30 for i in range(40)},
    }
    base = {"entity": ENTITY, "project": PROJECT, "state": "finished"}
    history = [
        {
            "_step": s,
            "accuracy": (float("nan") if s % 7 == 3 else 0.5 + s / 100),
            "loss": 1 / (s + 1),
        }
        for s in range(40)
    ]
    return [
        {**base, "name": "nometric", "summary": {"loss": 0.3}},
        {**base, "name": "nanrun", "summary": {"accuracy": float("nan")}},
        {**base, "name": "infrun", "summary": {"accuracy": float("inf"), "loss": float("-inf")}},
        {**base, "name": "neginf", "summary": {"accuracy": float("-inf")}},
        {
            **base,
            "name": "edgebest",
            "displayName": LONG_NAME,
            "config": nested,
            "summary": {"accuracy": 0.91, "loss": 0.2, "_step": 39, "nested": {"f1": 0.5}},
            "history": history,
        },
        {**base, "name": "second", "summary": {"accuracy": 0.88}, "config": {"lr": 0.1}},
        {
            **base,
            "name": "livewide",
            "state": "running",
            "displayName": LONG_NAME + "-live",
            "config": nested,
            "summary": {"accuracy": 0.7, "_step": 3},
        },
    ]


async def test_odd_runs_render_within_limits_in_best_config_runs_and_notifications(
    tmp_path: Path,
) -> None:
    # These tests type commands faster than a person would; Telegram's per-chat flood limit
    # is the delivery tests' subject, not theirs.
    async with Harness(tmp_path, flood=False) as h:
        h.wb.seed({"runs": edge_runs()})
        services = h.application.bot_data.services  # type: ignore[union-attr]
        await h.wait_until(
            lambda: services.store.runs.project_state(ENTITY, PROJECT).baseline_done,
            what="baseline",
        )

        best = await h.reply_to("/best wine-quality-dev")
        assert best.html is not None and utf16_len(best.text or "") <= TELEGRAM_TEXT_LIMIT
        assert "edgebest" in best.html and "0.9100" in best.html and "0.8800" in best.html
        assert "<script>" not in best.html
        # The lab chat watches one project: /best alone means it.
        alone = await h.reply_to("/best")
        assert alone.html == best.html

        before = len(h.telegram.bot_messages(LAB_CHAT))
        h.telegram.press(LAB_CHAT, best.message_id, button_text="Config", user_id=ADMIN)
        configs = await h.telegram.wait_for_messages(
            LAB_CHAT,
            lambda ms: (
                len(ms) > before + 2 and "schedule" in "".join(m.text or "" for m in ms[before:])
            ),
            timeout=20,
        )
        config_texts = [m.text or "" for m in configs[before:]]
        assert len(config_texts) >= 3  # the 40 wide keys do not fit one message
        assert all(utf16_len(t) <= TELEGRAM_TEXT_LIMIT for t in config_texts)
        joined = "".join(config_texts)
        assert "optimizer.schedule.kind = cosine" in joined and "optimizer.betas" in joined

        runs = await h.reply_to("/runs wine-quality-dev")
        assert utf16_len(runs.text or "") <= TELEGRAM_TEXT_LIMIT

        plot = await h.reply_to("/plot wine-quality-dev/edgebest accuracy loss nested.f1")
        assert plot.photo is not None and utf16_len(plot.caption or "") <= TELEGRAM_CAPTION_LIMIT
        assert "no history for nested.f1" in (plot.caption or "")
        assert ink(decode_png(h, plot.photo, "plot-edge-run.png")) > 0.01

        h.wb.set_run_state(ENTITY, PROJECT, "livewide", "finished")
        note = await h.wait_for_text(lambda t: t.startswith("✅ finished"), timeout=20)
        assert utf16_len(note.text or "") <= TELEGRAM_TEXT_LIMIT
        assert [b["text"] for row in note.buttons for b in row] == ["Config", "Plot"]
        before = len(h.telegram.bot_messages(LAB_CHAT))
        h.telegram.press(LAB_CHAT, note.message_id, button_text="Plot", user_id=ADMIN)
        pressed = await h.telegram.wait_for_messages(
            LAB_CHAT, lambda ms: any(m.photo for m in ms[before:]), timeout=20
        )
        photo = next(m.photo for m in pressed[before:] if m.photo)
        assert ink(decode_png(h, photo, "plot-from-button.png")) > 0.005


def sweep_seed() -> dict[str, Any]:
    """A sweep of 12 runs over lr and depth, plus one run that has not logged the metric."""
    config = {
        "method": "random",
        "metric": {"name": "accuracy", "goal": "maximize"},
        "run_cap": 20,
        "parameters": {"lr": {"values": [0.001, 0.01, 0.1]}, "depth": {"min": 2, "max": 12}},
    }
    runs = [
        {
            "entity": ENTITY,
            "project": PROJECT,
            "name": f"sw{i:02d}",
            "displayName": f"rf-random-{i}",
            "sweep": SWEEP_ID,
            "config": {"lr": [0.001, 0.01, 0.1][i % 3], "depth": 2 + i % 11, "seed": i},
            "summary": {"accuracy": 0.8 + 0.01 * i - 0.002 * (i % 3)},
        }
        for i in range(12)
    ]
    runs.append({**runs[0], "name": "swlate", "summary": {}})
    return {
        "sweeps": [{"entity": ENTITY, "project": PROJECT, "name": SWEEP_ID, "config": config}],
        "runs": runs,
    }


async def test_plot_of_a_run_and_a_sweep_are_legible_pngs(tmp_path: Path) -> None:
    history = [
        {
            "_step": s,
            "accuracy": 0.6 + 0.35 * (1 - math.exp(-s / 15)),
            "loss": 2 * math.exp(-s / 10),
        }
        for s in range(60)
    ]
    seed = sweep_seed()
    seed["runs"].append(
        {
            "entity": ENTITY,
            "project": PROJECT,
            "name": "curves1",
            "displayName": "rf-grid-7",
            "config": {"n_estimators": 200},
            "summary": {"accuracy": 0.95, "loss": 0.01, "_step": 59},
            "history": history,
        }
    )
    async with Harness(tmp_path, lab=unwatched_lab(), flood=False) as h:
        h.wb.seed(seed)

        run_plot = await h.reply_to("/plot wine-quality-dev/curves1")
        assert run_plot.photo is not None
        assert (run_plot.photo["width"], run_plot.photo["height"]) == (1200, 800)
        pixels = decode_png(h, run_plot.photo, "plot-run.png")
        assert pixels.shape[:2] == (800, 1200)
        assert 0.01 < ink(pixels) < 0.5
        assert "rf-grid-7" in (run_plot.caption or "") and "accuracy 0.9" in (
            run_plot.caption or ""
        )

        sweep_plot = await h.reply_to(f"/plot sweep {SWEEP_ID}")
        assert sweep_plot.photo is not None
        pixels = decode_png(h, sweep_plot.photo, "plot-sweep.png")
        assert pixels.shape[:2] == (800, 1200) and 0.01 < ink(pixels) < 0.5
        assert "rf-random-11" in (sweep_plot.caption or "") and "12 runs" in (
            sweep_plot.caption or ""
        )

        best = await h.reply_to(f"/best {SWEEP_ID}")
        assert "by accuracy (max)" in (best.text or "") and "rf-random-11" in (best.text or "")
        h.telegram.press(LAB_CHAT, best.message_id, button_text="Plot", user_id=ADMIN)
        pressed = await h.telegram.wait_for_messages(
            LAB_CHAT,
            lambda ms: ms[-1].photo is not None and "rf-random-11" in (ms[-1].caption or ""),
            timeout=20,
        )
        assert pressed[-1].photo is not None

        unknown = await h.reply_to("/plot wine-quality-dev/nosuchrun")
        assert unknown.photo is None and "\n" not in (unknown.text or "")


async def test_plot_keeps_a_sparse_metric_and_names_a_runs_metrics_for_an_unknown_one(
    tmp_path: Path,
) -> None:
    # loss every step, val_acc every 100 steps at 50, 150, …: sampling 500 of the 1,000 rows
    # without keys dropped nearly every val_acc row, and its "last" with them.
    history: list[dict[str, Any]] = [{"_step": s, "loss": 1 / (s + 1)} for s in range(1000)]
    for s in range(50, 1000, 100):
        history[s]["val_acc"] = 0.5 + s / 2000
    run = {
        "entity": ENTITY,
        "project": PROJECT,
        "name": "sparse01",
        "displayName": "rf-sparse",
        "summary": {"loss": 0.001, "val_acc": 0.975, "_step": 999},
        "history": history,
    }
    async with Harness(tmp_path, lab=unwatched_lab(), flood=False) as h:
        h.wb.seed({"runs": [run]})
        plot = await h.reply_to("/plot wine-quality-dev/sparse01 val_acc loss")
        assert plot.photo is not None
        assert "last: val_acc 0.9750 · loss 0.001000" in (plot.caption or "")
        decode_png(h, plot.photo, "plot-sparse.png")

        unknown = await h.reply_to("/plot wine-quality-dev/sparse01 accuracy")
        assert unknown.photo is None
        assert 'rf-sparse has no history for "accuracy". Its metrics: loss, val_acc.' in (
            unknown.text or ""
        )


async def test_plot_sweep_loss_stars_the_lowest_loss_and_says_why(tmp_path: Path) -> None:
    # The sweep maximizes accuracy; its loss is smallest where accuracy is best, at rf-random-11.
    seed = sweep_seed()
    for run in seed["runs"]:
        if "accuracy" in run["summary"]:
            run["summary"]["loss"] = 1.0 - run["summary"]["accuracy"]
    async with Harness(tmp_path, lab=unwatched_lab(), flood=False) as h:
        h.wb.seed(seed)
        plot = await h.reply_to(f"/plot sweep {SWEEP_ID} loss")
        assert plot.photo is not None
        caption = plot.caption or ""
        assert "★ best rf-random-11 0.09400" in caption, caption
        assert "lower is better, by its name" in caption
        decode_png(h, plot.photo, "plot-sweep-loss.png")
        best = await h.reply_to(f"/best {SWEEP_ID} loss")
        assert "by loss (min)" in (best.text or "") and "rf-random-11" in (best.text or "")
