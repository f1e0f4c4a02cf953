"""The naive poller a lab would write, as a process: `python -m bench.naive URL ROUNDS PROJECT...`.

Each round builds `wandb.Api()`, lists every project's runs the SDK's default way and reads
the summary of each running run. At the end it prints its peak RSS with wandb-core's, in
kilobytes, so that a benchmark can compare it with the bot's.
"""

from __future__ import annotations

import sys

from bench.common import ENTITY, naive_api, sdk_environment
from bench.proc import peak_rss_kb


def poll_round(base_url: str, projects: list[str]) -> int:
    """Poll every project once; return how many running runs were read."""
    api = naive_api(base_url)
    running = 0
    for project in projects:
        for run in api.runs(f"{ENTITY}/{project}"):
            if run.state == "running":
                _ = run.summary.get("accuracy")
                running += 1
    return running


def main(argv: list[str]) -> None:
    """Poll ROUNDS rounds, then print the peak RSS of this process tree."""
    base_url, rounds, projects = argv[0], int(argv[1]), argv[2:]
    with sdk_environment(base_url):
        for _ in range(rounds):
            poll_round(base_url, projects)
        print(peak_rss_kb(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
