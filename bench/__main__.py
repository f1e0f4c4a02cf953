"""Run every benchmark and print its table: `python -m bench` (or `make bench`)."""

from __future__ import annotations

import asyncio

from bench import burst, poll_cost


async def main() -> None:
    """Run the benchmarks one after another."""
    await poll_cost.main()
    print()
    await burst.main()


if __name__ == "__main__":
    asyncio.run(main())
