"""The parameter-importance chart of a sweep's end message (drawn off the event loop)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.charts import DPI, FONT, TITLE_FONT, plain
from bot.domain.importance import Importance

MAX_BARS = 8
IMPORTANCE_COLOUR = "#1f77b4"
POSITIVE, NEGATIVE = "#2e9e4f", "#d62728"


def importance_png(title: str, metric: str, rows: Sequence[Importance]) -> bytes:
    """Draw each parameter's importance and its correlation with the metric, side by side."""
    shown = list(rows[:MAX_BARS])[::-1]  # the most important on top
    height = 220 + 70 * max(1, len(shown))
    fig = Figure(figsize=(1200 / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    names = [plain(r.name, 24) for r in shown]
    ys = range(len(shown))
    left.barh(ys, [r.importance for r in shown], color=IMPORTANCE_COLOUR)
    left.set_yticks(list(ys), names, fontsize=FONT)
    left.set_xlim(0, 1)
    left.set_title("importance (random forest)", fontsize=FONT)
    for y, row in zip(ys, shown, strict=True):
        left.text(
            row.importance + 0.02,
            y,
            f"{round(100 * row.importance)} %",
            va="center",
            fontsize=FONT - 2,
        )
    corr = [r.correlation or 0.0 for r in shown]
    right.barh(ys, corr, color=[POSITIVE if c >= 0 else NEGATIVE for c in corr])
    right.set_xlim(-1.35, 1.35)  # room for the value beside a bar near ±1
    right.set_xticks([-1, -0.5, 0, 0.5, 1])
    right.axvline(0, color="#444444", linewidth=0.8)
    right.set_title(f"correlation with {plain(metric, 24)}", fontsize=FONT)
    for y, row in zip(ys, shown, strict=True):
        if row.correlation is None:
            right.text(
                0,
                y,
                "n/a (categorical)",
                va="center",
                ha="center",
                fontsize=FONT - 3,
                color="#666666",
                bbox={"facecolor": "white", "edgecolor": "none"},
            )
        else:
            c = row.correlation
            right.text(
                c + (0.04 if c >= 0 else -0.04),
                y,
                f"{c:+.2f}",
                va="center",
                ha="left" if c >= 0 else "right",
                fontsize=FONT - 3,
            )
    for ax in (left, right):
        ax.tick_params(labelsize=FONT - 2)
        ax.grid(True, axis="x", alpha=0.35)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(plain(title, 60), fontsize=TITLE_FONT)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()
