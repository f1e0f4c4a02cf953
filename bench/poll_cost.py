"""W&B requests a minute for a lab of 50 watched projects, 5 of them active, at 30 s.

Both ways run in the simulation of bench/latency.py against the local W&B server, whose
control API counts the requests:
- naive: every 30 s, `wandb.Api()`, list each project's runs (the SDK's lazy listing) and
  read the summary of each running run (one more request per run);
- ours: the bot's scheduler and monitor with its default settings: every project at the
  active interval, up to `WTB_WANDB_BATCH_SIZE` projects in one aliased request.
"""

from __future__ import annotations

import asyncio

from bench.common import Row, table
from bench.latency import Scenario, simulate

PROJECTS = 50
ACTIVE = 5
INTERVAL = 30.0
MINUTES = 10


async def measure(projects: int = PROJECTS, minutes: float = MINUTES) -> list[Row]:
    """Return the requests-a-minute row."""
    scenario = Scenario(projects, max(1, projects // 10), INTERVAL, minutes * 60, events=0)
    mine, theirs = await simulate(scenario)
    return [
        Row(
            f"W&B requests a minute, {projects} projects at {INTERVAL:g} s",
            mine.per_minute,
            theirs.per_minute,
            "",
            f"{scenario.active} active; {minutes:g} simulated minutes",
        )
    ]


async def main() -> None:
    """Print the table."""
    print(table(await measure()))


if __name__ == "__main__":
    asyncio.run(main())
