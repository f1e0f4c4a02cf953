"""Tests for the PNG charts: valid images, the right size, something drawn, no crashes."""

from __future__ import annotations

import io
import math
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib import image as mpimg

from bot import charts
from bot.domain.digest import build_digest
from config.lab import LabConfig
from wandb_client.models import RunSnapshot

NOW = datetime(2025, 11, 24, 8, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=1)
SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "$\\alpha$ <b>&_^{x} 🚀 日本"


def ink(data: bytes) -> float:
    """Return the fraction of pixels that differ from the (white) background."""
    pixels = mpimg.imread(io.BytesIO(data), format="png")[..., :3]
    return float(np.mean(np.any(np.abs(pixels - 1.0) > 0.05, axis=-1)))


def assert_chart(data: bytes, size=(1200, 800), min_ink=0.01):
    assert data.startswith(SIGNATURE)
    assert charts.png_size(data) == size
    assert ink(data) > min_ink


def curve(n=200, f=lambda s: 1 - math.exp(-s / 50)):
    return [(float(s), f(s)) for s in range(n)]


def make_run(rid, state="finished", acc=None, project="wine-quality-dev", ended=SINCE):
    return RunSnapshot(
        entity="lab",
        project=project,
        id=rid,
        display_name=f"rf-{rid}",
        state=state,
        url="https://u",
        created_at=SINCE,
        heartbeat_at=ended,
        summary={"accuracy": acc} if acc is not None else {},
    )


LAB = LabConfig(
    entity="lab",
    projects={
        "wine-quality-dev": {"metric": "accuracy"},
        "wine-quality-prod": {"metric": "accuracy"},
    },
)


def digest_of(projects, since=SINCE):
    return build_digest(
        chat_title="ml-alerts",
        projects=projects,
        sweeps=[],
        previous_best={},
        lab=LAB,
        since=since,
        now=NOW,
    )


def test_png_size_reads_ihdr():
    data = charts.no_data_png("t")
    assert charts.png_size(data) == charts.SMALL_PX


@pytest.mark.parametrize("data", [b"", b"GIF89a" + b"\0" * 30, SIGNATURE + b"\0" * 4])
def test_png_size_refuses_non_png(data):
    with pytest.raises(ValueError):
        charts.png_size(data)


@pytest.mark.parametrize(
    "series",
    [
        {"accuracy": curve()},
        {"accuracy": curve(), "f1": curve(f=lambda s: 0.9 - math.exp(-s / 40))},
        {"accuracy": curve(), "loss": curve(f=lambda s: 500 * math.exp(-s / 50))},
        {"a": curve(), "b": curve(f=lambda s: 1e3 + s), "c": curve(f=lambda s: -1e6 + s * 10)},
        {f"m{i}": curve(f=lambda s, i=i: 10.0**i + s) for i in range(10)},
        {"flat": [(0, 1.0), (1, 1.0), (2, 1.0)]},
        {"one point": [(5, 0.5)]},
        {"with bad values": [(0, 1.0), (1, math.nan), (2, math.inf), (3, -math.inf), (4, 2.0)]},
        {HOSTILE: curve(20), "ok": [(1, 2.0)]},
        {"huge steps": [(s * 1e6, s) for s in range(50)]},
    ],
)
def test_metric_curves_draw(series):
    assert_chart(charts.metric_curves_png("rf-random-19 · wine", series))


@pytest.mark.parametrize(
    "series",
    [{}, {"a": []}, {"a": [(0, math.nan), (1, math.inf)]}, {"a": [(math.nan, 1.0)]}],
)
def test_metric_curves_without_data_say_so(series):
    assert_chart(charts.metric_curves_png("t", series), size=charts.SMALL_PX, min_ink=0.002)


@pytest.mark.parametrize(
    ("ranges", "groups"),
    [
        ({"acc": (0.5, 0.97), "f1": (0.48, 0.96)}, [["acc", "f1"]]),
        ({"acc": (0.5, 0.97), "loss": (0.1, 20.0)}, [["acc"], ["loss"]]),
        ({"a": (1.0, 1.0), "b": (1.0, 1.02)}, [["a", "b"]]),
        ({"a": (0.0, 1.0), "b": (1000.0, 1001.0)}, [["a"], ["b"]]),
    ],
)
def test_group_by_scale(ranges, groups):
    assert charts.group_by_scale(ranges) == groups


