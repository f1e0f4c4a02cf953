"""PNG charts for the chat: metric curves, sweep scatters and digest bars.

Every function is pure and synchronous (call it off the event loop): it draws on its own
`Figure` with the Agg canvas, never through pyplot, so charts can render in threads at once.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text
from matplotlib.ticker import Formatter, MaxNLocator

from bot.domain.best import fmt_change
from bot.domain.digest import Digest, DigestChartData, DigestChartRow, digest_chart_data
from bot.domain.format import fmt_number

DPI = 150
SIZE_PX = (1200, 800)
SMALL_PX = (800, 400)
FONT = 14
TITLE_FONT = 17
MAX_PANELS = 6
MAX_SERIES = 8
MAX_PARAMS = 6
MAX_PROJECTS = 10
_SHARE_RATIO = 4.0
_LOG_SPAN = 100.0
_SCALES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
STATE_COLOURS: Mapping[str, str] = {
    "finished": "#2e9e4f",
    "failed": "#d62728",
    "crashed": "#ff7f0e",
    "killed": "#7f7f7f",
    "preempted": "#bcbd22",
    "running": "#9ecae1",
}
BEST_COLOUR = "#e6194b"
POINT_COLOUR = "#1f77b4"


@cache
def _glyphs() -> frozenset[int]:
    font = FT2Font(font_manager.findfont("DejaVu Sans"))
    return frozenset(font.get_charmap())


def plain(text: object, limit: int = 40) -> str:
    """Make W&B text safe to draw: no mathtext, no glyphs the font lacks, short enough."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    glyphs = _glyphs()
    # A missing glyph only warns, but warnings are errors under test and noise in logs.
    safe = "".join(c if ord(c) in glyphs or c == "\n" else "?" for c in value)
    return safe.replace("$", r"\$")


