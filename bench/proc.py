"""Read a process tree's peak memory and CPU time from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Return every descendant of `pid` (wandb-core is a child of the process that uses it)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in found:
                    found.append(kid)
                    queue.append(kid)
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_kb(pid: int | None = None) -> int:
    """Return the peak RSS (VmHWM) of a process plus that of its descendants, in kB."""
    root = os.getpid() if pid is None else pid
    return sum(_status_kb(p, "VmHWM") for p in [root, *children(root)])


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU time so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields after the command name: state is [0], utime [11], stime [12].
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(pid: int | None = None, exclude: frozenset[int] = frozenset()) -> float:
    """Return the CPU time of a process and its live descendants but `exclude`, in seconds."""
    root = os.getpid() if pid is None else pid
    return sum(cpu_seconds(p) for p in [root, *children(root)] if p not in exclude)
