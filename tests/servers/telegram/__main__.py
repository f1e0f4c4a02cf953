"""Run the local Telegram Bot API server: ``python -m tests.servers.telegram --port 8081``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .app import DEFAULT_TOKEN, TelegramServer
from .flood import FloodLimits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--no-flood", action="store_true", help="switch the flood model off")
    parser.add_argument("--auto-create-chats", action="store_true", help="accept any chat id")
    defaults = FloodLimits()
    parser.add_argument("--chat-rate", type=float, default=defaults.chat_rate)
    parser.add_argument("--chat-burst", type=float, default=defaults.chat_burst)
    parser.add_argument("--group-max", type=float, default=defaults.group_max)
    parser.add_argument("--group-period", type=float, default=defaults.group_period)
    parser.add_argument("--overall-rate", type=float, default=defaults.overall_rate)
    parser.add_argument("--overall-burst", type=float, default=defaults.overall_burst)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    limits = FloodLimits(
        chat_rate=args.chat_rate,
        chat_burst=args.chat_burst,
        group_max=args.group_max,
        group_period=args.group_period,
        overall_rate=args.overall_rate,
        overall_burst=args.overall_burst,
    )
    server = TelegramServer(
        args.token,
        flood=not args.no_flood,
        limits=limits,
        auto_create_chats=args.auto_create_chats,
    )
    url = await server.start(args.port)
    print(f"listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the server from the command line."""
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