def png_size(data: bytes) -> tuple[int, int]:
    """Return a PNG's (width, height) from its IHDR chunk."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


# About the most title characters one line of a chart holds at TITLE_FONT.
TITLE_LINE = 48


def _figure(size_px: tuple[int, int] = SIZE_PX) -> Figure:
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


class CompactFormatter(Formatter):
    """Label ticks as 0.25, 1.2k, 40k or 1.5M, with just enough decimals to tell them apart."""

    def __init__(self) -> None:
        super().__init__()
        self._ticks: list[float] = []

    def set_locs(self, locs: Sequence[float]) -> None:
        """Remember the tick values being labelled together."""
        self._ticks = [float(v) for v in locs]

    def __call__(self, x: float, pos: int | None = None) -> str:
        """Format one tick value, knowing its neighbours."""
        locs = self._ticks or [x]
        top = max(abs(v) for v in locs)
        if 0 < top < 1e-3:
            return f"{x:.1e}"
        # Four digits read fine as they are; beyond that a suffix is shorter.
        size, suffix = next(((n, s) for n, s in _SCALES if top >= 10 * n), (1.0, ""))
        if x == 0:
            return "0"
        # Nice tick values have few decimals; show exactly as many as the longest one needs.
        decimals = max(_decimals(v / size) for v in locs)
        return f"{x / size:.{decimals}f}{suffix}"


def _decimals(value: float) -> int:
    for digits in range(7):
        if abs(round(value, digits) - value) <= 1e-9 * max(1.0, abs(value)):
            return digits
    return 6


def _style(ax: Axes) -> None:
    ax.tick_params(labelsize=FONT)
    ax.grid(True, alpha=0.35)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(CompactFormatter())
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def no_data_png(title: str, message: str = "no data") -> bytes:
    """Return a small chart that says there is nothing to draw."""
    fig = _figure(SMALL_PX)
    fig.suptitle(plain(title, 60), fontsize=TITLE_FONT)
    fig.text(
        0.5, 0.45, plain(message, 60), ha="center", va="center", fontsize=FONT + 4, color="#666666"
    )
    return _png(fig)


def _finite_points(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for step, value in points:
        try:
            x, y = float(step), float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x) and math.isfinite(y):
            out.append((x, y))
    out.sort(key=lambda p: p[0])
    return out


def _span(values: Sequence[float]) -> tuple[float, float]:
    return min(values), max(values)


def group_by_scale(ranges: Mapping[str, tuple[float, float]]) -> list[list[str]]:
    """Group metrics whose value ranges can share one y axis without flattening any of them."""
    groups: list[list[str]] = []
    for name in ranges:
        for group in groups:
            members = [*group, name]
            low = min(ranges[m][0] for m in members)
            high = max(ranges[m][1] for m in members)
            union = high - low
            if all(_height(ranges[m]) * _SHARE_RATIO >= union for m in members):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def _height(span: tuple[float, float]) -> float:
    lo, hi = span
    # A flat series still deserves a visible band around its level.
    return max(hi - lo, abs(hi) * 0.05, 1e-12)


def metric_curves_png(title: str, series: Mapping[str, Sequence[tuple[float, float]]]) -> bytes:
    """Draw metric curves over steps, sharing an axis only between metrics of similar scale."""
    clean = {name: pts for name, raw in series.items() if (pts := _finite_points(raw))}
    clean = dict(list(clean.items())[:MAX_SERIES])
    if not clean:
        return no_data_png(title)
    ranges = {name: _span([y for _, y in pts]) for name, pts in clean.items()}
    groups = group_by_scale(ranges)
    hidden = sum(len(g) for g in groups[MAX_PANELS:])
    groups = groups[:MAX_PANELS]
    fig = _figure()
    axes, bottom = _panel_grid(fig, len(groups))
    colour = dict(zip(clean, COLOURS, strict=False))
    for index, (ax, group) in enumerate(zip(axes, groups, strict=True)):
        for name in group:
            xs, ys = zip(*clean[name], strict=True)
            marker = "o" if len(xs) <= 30 else None
            ax.plot(
                xs,
                ys,
                color=colour[name],
                linewidth=2.2,
                marker=marker,
                markersize=5,
                label=plain(name, 30),
            )
        _style(ax)
        wide = len(groups) <= 2 or (index == len(groups) - 1 and len(groups) % 2)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6 if wide else 4, integer=True))
        ax.xaxis.set_major_formatter(CompactFormatter())
        if len(group) == 1:
            ax.set_title(plain(group[0], 40), fontsize=FONT + 1, loc="left")
        else:
            # Above the panel, where a title would be: never on top of the lines.
            ax.legend(
                fontsize=FONT - 1,
                frameon=False,
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                ncol=len(group),
                borderaxespad=0.1,
                handlelength=1.2,
                columnspacing=1.0,
            )
        if index in bottom:
            ax.set_xlabel("step", fontsize=FONT)
        else:
            ax.tick_params(labelbottom=False)
    heading = plain(title, 60)
    if hidden:
        heading += f"  (+{hidden} more not shown)"
    fig.suptitle(heading, fontsize=TITLE_FONT)
    return _png(fig)


def compare_curves_png(
    title: str, metric: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]]
) -> bytes:
    """Draw one metric's curve for each run on one axis, the runs named above the panel."""
    clean = [(label, pts) for label, raw in series if (pts := _finite_points(raw))]
    if not clean:
        return no_data_png(title)
    fig = _figure()
    ax = fig.add_subplot()
    for (label, pts), colour in zip(clean, COLOURS, strict=False):
        xs, ys = zip(*pts, strict=True)
        ax.plot(
            xs,
            ys,
            color=colour,
            linewidth=2.2,
            marker="o" if len(xs) <= 30 else None,
            markersize=5,
            label=plain(label, 48),
        )
        # The final value is what the caption compares: mark it.
        ax.plot([xs[-1]], [ys[-1]], "o", color=colour, markersize=9, markeredgecolor="white")
    _style(ax)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.xaxis.set_major_formatter(CompactFormatter())
    ax.set_xlabel("step", fontsize=FONT)
    ax.set_ylabel(plain(metric, 40), fontsize=FONT)
    # Above the panel, one run per row: never on top of the lines, long names fit.
    ax.legend(
        fontsize=FONT - 1,
        frameon=False,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=1,
        borderaxespad=0.2,
        handlelength=1.6,
    )
    fig.suptitle(plain(title, 60), fontsize=TITLE_FONT)
    return _png(fig)


