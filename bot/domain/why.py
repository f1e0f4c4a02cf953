"""Why a run failed or crashed, read from the last lines of its console output."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# One row per cause a lab recognises at a glance; the first whose pattern matches the
# exception line, else any line, names the cause. Order matters: an OOM inside CUDA is
# "out of memory", not a CUDA error.
CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "out of memory",
        re.compile(
            r"out of memory|OutOfMemoryError|\bMemoryError\b|Cannot allocate memory|"
            r"RESOURCE_EXHAUSTED|std::bad_alloc",
            re.I,
        ),
    ),
    (
        "killed by the OOM killer",
        re.compile(r"oom[-_ ]kill|Killed process \d+|Memory cgroup out of memory|^Killed$", re.I),
    ),
    ("time limit", re.compile(r"DUE TO TIME LIMIT|time limit|TimeLimit|walltime", re.I)),
    (
        "NaN/inf",
        re.compile(
            r"\b(nan|inf|infinity)\b.*\b(loss|grad|value|detected|encountered)|"
            r"\b(loss|grad\w*)\b.*\b(nan|inf)\b|non-finite|not finite",
            re.I,
        ),
    ),
    (
        "CUDA/NCCL error",
        re.compile(
            r"CUDA error|cudaError|CUBLAS_STATUS|CUDNN_STATUS|cuDNN error|\bNCCL\b|"
            r"device-side assert|illegal memory access",
            re.I,
        ),
    ),
)
# `ValueError: …`, `torch.cuda.OutOfMemoryError: …`, `KeyboardInterrupt`: a Python exception.
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Exit|Failure)\b(?::.*)?$"
)
# `…/sklearn/ensemble/_forest.py:447: UserWarning: …`, as `warnings.warn` prints it.
_WARNING = re.compile(r"^\S.*:\d+: [A-Z]\w*Warning: ")
_LINE_LIMIT = 200
TAIL_LINES = 2


@dataclass(frozen=True, slots=True)
class FailureReason:
    """What the console says about a run's end: the exception, a cause, the last lines."""

    exception: str | None
    cause: str | None
    tail: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Tell whether the console said nothing worth showing."""
        return self.exception is None and self.cause is None and not self.tail


def _clean(line: str) -> str:
    text = line.strip()
    return text if len(text) <= _LINE_LIMIT else text[: _LINE_LIMIT - 1] + "…"


def _without_warnings(lines: Sequence[str]) -> list[str]:
    """Drop Python warnings (`file.py:12: UserWarning: …` and the source line echoed under it).

    They say nothing about why a run ended, and a library's warning repeated every step would
    otherwise be the "last lines" of every crash.
    """
    out: list[str] = []
    echo = False
    for line in lines:
        if _WARNING.match(line.strip()):
            echo = True
            continue
        if echo and line[:1].isspace():
            echo = False
            continue
        echo = False
        out.append(line)
    return out


def explain(lines: Sequence[str], *, tail: int = TAIL_LINES) -> FailureReason:
    """Pick the exception line and a cause out of a run's last console lines."""
    kept = [_clean(line) for line in _without_warnings(lines) if line.strip()]
    exception = next((line for line in reversed(kept) if _EXCEPTION.match(line)), None)
    cause = None
    for name, pattern in CAUSES:
        if (exception and pattern.search(exception)) or any(pattern.search(x) for x in kept):
            cause = name
            break
    # Without an exception line, the last lines are the best clue there is.
    shown = () if exception or not tail else tuple(kept[-tail:])
    return FailureReason(exception, cause, shown)
