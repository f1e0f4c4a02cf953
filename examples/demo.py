"""`make demo`: the bot with both local servers, a few real training runs and a sweep, by hand.

Everything runs on this machine: the W&B-compatible server and the Telegram Bot API server
from tests/servers, the real bot, real `examples/wine/train.py` runs through the wandb SDK
(one finishing, one failing with its exception in the chat) and a sweep started from the
chat with the real `wandb agent`. Type a command and press Enter to send it to the lab
chat as its admin; the chat's messages are printed as they arrive. Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.harness import ADMIN, LAB_CHAT, PROJECT, Harness, lab_data
from tests.servers.telegram import ChatMessage

HELP = """\
──────────────────────────────────────────────────────────────────────────────
 The demo lab is up: a W&B server at {wandb}, a Telegram server at {telegram},
 and the bot, watching {project} for the chat "ml-alerts".
 Runs are starting: one finishes, one fails (its exception shows), and a sweep of 3.

 Type a command and press Enter, as the lab's admin, for example:
   /help   /status   /runs   /best {project}   /plot <run id>   /digest
   /sweeps   /sweep start wine count=2   /stop <run id>
 Press a button of the last message that has it:   press Plot
 Charts are saved as PNG files under {charts}.
 Ctrl-C stops the bot, the servers, the runs and the agents.
──────────────────────────────────────────────────────────────────────────────"""


# The tests' fast knobs, less eager: a busy laptop must not look like a stalled run.
DEMO_SETTINGS = {"WTB_STALL_FLOOR": "120", "WTB_POLL_INTERVAL": "1", "WTB_WANDB_TIMEOUT": "20"}


def demo_lab() -> dict[str, object]:
    """Return the demo's lab file: one chat, one project, the wine sweeps, a daily digest."""
    lab = lab_data()
    lab["chats"] = [
        {
            "id": LAB_CHAT,
            "name": "ml-alerts",
            "projects": [PROJECT],
            "digest": {"cron": "0 9 * * *", "timezone": "UTC"},
        }
    ]
    return lab


class ChatPrinter:
    """Print what the lab chat shows, new messages and edits alike, once each."""

    def __init__(self, h: Harness, charts: Path, out: Callable[[str], None] = print) -> None:
        self._h = h
        self._charts = charts
        self._out = out
        self._seen: dict[int, str] = {}

    def show(self, message: ChatMessage) -> str:
        """Return a message as the chat would show it, buttons and chart file included."""
        text = message.text or message.caption or ""
        if message.photo is not None:
            stored = self._h.telegram.files.get(message.photo["file_id"])
            if stored is not None:
                path = self._charts / f"chart-{message.message_id}.png"
                path.write_bytes(stored.data)
                text += f"\n[chart: {path}]"
        labels = [b["text"] for row in message.buttons for b in row]
        if labels:
            text += "\n" + " ".join(f"[{label}]" for label in labels)
        return text

    def flush(self) -> None:
        """Print every message that is new or changed since the last call."""
        for message in self._h.telegram.bot_messages(LAB_CHAT):
            shown = self.show(message)
            if self._seen.get(message.message_id) == shown:
                continue
            edited = message.message_id in self._seen
            self._seen[message.message_id] = shown
            mark = "✎ edited" if edited else "💬 bot"
            self._out(f"\n{mark} #{message.message_id}\n{shown}")


def press(h: Harness, label: str) -> str:
    """Press the button labelled `label` on the newest message that has one."""
    for message in reversed(h.telegram.bot_messages(LAB_CHAT)):
        if any(b["text"].lower() == label.lower() for row in message.buttons for b in row):
            h.telegram.press(LAB_CHAT, message.message_id, button_text=label, user_id=ADMIN)
            return f"pressed [{label}] on #{message.message_id}"
    return f"no message has a [{label}] button"


async def start_runs(h: Harness) -> list[asyncio.subprocess.Process]:
    """Start the demo's training runs: one that finishes, one that fails, console captured."""
    console = {"WANDB_CONSOLE": "auto"}
    return [
        await h.train("--epochs", "4", "--n_estimators", "40", "--sleep", "1", env=console),
        await h.train("--epochs", "4", "--fail-at", "2", "--sleep", "1", env=console),
    ]


async def read_lines(queue: asyncio.Queue[str]) -> None:
    """Feed stdin lines into `queue` without a blocking thread (Ctrl-C stays instant)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        await queue.put(line.decode().strip())


async def run(args: argparse.Namespace) -> int:
    """Bring the demo lab up, run it until Ctrl-C (or `--once` has seen it work), tear down."""
    folder = Path(tempfile.mkdtemp(prefix="wtb-demo-"))
    charts = folder / "charts"
    charts.mkdir()
    # The bot's and the servers' logs go to a file: the terminal is the chat.
    logging.basicConfig(filename=folder / "demo.log", level=logging.INFO, force=True)
    h = Harness(folder, lab=demo_lab(), settings=DEMO_SETTINGS, heartbeat_timeout=30)
    procs: list[asyncio.subprocess.Process] = []
    try:
        await h.start_servers()
        await h.start_bot()
        print(
            HELP.format(wandb=h.wandb_url, telegram=h.telegram_url, project=PROJECT, charts=charts)
        )
        print("ready", flush=True)
        printer = ChatPrinter(h, charts)
        procs = await start_runs(h)
        h.say("/sweep start wine count=3")
        if args.once:
            return await until_seen(h, printer)
        lines: asyncio.Queue[str] = asyncio.Queue()
        reader = asyncio.create_task(read_lines(lines))
        try:
            while True:
                printer.flush()
                with contextlib.suppress(TimeoutError):
                    line = await asyncio.wait_for(lines.get(), 0.3)
                    if line.startswith("press "):
                        print(press(h, line.removeprefix("press ").strip()))
                    elif line:
                        h.say(line)
        finally:
            reader.cancel()
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await h.__aexit__(None, None, None)
        print(f"\nstopped; the demo's files and its log are in {folder}", flush=True)


async def until_seen(h: Harness, printer: ChatPrinter) -> int:
    """Wait until the chat shows a finished run, a failed one with its reason, and the sweep."""
    texts: list[str] = []

    def seen() -> bool:
        printer.flush()
        texts[:] = h.texts()
        joined = "\n".join(texts)
        return all(
            needle in joined
            for needle in ("✅ finished", "❌ failed", "RuntimeError: simulated failure", "🧹")
        )

    await h.wait_until(seen, timeout=240, what="the demo's runs in the chat")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--once", action="store_true", help="exit once the runs and the sweep show in the chat"
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
