"""The best run of a project or sweep: picking it, and the `/best` and Config messages."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.format import (
    STATE_MARKERS,
    TELEGRAM_TEXT_LIMIT,
    esc,
    fmt_delta,
    fmt_number,
    link,
    truncate,
    utf16_len,
)
from bot.domain.origin import render_origin
from bot.domain.params import flatten_config, shown_params
from bot.domain.render import Button, Buttons
from config.lab import ProjectConfig
from wandb_client.models import Goal, RunSnapshot

HYPERPARAMS_LIMIT = 160
KEY_METRICS_LIMIT = 4
_CONFIG_LINE_LIMIT = 600


def normalize_goal(goal: str | None) -> str:
    """Return "maximize" or "minimize" for any spelling of a goal (max, min, minimize...)."""
    return "minimize" if goal is not None and goal.lower().startswith("min") else "maximize"


# Metric names whose smaller values are better, matched as whole words of the name
# (`val/loss`, `train_mse`, `eval.perplexity`); anything else is maximized.
_MINIMIZE_WORDS = frozenset(
    {
        "loss",
        "error",
        "err",
        "errors",
        "mse",
        "rmse",
        "mae",
        "mape",
        "nll",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "ter",
        "regret",
        "latency",
        "distance",
        "fid",
        "bpd",
        "bpc",
        "cost",
    }
)


@dataclass(frozen=True, slots=True)
class GoalChoice:
    """Which way a metric is better, and who said so (shown beside the chart)."""

    goal: Goal
    source: str

    @property
    def short(self) -> str:
        """Return "max" or "min"."""
        return "min" if self.goal == "minimize" else "max"

    @property
    def phrase(self) -> str:
        """Say the goal and its source in words, e.g. "lower is better, by its name"."""
        better = "lower" if self.goal == "minimize" else "higher"
        return f"{better} is better, {self.source}"


def goal_by_name(metric: str) -> Goal:
    """Guess a metric's goal from its name: losses, errors, perplexity … are minimized."""
    words = {w for w in re.split(r"[^a-z0-9]+", metric.lower()) if w}
    minimize = bool(words & _MINIMIZE_WORDS) or metric.lower().endswith("loss")
    return "minimize" if minimize else "maximize"


def choose_goal(
    metric: str,
    *,
    asked: Goal | None = None,
    lab: ProjectConfig | None = None,
    sweep_metric: str | None = None,
    sweep_goal: Goal | None = None,
) -> GoalChoice:
    """Decide a metric's goal: as asked, else the lab file's, else the sweep's, else its name.

    The lab file and the sweep speak only for the metric they name: a sweep that maximizes
    accuracy says nothing about its loss.
    """
    if asked is not None:
        return GoalChoice(asked, "as asked")
    if lab is not None and lab.metric == metric and "goal" in lab.model_fields_set:
        return GoalChoice(lab.goal, "from the lab file")
    if sweep_metric == metric and sweep_goal is not None:
        return GoalChoice(sweep_goal, "from the sweep")
    return GoalChoice(goal_by_name(metric), "by its name")


def metric_value(summary: Mapping[str, Any], metric: str) -> float | None:
    """Return a run's finite value of `metric`, looking through nested dicts for dotted keys."""
    value: Any = summary.get(metric)
    if value is None and "." in metric:
        value = summary
        for part in metric.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def is_better(candidate: float, incumbent: float, goal: str) -> bool:
    """Tell whether `candidate` beats `incumbent` under `goal`."""
    if normalize_goal(goal) == "minimize":
        return candidate < incumbent
    return candidate > incumbent


def rank_runs(
    runs: Iterable[RunSnapshot], metric: str, goal: str
) -> list[tuple[RunSnapshot, float]]:
    """Return the runs with a finite `metric`, best first; ties keep their given order."""
    scored = [(run, v) for run in runs if (v := metric_value(run.summary, metric)) is not None]
    reverse = normalize_goal(goal) == "maximize"
    # sorted() is stable, and with reverse=True it still keeps equal items in input order.
    return sorted(scored, key=lambda pair: pair[1], reverse=reverse)


