"""Run every benchmark and print one table: `python -m bench [--quick]` (or `make bench`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import alerts, burst, commands, fanout, latency, poll_cost, requests, resources
from bench.common import Row, table


@dataclass(frozen=True, slots=True)
class Profile:
    """How big each benchmark is: the full figures, or a quick pass that keeps them working."""

    sizes: tuple[int, ...]
    ks: tuple[int, ...]
    command_runs: int
    command_reps: int
    burst_runs: int
    rss_projects: int
    rss_rounds: int
    scenarios: tuple[latency.Scenario, ...]
    minute_projects: int
    minutes: float
    cpu: latency.Scenario


FULL = Profile(
    sizes=(100, 1_000, 10_000),
    ks=(1, 10, 100, 250),
    command_runs=10_000,
    command_reps=20,
    burst_runs=200,
    rss_projects=100,
    rss_rounds=5,
    scenarios=(
        latency.Scenario(projects=50, active=5, interval=30, duration=600, events=40),
        latency.Scenario(projects=50, active=5, interval=1, duration=20, events=30),
    ),
    minute_projects=50,
    minutes=10,
    cpu=latency.Scenario(projects=500, active=50, interval=30, duration=60, events=0),
)
QUICK = Profile(
    sizes=(100,),
    ks=(1, 250),
    command_runs=100,
    command_reps=3,
    burst_runs=20,
    rss_projects=5,
    rss_rounds=1,
    scenarios=(
        latency.Scenario(projects=8, active=2, interval=30, duration=150, events=6),
        latency.Scenario(projects=8, active=2, interval=1, duration=6, events=4),
    ),
    minute_projects=8,
    minutes=2,
    cpu=latency.Scenario(projects=20, active=2, interval=30, duration=60, events=0),
)


async def measure(profile: Profile) -> list[Row]:
    """Run the benchmarks one after another and return their rows in table order."""
    rows, naive_read_s = await requests.measure(profile.sizes, profile.ks)
    rows += await latency.measure(profile.scenarios)
    rows += await commands.measure(
        profile.command_runs, profile.command_reps, naive_read_s.get(profile.command_runs)
    )
    rows += await burst.measure(profile.burst_runs)
    rows += await fanout.measure(quick=profile is QUICK)
    rows.append(await resources.rss_row(profile.rss_projects, profile.rss_rounds))
    rows += await poll_cost.measure(profile.minute_projects, profile.minutes)
    rows.append(await latency.cpu_row(profile.cpu))
    rows += await alerts.measure()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for the test suite")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    rows = asyncio.run(measure(QUICK if args.quick else FULL))
    print(table(rows))
    print(f"\n({'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
