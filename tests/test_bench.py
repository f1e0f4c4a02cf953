"""The benchmarks in their quick form: every row is measured and ours keeps its targets."""

from __future__ import annotations

import math

from bench.__main__ import QUICK, measure
from bench.common import Row, table


async def test_quick_benchmarks_measure_every_row_and_ours_keeps_its_targets():
    rows = await measure(QUICK)
    by_name = {row.measure: row for row in rows}
    assert len(by_name) == len(rows)
    for row in rows:
        assert not math.isnan(row.ours), row
        assert row.naive is None or not math.isnan(row.naive), row
    assert by_name["requests: idle poll, 100 runs"].ours == 1
    assert by_name["requests: poll with k = 1 changed runs"].ours == 1
    assert by_name["requests: poll with k = 250 changed runs"].ours == 2  # 200 a page
    assert by_name["20-run burst: messages sent"].ours == 1
    assert by_name["20-run burst: 429 answers"].ours == 0
    assert by_name["requests a poll, 5 running runs: 4 rules on summary values"].ours == 1
    assert by_name["requests a poll, 5 running runs: + nan (logged values)"].ours == 1 + 5
    # Every project, idle or not, is polled at the active interval (not the old 5 minutes).
    for kind in ("idle", "active"):
        assert by_name[f"latency p95, {kind} project, 30 s interval"].ours <= 30 * 1.5
    minute = by_name["W&B requests a minute, 8 projects at 30 s"]
    assert minute.naive is not None and minute.ours < minute.naive
    rendered = table(rows)
    assert rendered.count("\n") == len(rows) + 1


def test_the_table_shows_the_ratio_of_naive_to_ours():
    rows = [Row("a", 2, 10, "ms"), Row("b", 0, 5, ""), Row("c", 1.5, None, "s")]
    assert table(rows).splitlines()[2:] == [
        "| a | 2 ms | 10 ms | 5.0× |  |",
        "| b | 0 | 5 | ∞ |  |",
        "| c | 1.50 s | – | – |  |",
    ]