@dataclass(frozen=True, slots=True)
class BestAnswer:
    """The best run by one metric, and how far behind the runner-up is."""

    metric: str
    goal: str
    run: RunSnapshot
    value: float
    runner_up: RunSnapshot | None = None
    runner_up_value: float | None = None

    @property
    def delta(self) -> float | None:
        """Return the runner-up's value minus the best one's, if there is a runner-up."""
        if self.runner_up_value is None:
            return None
        return self.runner_up_value - self.value


def best_answer(runs: Sequence[RunSnapshot], metric: str, goal: str) -> BestAnswer | None:
    """Pick the best run and its runner-up, ignoring runs without a finite `metric`."""
    ranked = rank_runs(runs, metric, goal)
    if not ranked:
        return None
    (best, value), *rest = ranked
    runner_up, runner_up_value = rest[0] if rest else (None, None)
    return BestAnswer(metric, normalize_goal(goal), best, value, runner_up, runner_up_value)


def run_url(run: RunSnapshot, ui_url: str) -> str:
    """Return the run's page, built from the W&B UI address when the run has no absolute URL."""
    if run.url.startswith(("https://", "http://")):
        return run.url
    return f"{ui_url.rstrip('/')}/{run.entity}/{run.project}/runs/{run.id}"


def format_value(value: Any) -> str:
    """Format a config value the way it was written: text as is, the rest as JSON or repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def fmt_change(change: float, reference: float) -> str:
    """Format a signed difference with the decimals `reference` shows: +0.0056, not +0.005600."""
    shown = fmt_number(reference)
    if not math.isfinite(change) or "e" in shown or "." not in shown:
        return fmt_delta(change)
    decimals = len(shown.split(".")[1])
    if change == 0:
        return fmt_delta(change)
    if round(abs(change), decimals) == 0:
        # A gap too small for the value's decimals gets two significant digits of its own.
        decimals = min(12, 1 - math.floor(math.log10(abs(change))))
    return ("+" if change >= 0 else "−") + f"{abs(change):.{decimals}f}"


def cap_items(items: Sequence[str], limit: int, sep: str = " · ") -> str:
    """Join whole items while the plain text fits `limit`, ending with "…" when cut."""
    out = ""
    for item in items:
        candidate = f"{out}{sep}{item}" if out else item
        if len(candidate) > limit:
            if not out:
                return item[: max(1, limit - 1)] + "…"
            return f"{out}{sep}…"
        out = candidate
    return out


def hyperparams_line(
    config: Mapping[str, Any],
    limit: int = HYPERPARAMS_LIMIT,
    first: Sequence[str] = (),
    usual: Mapping[str, Any] | None = None,
) -> str:
    """Return `k=v · k=v` for the parameters that vary, `first` leading, escaped, capped."""
    items = [f"{k}={format_value(v)}" for k, v in shown_params(config, first, usual)]
    return esc(cap_items(items, limit))


def _key_metrics(answer: BestAnswer, key_metrics: Sequence[str]) -> list[tuple[str, float | int]]:
    summary = answer.run.summary
    names = list(key_metrics) or sorted(
        str(k) for k in summary if not str(k).startswith("_") and str(k) != answer.metric
    )
    out: list[tuple[str, float | int]] = []
    for name in names:
        if name == answer.metric:
            continue
        value = metric_value(summary, name)
        if value is not None:
            raw = summary.get(name)
            # Counts (epochs, trees) read as integers, not 5.000.
            out.append((name, raw if isinstance(raw, int) and not isinstance(raw, bool) else value))
        if len(out) == KEY_METRICS_LIMIT:
            break
    return out


def render_best(
    answer: BestAnswer,
    *,
    scope: str,
    ui_url: str,
    key_metrics: Sequence[str] = (),
    first: Sequence[str] = (),
    usual: Mapping[str, Any] | None = None,
) -> tuple[str, Buttons]:
    """Render the `/best` answer and its Config and Plot buttons."""
    run = answer.run
    goal = "min" if answer.goal == "minimize" else "max"
    lines = [
        f"{STATE_MARKERS['best']} <b>best in {esc(truncate(scope))}</b> "
        f"by {esc(truncate(answer.metric))} ({goal})"
    ]
    name = link(run_url(run, ui_url), truncate(run.display_name))
    second = f"{name} · <b>{fmt_number(answer.value)}</b>"
    if answer.runner_up_value is not None and answer.delta is not None:
        gap = "tie" if answer.delta == 0 else fmt_change(answer.delta, answer.value)
        second += f" · runner-up {fmt_number(answer.runner_up_value)} ({gap})"
    else:
        second += " · only run so far"
    lines.append(second)
    if run.sweep:
        lines.append(f"sweep {esc(truncate(run.sweep))} · {esc(truncate(run.state))}")
    params = hyperparams_line(run.config, first=first, usual=usual)
    if params:
        lines.append(params)
    others = _key_metrics(answer, key_metrics)
    if others:
        lines.append(esc(cap_items([f"{k} {fmt_number(v)}" for k, v in others], 160)))
    origin = render_origin(run)
    if origin:
        lines.append(origin)
    buttons: Buttons = ((Button("Config", "config", run.path), Button("Plot", "plot", run.path)),)
    return "\n".join(lines), buttons


def logged_metrics(runs: Sequence[RunSnapshot], limit: int = 12) -> tuple[str, ...]:
    """Return the numeric metrics the runs' summaries hold (W&B's own `_` keys left out)."""
    names = {
        key
        for run in runs
        for key, value in run.summary.items()
        if not key.startswith("_")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    }
    return tuple(sorted(names)[:limit])


def render_no_best(scope: str, metric: str, logged: Sequence[str] = ()) -> str:
    """Say that no run in `scope` has logged `metric` yet, and what its runs do log."""
    text = (
        f"{STATE_MARKERS['best']} no run in <b>{esc(truncate(scope))}</b> has logged "
        f"{esc(truncate(metric))} yet"
    )
    if not logged:
        return text
    # Most often the metric was mistyped: name the likeliest one, then what there is.
    close = difflib.get_close_matches(metric, logged, 1)
    hint = f". Did you mean {esc(close[0])}?" if close else "."
    return f"{text}{hint} Its runs log: {esc(', '.join(logged))}."


# Config keys that look like these hold credentials: Config shows that they are set, not what.
SECRET_WORDS = ("key", "token", "password", "secret")
HIDDEN = "•••• (hidden)"


def looks_secret(key: str) -> bool:
    """Tell whether a config key looks like it holds a credential (`*key*`, `*token*`, …)."""
    return any(word in key.lower() for word in SECRET_WORDS)


def _config_lines(config: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, value in flatten_config(config).items():
        shown = HIDDEN if looks_secret(key) else format_value(value)
        raw = f"{key} = {shown}"
        # Cut long values into pieces so no escaped line can outgrow a message.
        for start in range(0, max(len(raw), 1), _CONFIG_LINE_LIMIT):
            lines.append(esc(raw[start : start + _CONFIG_LINE_LIMIT]))
    return lines


def render_config(run: RunSnapshot, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Render a run's full flattened config as messages of one `<pre>` block each."""
    header = f"⚙️ config of <b>{esc(truncate(run.display_name))}</b> · {esc(truncate(run.project))}"
    lines = _config_lines(run.config)
    if not lines:
        return [f"{header}\nno config logged"]
    wrap = len("<pre></pre>")
    messages: list[str] = []
    body: list[str] = []
    prefix = f"{header}\n"
    for line in lines:
        candidate = "\n".join([*body, line])
        if body and utf16_len(prefix) + wrap + utf16_len(candidate) > limit:
            messages.append(prefix + "<pre>" + "\n".join(body) + "</pre>")
            body, prefix = [], ""
        body.append(line)
    messages.append(prefix + "<pre>" + "\n".join(body) + "</pre>")
    return messages
