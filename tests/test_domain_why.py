"""Reading why a run ended from the last lines of its console."""

from __future__ import annotations

import pytest

from bot.domain.why import explain

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "train.py", line 136, in main',
    '    raise RuntimeError(f"simulated failure at step {epoch}")',
]


@pytest.mark.parametrize(
    ("lines", "exception", "cause"),
    [
        (
            [*TRACEBACK, "RuntimeError: simulated failure at step 2"],
            "RuntimeError: simulated failure at step 2",
            None,
        ),
        (
            [*TRACEBACK, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"],
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "out of memory",
        ),
        (
            ["epoch 3 loss nan", *TRACEBACK, "ValueError: loss is nan"],
            "ValueError: loss is nan",
            "NaN/inf",
        ),
        (
            [*TRACEBACK, "RuntimeError: CUDA error: an illegal memory access was encountered"],
            "RuntimeError: CUDA error: an illegal memory access was encountered",
            "CUDA/NCCL error",
        ),
        (
            [
                *TRACEBACK,
                "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970",
            ],
            "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970",
            "CUDA/NCCL error",
        ),
        (["step 880 loss 0.31", "Killed"], None, "killed by the OOM killer"),
        (
            [
                "slurmstepd: error: *** JOB 4711 ON gpu-02 CANCELLED AT 2026-11-30T03:00:00 DUE TO TIME LIMIT ***"
            ],
            None,
            "time limit",
        ),
        (["step 10 loss 0.5", "step 20 loss 0.4"], None, None),
        ([], None, None),
    ],
)
def test_the_exception_line_and_an_evident_cause_are_picked_out(lines, exception, cause):
    why = explain(lines)
    assert (why.exception, why.cause) == (exception, cause)


def test_without_an_exception_the_last_lines_are_shown():
    why = explain(["a", "", "step 20 loss 0.4", "saving checkpoint"])
    assert why.tail == ("step 20 loss 0.4", "saving checkpoint")
    assert explain(["x", "KeyboardInterrupt"]).exception == "KeyboardInterrupt"
    assert explain([]).empty


def test_python_warnings_are_no_reason_and_never_the_last_lines():
    warning = (
        "/venv/lib/python3.11/site-packages/sklearn/ensemble/_forest.py:447: UserWarning: "
        "Warm-start fitting without increasing n_estimators does not fit new trees."
    )
    lines = ["epoch 49 accuracy 0.95", warning, "  warn(", warning, "  warn("]
    assert explain(lines).tail == ("epoch 49 accuracy 0.95",)
    assert explain([warning, "  warn("]).empty
    # A traceback still counts, and a line that merely mentions a warning stays.
    assert explain([warning, "  warn(", "ValueError: bad"]).exception == "ValueError: bad"
    assert explain(["saved to warn.txt:3: done"]).tail == ("saved to warn.txt:3: done",)