def _panel_grid(fig: Figure, n: int) -> tuple[list[Axes], set[int]]:
    """Lay out `n` panels sharing the step axis with no empty cell: one column up to two
    panels, else two columns with an odd last panel spanning both. Returns the axes and
    the indices of those in the bottom row (they carry the step labels)."""
    cols = 1 if n <= 2 else 2
    rows = math.ceil(n / cols)
    grid = fig.add_gridspec(rows, cols)
    axes: list[Axes] = []
    for i in range(n):
        row, col = divmod(i, cols)
        cell = grid[row, :] if (i == n - 1 and n % cols) else grid[row, col]
        axes.append(fig.add_subplot(cell, sharex=axes[0] if axes else None))
    bottom = {i for i in range(n) if i // cols == rows - 1}
    return axes, bottom


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pick_params(points: Sequence[tuple[Mapping[str, Any], float]]) -> list[str]:
    values: dict[str, set[str]] = {}
    for params, _ in points:
        for key, value in params.items():
            values.setdefault(str(key), set()).add(repr(value))
    varying = sorted(k for k, v in values.items() if len(v) > 1)
    constant = sorted(k for k, v in values.items() if len(v) <= 1)
    # A parameter that never changed explains nothing; show it only when nothing varied.
    return (varying or constant)[:MAX_PARAMS]


def _grid(n: int) -> tuple[int, int]:
    if n <= 3:
        return 1, n
    return 2, math.ceil(n / 2)


def _jitter(index: int) -> float:
    # Deterministic spread so distinct results of one category do not hide each other.
    return ((index * 0.6180339887) % 1.0 - 0.5) * 0.3


def pile_points(
    xs: Sequence[float], ys: Sequence[float], *, spread: bool
) -> tuple[list[tuple[float, float, int]], list[int]]:
    """Return the spots runs land on as (x, y, runs), and each run's spot index.

    Runs with the same parameter value and score are one spot, counted, whether the value
    is a number or a category. With `spread` (categories), each further spot of a category
    is nudged sideways so that close scores stay apart; equal ones always share a spot.
    """
    index: dict[tuple[float, float], int] = {}
    spots: list[tuple[float, float, int]] = []
    per_x: dict[float, int] = {}
    where = []
    for x, y in zip(xs, ys, strict=True):
        at = index.get((x, y))
        if at is None:
            k = per_x.get(x, 0)
            per_x[x] = k + 1
            at = index[(x, y)] = len(spots)
            spots.append((x + (_jitter(k) if spread and k else 0.0), y, 0))
        sx, sy, n = spots[at]
        spots[at] = (sx, sy, n + 1)
        where.append(at)
    return spots, where


def x_locator(values: Sequence[Any]) -> MaxNLocator:
    """Return the ticks of a numeric parameter: whole numbers only for a whole-number one."""
    # A seed or a layer count of 0 and 1 ticked at 0.4 and 0.8 reads as fractional values.
    return MaxNLocator(nbins=3, integer=all(isinstance(v, int) for v in values))


def _scatter_panel(
    ax: Axes,
    name: str,
    xs_raw: list[Any],
    ys: list[float],
    best: int | None,
) -> None:
    numeric = all(_is_number(x) for x in xs_raw)
    if numeric:
        xs = [float(x) for x in xs_raw]
        positive = [x for x in xs if x > 0]
        if len(positive) == len(xs) and max(xs) / min(xs) >= _LOG_SPAN:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(x_locator(xs_raw))
            ax.xaxis.set_major_formatter(CompactFormatter())
    else:
        labels = sorted({plain(x, 10) for x in xs_raw})
        position = {label: i for i, label in enumerate(labels)}
        xs = [float(position[plain(x, 10)]) for x in xs_raw]
        ax.set_xticks(range(len(labels)), labels=labels)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        if len(labels) > 3:
            ax.tick_params(axis="x", labelrotation=35)
    # Runs with the same parameter value and score land on one spot: draw the spot bigger
    # and say how many it holds, so a pile of ten does not look like one run.
    spots, where = pile_points(xs, ys, spread=not numeric)
    if best is not None:
        # The best run is the star drawn on its spot; the dot counts the others there.
        bx, by, bn = spots[where[best]]
        spots[where[best]] = (bx, by, bn - 1)
    piles = [spot for spot in spots if spot[2] > 0]
    ax.scatter(
        [x for x, _, _ in piles],
        [y for _, y, _ in piles],
        s=[60 + 45 * (n - 1) for _, _, n in piles],
        color=POINT_COLOUR,
        alpha=0.65,
        edgecolors="white",
        linewidths=0.8,
    )
    for x, y, n in piles:
        if n > 1:
            ax.annotate(
                f"×{n}",
                (x, y),
                xytext=(7, 5),
                textcoords="offset points",
                fontsize=FONT - 3,
                color="#333333",
            )
    if best is not None:
        ax.scatter(
            [spots[where[best]][0]],
            [ys[best]],
            s=420,
            marker="*",
            color=BEST_COLOUR,
            edgecolors="black",
            linewidths=0.8,
            zorder=3,
        )
    _style(ax)
    ax.margins(x=0.08, y=0.12)
    ax.set_xlabel(plain(name, 18), fontsize=FONT)


def sweep_scatter_png(
    title: str,
    metric: str,
    points: Sequence[tuple[Mapping[str, Any], float]],
    best_index: int | None,
) -> bytes:
    """Draw the metric against each hyperparameter, one panel per parameter, best starred."""
    kept = [
        (i, params, float(value)) for i, (params, value) in enumerate(points) if _is_number(value)
    ]
    params = _pick_params([(p, v) for _, p, v in kept])
    if not kept or not params:
        return no_data_png(title)
    best = next((k for k, (i, _, _) in enumerate(kept) if i == best_index), None)
    rows, cols = _grid(len(params))
    fig = _figure()
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for n, (ax, name) in enumerate(zip(axes, params, strict=False)):
        have = [k for k, (_, p, _) in enumerate(kept) if name in p]
        local_best = have.index(best) if best in have else None
        _scatter_panel(
            ax, name, [kept[k][1][name] for k in have], [kept[k][2] for k in have], local_best
        )
        if n % cols == 0:
            ax.set_ylabel(plain(metric, 24), fontsize=FONT)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    heading = plain(title, 50)
    if best is not None:
        # A long title and the best on one line run off both edges: the best gets its own.
        star = f"★ best {fmt_number(kept[best][2])}"
        heading += f"\n{star}" if len(heading) + len(star) > TITLE_LINE else f"  {star}"
    fig.suptitle(heading, fontsize=TITLE_FONT)
    return _png(fig)


def digest_png(digest: Digest) -> bytes:
    """Draw a digest: runs ended per project as stacked bars, each project's best beside it."""
    return digest_data_png(digest_chart_data(digest))


def digest_data_png(data: DigestChartData) -> bytes:
    """Draw the digest chart from its extracted numbers."""
    rows = list(data.rows[:MAX_PROJECTS])
    if not rows:
        return no_data_png(data.title, "no projects")
    if data.total == 0:
        return _digest_text_png(data)
    fig = _figure()
    ax = fig.subplots()
    names = [plain(r.project, 22) for r in rows][::-1]
    rows = rows[::-1]
    totals = [sum(n for _, n in r.counts) for r in rows]
    left = [0.0] * len(rows)
    segments: list[tuple[str, int, float, float]] = []
    states = [s for s in STATE_COLOURS if any(dict(r.counts).get(s, 0) for r in rows)]
    for state in states:
        widths = [float(dict(r.counts).get(state, 0)) for r in rows]
        ax.barh(names, widths, left=left, color=STATE_COLOURS[state], label=state, height=0.6)
        segments += [(state, y, x0, w) for y, (x0, w) in enumerate(zip(left, widths, strict=True))]
        left = [a + b for a, b in zip(left, widths, strict=True)]
    pad = (max(totals) or 1) * 0.02
    labels = [
        ax.text(
            total + pad,
            y,
            _best_label(row) if total else "quiet",
            va="center",
            fontsize=FONT - 1,
            color="black" if total else "#666666",
        )
        for y, (row, total) in enumerate(zip(rows, totals, strict=True))
    ]
    # A lone project gets a bar, not a wall: keep room for at least three rows.
    spare = max(0, 3 - len(rows)) / 2
    ax.set_ylim(-0.6 - spare, len(rows) - 0.4 + spare)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.tick_params(labelsize=FONT)
    ax.grid(True, axis="x", alpha=0.35)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("runs", fontsize=FONT)
    fig.legend(fontsize=FONT - 2, frameon=False, loc="outside lower center", ncols=len(states))
    fig.suptitle(plain(data.title, 60), fontsize=TITLE_FONT)
    if len(data.rows) > MAX_PROJECTS:
        fig.suptitle(
            f"{plain(data.title, 50)}  (+{len(data.rows) - MAX_PROJECTS} more projects)",
            fontsize=TITLE_FONT,
        )
    xmax = _fit_labels(fig, ax, labels, totals, pad)
    for state, y, x0, w in segments:
        # Only segments wide enough to hold their number get one.
        if w and w >= xmax * 0.05:
            ax.text(
                x0 + w / 2,
                y,
                str(int(w)),
                ha="center",
                va="center",
                fontsize=FONT - 1,
                color="black" if state == "running" else "white",
                fontweight="bold",
            )
    return _png(fig)


def _fit_labels(fig: Figure, ax: Axes, labels: list[Text], totals: list[int], pad: float) -> float:
    # Widen the x range until every label beside its bar ends inside the axes; the labels stay
    # out of the layout, which would otherwise shrink the axes to make room for them.
    for label in labels:
        label.set_in_layout(False)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    axis_px = max(ax.bbox.width, 1.0)
    xmax = float(max(totals) or 1) * 1.05
    for label, total in zip(labels, totals, strict=True):
        share = min(label.get_window_extent(renderer).width / axis_px, 0.8)
        xmax = max(xmax, (total + pad) / (1.0 - share) * 1.03)
    ax.set_xlim(0, xmax)
    return xmax


def _best_label(row: DigestChartRow) -> str:
    if row.best is None or row.metric is None:
        return ""
    label = f"best {plain(row.metric, 14)} {fmt_number(row.best)}"
    if row.change:
        label += f" ({fmt_change(row.change, row.best)})"
    return label


def _digest_text_png(data: DigestChartData) -> bytes:
    shown = min(len(data.rows), MAX_PROJECTS)
    fig = _figure((SIZE_PX[0], 220 + 60 * shown))
    fig.suptitle(plain(data.title, 60), fontsize=TITLE_FONT)
    lines = ["no runs ended in this period"]
    for row in data.rows[:MAX_PROJECTS]:
        running = dict(row.counts).get("running", 0)
        parts = [plain(row.project, 24) + ":"]
        best = _best_label(row)
        parts.append(best or "no best yet")
        if running:
            parts.append(f"· {running} running")
        lines.append(" ".join(parts))
    top = 1 - 80 / (220 + 60 * shown)
    fig.text(0.06, top, "\n".join(lines), ha="left", va="top", fontsize=FONT + 1, linespacing=1.6)
    return _png(fig)
