"""One sweep's agents, one by one: what `/sweep agents` lists, stopping one, scaling to K."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.control import sweep_link
from bot.domain.format import STATE_MARKERS, esc, fmt_duration, truncate
from bot.domain.render import KEY_LIMIT, Button, Buttons

# What `wandb agent` logs (wandb_agent.py): the runs it has now, about once a second, and
# (some versions, on the console) the run it hands to its program.
_RUNNING_RUNS = re.compile(r"Running runs: \[(.*)\]")
_STARTING_RUN = re.compile(r"Agent Starting Run: ([A-Za-z0-9_\-]+)")
_RUN_ID = re.compile(r"'([A-Za-z0-9_\-]+)'")


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One live agent of a sweep, as `/sweep agents` shows it."""

    record_id: int
    index: int
    #: The host, or the Slurm task (`slurm 4711_0`).
    where: str
    gpus: str
    pid: int | None
    up_s: float
    #: Its launcher's word when that is not plain running, e.g. `pending (Resources)`.
    state: str = ""
    run_id: str | None = None
    run_name: str | None = None
    #: How long the run it is on has been going; None between runs.
    run_for_s: float | None = None


def current_run(log_lines: Sequence[str]) -> str | None:
    """Return the id of the run an agent's log last says it runs; None between runs."""
    for line in reversed(log_lines):
        running = _RUNNING_RUNS.search(line)
        if running:
            ids = _RUN_ID.findall(running.group(1))
            return ids[-1] if ids else None
        starting = _STARTING_RUN.search(line)
        if starting:
            return starting.group(1)
    return None


def gpus_for_new_agents(pool: Sequence[int], in_use: Sequence[int]) -> tuple[int, ...]:
    """Order a sweep's GPUs for agents added to it: free ones first, then the busiest last.

    The launcher gives the i-th new agent the i-th GPU of this list (round robin), as
    `/sweep start gpus=` does; a GPU freed by a stopped agent is the first one taken again.
    """
    busy = {g: sum(1 for u in in_use if u == g) for g in pool}
    return tuple(sorted(dict.fromkeys(pool), key=lambda g: busy[g]))


def _agent_text(line: AgentLine, ui_url: str, path: str) -> str:
    bits = [f"<b>agent {line.index}</b> · {esc(line.where)}"]
    if line.pid:
        bits.append(f"PID {line.pid}")
    bits.append(f"GPU {esc(line.gpus)}" if line.gpus else "no GPU set")
    bits.append(f"up {fmt_duration(line.up_s)}")
    if line.state:
        bits.append(esc(line.state))
    if line.run_id is None or line.run_for_s is None:
        bits.append("between runs")
    else:
        entity, project, _ = path.split("/", 2)
        name = truncate(line.run_name or line.run_id, KEY_LIMIT)
        url = f"{ui_url.rstrip('/')}/{entity}/{project}/runs/{line.run_id}"
        bits.append(f'on <a href="{esc(url)}">{esc(name)}</a> for {fmt_duration(line.run_for_s)}')
    return " · ".join(bits)


def render_agent_list(
    path: str, lines: Sequence[AgentLine], *, ui_url: str, admin: bool
) -> tuple[str, Buttons]:
    """Render `/sweep agents`: one line per live agent, and for admins one Stop button each."""
    sweep = sweep_link(path, ui_url)
    if not lines:
        return f"🧹 sweep {sweep}: no agent runs now.", ()
    head = f"🧹 sweep {sweep} · {len(lines)} agent{'s' if len(lines) != 1 else ''}"
    text = "\n".join([head, *(_agent_text(line, ui_url, path) for line in lines)])
    if not admin:
        return text, ()
    if len(lines) == 1:
        # The last agent is not stopped alone: that is what Pause and Stop are for.
        return (
            f"{text}\nthe last agent: /sweep pause holds the runs, /sweep stop ends the sweep",
            (),
        )
    buttons = tuple(
        (Button(f"Stop agent {line.index}", "agent_stop", str(line.record_id)),) for line in lines
    )
    return text, buttons


def render_agent_stop_prompt(
    path: str, line: AgentLine, *, ui_url: str, ttl_s: float
) -> tuple[str, Buttons]:
    """Render the Yes/No before stopping one agent: the sweep and its other agents go on."""
    run = f" and its run {esc(line.run_name or line.run_id)}" if line.run_id else ""
    gpu = f", freeing GPU {esc(line.gpus)}" if line.gpus else ""
    text = (
        f"{STATE_MARKERS['killed']} stop agent {line.index} of sweep {sweep_link(path, ui_url)}"
        f"{run}{gpu}? The sweep and its other agents go on.\n"
        f"This button expires in {fmt_duration(ttl_s)}."
    )
    target = str(line.record_id)
    yes = Button(f"Yes, stop agent {line.index}", "agent_stop_yes", target)
    return text, ((yes, Button("No", "agent_stop_no", target)),)


def render_agent_stopped(path: str, index: int, *, left: int, by: str, ui_url: str) -> str:
    """Render the answer once one agent was stopped."""
    others = f"{left} agent{'s' if left != 1 else ''} go{'es' if left == 1 else ''} on"
    return (
        f"🛑 agent {index} of sweep {sweep_link(path, ui_url)} stopped by {esc(by)} · {others};"
        " the sweep keeps running"
    )


def render_scaled(
    path: str,
    *,
    before: int,
    after: int,
    started: Sequence[int],
    stopped: Sequence[int],
    ui_url: str,
) -> str:
    """Render the answer to `/sweep scale`: how many agents now, which started or stopped."""
    sweep = sweep_link(path, ui_url)
    if before == after:
        return f"🧹 sweep {sweep} already has {after} agent{'s' if after != 1 else ''}."
    did = (
        f"started agent{'s' if len(started) != 1 else ''} {', '.join(map(str, started))}"
        if started
        else f"stopped agent{'s' if len(stopped) != 1 else ''} {', '.join(map(str, stopped))}"
    )
    return f"🧹 sweep {sweep}: {before} → {after} agent{'s' if after != 1 else ''} · {did}"
