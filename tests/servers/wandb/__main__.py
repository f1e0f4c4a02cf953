"""Serve the W&B-compatible test server: ``python -m tests.servers.wandb --port 0``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from tests.servers.wandb.app import WandbServer


async def _serve(port: int, heartbeat_timeout: float, entity: str) -> None:
    server = WandbServer(heartbeat_timeout=heartbeat_timeout, default_entity=entity)
    url = await server.start(port)
    print(f"listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.servers.wandb")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any)")
    parser.add_argument("--heartbeat-timeout", type=float, default=120.0, help="seconds")
    parser.add_argument("--entity", default="lab", help="the viewer's default entity")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.heartbeat_timeout, args.entity))


if __name__ == "__main__":
    main()