def sweep_points(n=30):
    points = []
    for i in range(n):
        params = {
            "max_depth": 2 + i % 12,
            "lr": 10.0 ** -(1 + i % 5),
            "criterion": ["gini", "entropy", "log_loss"][i % 3],
            "bootstrap": i % 2 == 0,
        }
        points.append((params, 0.8 + (i % 12) / 100))
    return points


@pytest.mark.parametrize(
    ("points", "best"),
    [
        (sweep_points(), 11),
        (sweep_points(), None),
        (sweep_points(1), 0),
        ([({"p": i} if i % 2 else {"q": "x"}, float(i)) for i in range(10)], 9),
        ([({f"p{k}": i * k for k in range(10)}, float(i)) for i in range(8)], 3),
        ([({"a": 1}, math.nan), ({"a": 2}, 0.5), ({"a": 3}, math.inf)], 0),
        ([({"x": HOSTILE, "y": None, "z": [1, 2]}, 1.0), ({"x": "b", "y": 1, "z": 3}, 2.0)], 1),
        ([({"lr": 0.0}, 0.1), ({"lr": 1e-5}, 0.2), ({"lr": 0.1}, 0.3)], 99),
    ],
)
def test_sweep_scatter_draws(points, best):
    assert_chart(charts.sweep_scatter_png("sweep k3x9q", "accuracy", points, best))


@pytest.mark.parametrize("points", [[], [({}, 0.5)], [({"a": 1}, math.nan)], [({"a": 1}, "text")]])
def test_sweep_scatter_without_data_says_so(points):
    data = charts.sweep_scatter_png("sweep", "accuracy", points, 0)
    assert_chart(data, size=charts.SMALL_PX, min_ink=0.002)


def test_sweep_scatter_marks_best_in_its_colour():
    data = charts.sweep_scatter_png("s", "accuracy", sweep_points(), 11)
    pixels = mpimg.imread(io.BytesIO(data), format="png")[..., :3]
    red = np.array([0xE6, 0x19, 0x4B]) / 255
    assert np.sum(np.all(np.abs(pixels - red) < 0.04, axis=-1)) > 100
    plain = charts.sweep_scatter_png("s", "accuracy", sweep_points(), None)
    pixels = mpimg.imread(io.BytesIO(plain), format="png")[..., :3]
    assert np.sum(np.all(np.abs(pixels - red) < 0.04, axis=-1)) == 0


@pytest.mark.parametrize(
    "projects",
    [
        {
            "wine-quality-dev": [
                make_run(str(i), "failed" if i % 5 == 0 else "finished", 0.9) for i in range(20)
            ]
        },
        {
            "wine-quality-dev": [make_run("a", acc=0.9)],
            "wine-quality-prod": [],
            HOSTILE: [make_run("b", "crashed")],
        },
        {f"project-{i}": [make_run(str(j), "killed") for j in range(i)] for i in range(15)},
        {"wine-quality-dev": [make_run("a", "running")]},
    ],
)
def test_digest_chart_draws(projects):
    data = charts.digest_png(digest_of(projects))
    assert_chart(data, size=(1200, 800))


def test_digest_chart_with_nothing_ended_still_lists_projects():
    digest = digest_of({"wine-quality-dev": [make_run("a", acc=0.9, ended=SINCE - timedelta(1))]})
    data = charts.digest_png(digest)
    width, height = charts.png_size(data)
    assert width == 1200 and height < 800
    assert ink(data) > 0.005


def test_digest_chart_without_projects():
    assert_chart(charts.digest_png(digest_of({})), size=charts.SMALL_PX, min_ink=0.002)


