"""A sweep's end, as one message worth reading: top runs, failures, time, what mattered."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.format import STATE_MARKERS, esc, fmt_duration, truncate
from bot.domain.importance import Importance
from bot.domain.render import KEY_LIMIT, NAME_LIMIT, Button, Buttons, fmt_value, run_link
from bot.domain.sweeps import PHASE_WORDS, SweepPhase
from wandb_client.models import RunSnapshot

TOP = 5
FAILED_STATES = frozenset({"failed", "crashed"})
# The exception line a traceback ends with: `RuntimeError: simulated failure at step 1`.
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit))\b:?(.*)$")


@dataclass(frozen=True, slots=True)
class SweepEnd:
    """What the end message is made of."""

    path: str
    url: str
    name: str
    project: str
    phase: SweepPhase
    note: str
    count: int
    runs: tuple[RunSnapshot, ...]
    metric: str | None
    goal: str | None
    params: tuple[str, ...]
    elapsed_s: float
    importance: tuple[Importance, ...] = ()


def _score(run: RunSnapshot, metric: str) -> float | None:
    value = run.summary.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def top_runs(
    runs: Sequence[RunSnapshot], metric: str | None, goal: str | None, k: int = TOP
) -> list[RunSnapshot]:
    """Return the `k` best finished runs by `metric`, best first (ties: the earlier run)."""
    if not metric:
        return []
    scored = [(r, _score(r, metric)) for r in runs if r.state == "finished"]
    ranked = [(r, s) for r, s in scored if s is not None]
    sign = -1.0 if goal == "maximize" else 1.0
    ranked.sort(key=lambda pair: (sign * (pair[1] or 0.0), pair[0].created_at, pair[0].id))
    return [r for r, _ in ranked[:k]]


def param_value(run: RunSnapshot, name: str) -> Any:
    """Return a run's value of a parameter (W&B may store `{"value": v}`)."""
    value = run.config.get(name)
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


def param_text(value: Any) -> str:
    """Return a parameter value as people write it: `lr=0.01`, `depth=4`, `opt=adam`."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return truncate(str(value), KEY_LIMIT)


def differing(runs: Sequence[RunSnapshot], params: Sequence[str]) -> list[str]:
    """Return the parameters whose values differ among `runs` (all of them for one run)."""
    if len(runs) < 2:
        return list(params)
    return [p for p in params if len({repr(param_value(r, p)) for r in runs}) > 1]


def failure_reasons(log_lines: Sequence[str]) -> Counter[str]:
    """Count the exception lines the agents' logs show (one per failed run, as it printed)."""
    found: Counter[str] = Counter()
    for line in log_lines:
        if _ERROR_LINE.match(line):
            found[truncate(line.strip(), 120)] += 1
    return found


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)} %" if whole else "0 %"


def render_sweep_end(end: SweepEnd, reasons: Counter[str]) -> tuple[str, Buttons]:
    """Render the end of a sweep: its top runs, failures and their cause, time, buttons."""
    sweep = f'<a href="{esc(end.url)}">{esc(truncate(end.path.rsplit("/", 1)[-1], KEY_LIMIT))}</a>'
    ran = sum(1 for r in end.runs if r.state in ("finished", *FAILED_STATES, "killed"))
    head = (
        f"{STATE_MARKERS['sweep']} sweep {sweep} {PHASE_WORDS[end.phase]} · "
        f"{esc(truncate(end.name, NAME_LIMIT))} → {esc(truncate(end.project, NAME_LIMIT))}"
    )
    lines = [head, f"{ran}/{end.count} runs in {fmt_duration(end.elapsed_s)}"]
    if end.note:
        lines.append(esc(end.note))
    best = top_runs(end.runs, end.metric, end.goal)
    if best and end.metric:
        shown = differing(best, end.params)[:3]
        goal = "highest" if end.goal == "maximize" else "lowest"
        lines.append(f"top {len(best)} by {esc(truncate(end.metric, KEY_LIMIT))} ({goal} first):")
        for place, run in enumerate(best, 1):
            params = " · ".join(
                f"{esc(truncate(p, KEY_LIMIT))}={esc(param_text(param_value(run, p)))}"
                for p in shown
            )
            value = fmt_value(_score(run, end.metric))
            lines.append(f"{place}. {value} {run_link(run)}" + (f" · {params}" if params else ""))
    failed = [r for r in end.runs if r.state in FAILED_STATES]
    if failed:
        line = f"failed: {len(failed)} of {len(end.runs)} ({_percent(len(failed), len(end.runs))})"
        if reasons:
            text, times = reasons.most_common(1)[0]
            more = f" ×{times}" if times > 1 else ""
            line += f" · <code>{esc(text)}</code>{more}"
        lines.append(line)
    if end.importance:
        lines.append(
            "what mattered: "
            + ", ".join(
                f"{esc(truncate(i.name, KEY_LIMIT))} {round(100 * i.importance)} %"
                for i in end.importance[:3]
            )
        )
    return "\n".join(lines), end_buttons(end.path, has_best=bool(best))


def end_buttons(path: str, *, has_best: bool) -> Buttons:
    """Return the end message's buttons: act on the best run, or look at the sweep."""
    plot = Button("Plot", "sweep_plot", path)
    if not has_best:
        return ((plot,),)
    return (
        (
            Button("Rerun best ×3 seeds", "sweep_rerun", path),
            Button("Narrow around best", "sweep_narrow", path),
        ),
        (plot,),
    )


DERIVED_WORDS = {
    "rerun": ("rerun the best run over 3 seeds", "a grid sweep"),
    "narrow": ("narrow around the best run", "a bayes sweep"),
}
CONFIG_LIMIT = 3000


def render_derive_prompt(
    path: str, kind: str, config_yaml: str, ttl_text: str
) -> tuple[str, Buttons]:
    """Render the Yes/No that shows the generated sweep config before starting it."""
    what, method = DERIVED_WORDS[kind]
    sweep_id = path.rsplit("/", 1)[-1]
    text = (
        f"{STATE_MARKERS['sweep']} {what} of sweep {esc(truncate(sweep_id, KEY_LIMIT))} as "
        f"{method}?\n<pre>{esc(truncate(config_yaml, CONFIG_LIMIT))}</pre>\n"
        f"This button expires in {ttl_text}."
    )
    yes = Button("Yes, start it", f"sweep_{kind}_yes", path)
    return text, ((yes, Button("No", "sweep_derive_no", path)),)


def render_rerun_prompt(
    run: RunSnapshot,
    *,
    entry: str,
    seeds: int,
    count: int,
    agents: int,
    config_yaml: str,
    ttl_text: str,
    target: str,
) -> tuple[str, Buttons]:
    """Render /rerun's Yes/No: the run, the seeds, the lab sweep that runs it, the config."""
    runs = f"{count} of {seeds} runs" if count < seeds else f"{count} runs"
    plural = "s" if agents != 1 else ""
    text = (
        f"{STATE_MARKERS['sweep']} rerun {run_link(run)} over {seeds} seeds as a grid sweep?\n"
        f"{runs} · lab sweep {esc(truncate(entry, KEY_LIMIT))} · {agents} agent{plural}\n"
        f"<pre>{esc(truncate(config_yaml, CONFIG_LIMIT))}</pre>\n"
        f"This button expires in {ttl_text}."
    )
    yes = Button("Yes, start it", "rerun_yes", target)
    return text, ((yes, Button("No", "sweep_derive_no", target)),)