def test_charts_render_in_parallel_threads():
    results: list[bytes] = []
    errors: list[BaseException] = []

    def work(i):
        try:
            results.append(charts.metric_curves_png(f"t{i}", {"a": curve(), "b": curve(50)}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(charts.png_size(r) == (1200, 800) for r in results)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain", "plain"), ("$x$", r"\$x\$"), ("🚀 run", "? run"), ("a" * 50, "a" * 39 + "…")],
)
def test_plain_makes_text_safe(text, expected):
    assert charts.plain(text) == expected


def _pixels(data: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(data), format="png")[..., :3]


def test_three_scales_leave_no_empty_panel():
    png = charts.metric_curves_png(
        "three",
        {
            "loss": curve(f=lambda s: 2 * math.exp(-s / 40)),
            "accuracy": curve(f=lambda s: 0.6 + 0.3 * (1 - math.exp(-s / 30))),
            "lr": curve(f=lambda s: 0.01 * 0.98**s),
        },
    )
    pixels = _pixels(png)
    # The bottom-right quarter held a hidden fourth panel: blank. Now the third spans it.
    quarter = pixels[450:750, 650:1150]
    assert (quarter < 0.9).any(axis=-1).mean() > 0.005


def test_runs_piled_on_one_spot_are_visibly_many():
    one = [({"depth": 4}, 0.9), ({"depth": 8}, 0.95)]
    pile = [({"depth": 4}, 0.9)] * 10 + [({"depth": 8}, 0.95)]
    single = charts.sweep_scatter_png("s", "accuracy", one, 1)
    many = charts.sweep_scatter_png("s", "accuracy", pile, 10)
    assert ink(many) > ink(single) * 1.01


def test_a_five_minute_digest_says_last_5_min():
    from bot.domain.digest import digest_chart_data

    now = datetime(2025, 11, 24, 8, 0, tzinfo=UTC)
    digest = build_digest(
        chat_title="ml-alerts",
        projects={},
        sweeps=[],
        previous_best={},
        lab=LabConfig(entity="lab"),
        since=now - timedelta(minutes=5),
        now=now,
    )
    assert digest_chart_data(digest).title == "digest · ml-alerts · last 5 min"


def test_categorical_runs_on_one_spot_are_counted_like_numeric_ones():
    # Eight runs of "adam" (category 0) with one score, two of "sgd" (2) with another, one apart.
    xs = [0.0] * 8 + [2.0, 2.0, 2.0]
    ys = [0.9] * 8 + [0.93, 0.93, 0.85]
    spots, where = charts.pile_points(xs, ys, spread=True)
    assert [(round(x, 3), y, n) for x, y, n in spots] == [
        (0.0, 0.9, 8),
        (2.0, 0.93, 2),
        (round(2.0 + charts._jitter(1), 3), 0.85, 1),  # a different score stays apart
    ]
    assert where == [0] * 8 + [1, 1, 2]
    # Numbers are never nudged: their position is their value.
    numeric, _ = charts.pile_points([4.0, 4.0, 8.0], [0.9, 0.8, 0.9], spread=False)
    assert numeric == [(4.0, 0.9, 1), (4.0, 0.8, 1), (8.0, 0.9, 1)]
    png = charts.sweep_scatter_png("s", "accuracy", [({"opt": "adam"}, 0.9)] * 8, 0)
    assert_chart(png)


def test_a_long_sweep_title_and_its_best_stay_inside_the_chart():
    title = "sweep auaagp2w · accuracy (max, from the lab file)"
    points = [({"seed": 0}, 0.9775), ({"seed": 1}, 0.9888)]
    data = charts.sweep_scatter_png(title, "accuracy", points, 1)
    pixels = mpimg.imread(io.BytesIO(data), format="png")[..., :3]
    heading = pixels[:40]
    # A margin of white either side of the heading: it neither touches nor runs off an edge.
    assert np.all(heading[:, :20] > 0.9) and np.all(heading[:, -20:] > 0.9)


def test_a_whole_number_parameter_is_ticked_at_whole_numbers():
    assert list(charts.x_locator([0, 1]).tick_values(0, 1)) == [0, 1]
    assert any(t % 1 for t in charts.x_locator([0.0, 1.0]).tick_values(0, 1))
