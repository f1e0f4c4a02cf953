"""Run the real bot against the local W&B and Telegram servers, as a lab would use it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bot import app as bot_app
from config import Settings, load_lab
from tests.servers.telegram import ChatMessage, TelegramServer
from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import API_KEY, FAST_AGENT_CODE, sdk_env

REPO = Path(__file__).resolve().parent.parent
WINE = REPO / "examples" / "wine"
TOKEN = "7000000001:AAlocal-test-token-0123456789abcdefgh"
LAB_CHAT = -1001234567890
OTHER_LAB_CHAT = -1001234567891
STRANGER_CHAT = -1009876543210
ADMIN = 111222333
MEMBER = 444555666
ENTITY = "lab"
PROJECT = "wine-quality-dev"


def lab_data(**overrides: Any) -> dict[str, Any]:
    """Return a lab file like the README's, pointed at the example sweeps."""
    data: dict[str, Any] = {
        "entity": ENTITY,
        "admins": [ADMIN],
        "chats": [
            {"id": LAB_CHAT, "name": "ml-alerts", "projects": [PROJECT]},
            {"id": OTHER_LAB_CHAT, "name": "ml-quiet", "projects": []},
        ],
        "projects": {PROJECT: {"metric": "accuracy", "goal": "maximize"}},
        "sweeps": {
            "wine": {"file": str(WINE / "sweep.yaml"), "project": PROJECT, "workdir": str(WINE)},
            "wine-grid": {
                "file": str(WINE / "sweep-grid.yaml"),
                "project": PROJECT,
                "workdir": str(WINE),
            },
        },
    }
    data.update(overrides)
    return data


def fast_settings() -> dict[str, str]:
    """Return the bot's knobs turned down so a test sees things happen in seconds."""
    return {
        "WTB_POLL_INTERVAL": "0.5",
        "WTB_IDLE_POLL_INTERVAL": "1",
        "WTB_MAX_BACKOFF": "4",
        "WTB_WATERMARK_OVERLAP": "5",
        "WTB_WANDB_TIMEOUT": "15",
        "WTB_DELIVERY_INTERVAL": "0.2",
        "WTB_STALL_FLOOR": "12",
        "WTB_STALL_FACTOR": "5",
        "WTB_AGENT_STAGGER": "0.2",
        "WTB_AGENT_STOP_TIMEOUT": "5",
        "WTB_AGENT_CHECK_INTERVAL": "0.5",
        "WTB_CARD_EDIT_INTERVAL": "0.5",
        "WTB_LOG_LEVEL": "INFO",
    }


def fast_agent_script(folder: Path, poll_interval: float = 0.5) -> Path:
    """Write a `wandb` stand-in that is the real CLI with the agent's 5 s poll shortened."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wandb-fast"
    code = FAST_AGENT_CODE.format(poll=poll_interval)
    path.write_text(f"#!{sys.executable}\n{code}\n")
    path.chmod(0o755)
    return path


def agent_run_env(folder: Path) -> dict[str, str]:
    """Return the lab-file `env` of a sweep whose runs must stay quiet, fast and in `folder`."""
    env = sdk_env("http://unused", folder)
    return {
        k: v
        for k, v in env.items()
        if k.startswith("WANDB_") and k not in ("WANDB_BASE_URL", "WANDB_API_KEY")
    }


def with_agent_env(lab: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Give every sweep of a lab file without its own `env` the quiet test environment."""
    data = dict(lab)
    sweeps = {}
    for name, sweep in dict(data.get("sweeps", {})).items():
        sweeps[name] = dict(sweep) if "env" in sweep else {**sweep, "env": agent_run_env(folder)}
    if sweeps:
        data["sweeps"] = sweeps
    return data


class Harness:
    """Both local servers plus the bot built by `bot.app`, started and stopped together."""

    def __init__(
        self,
        tmp: Path,
        *,
        lab: Mapping[str, Any] | None = None,
        settings: Mapping[str, str] | None = None,
        heartbeat_timeout: float = 8.0,
        flood: bool = True,
    ) -> None:
        self.tmp = tmp
        self.lab_path = tmp / "lab.yaml"
        # Sweep agents' runs write their wandb files under tmp, never into examples/.
        self.lab_path.write_text(
            yaml.safe_dump(with_agent_env(lab or lab_data(), tmp / "agent-sdk"))
        )
        self.agent_script = fast_agent_script(tmp / "bin")
        self.wandb = ServerThread(WandbServer(heartbeat_timeout=heartbeat_timeout))
        self.telegram = TelegramServer(TOKEN, flood=flood)
        self.extra_settings = dict(settings or {})
        self.application: bot_app.BotApplication | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.wandb_url = ""
        self.telegram_url = ""

    @property
    def wb(self) -> WandbServer:
        """Return the W&B server (its methods are thread-safe enough for tests)."""
        return self.wandb.server

    def env(self) -> dict[str, str]:
        """Return the bot's environment: secrets, URLs and fast knobs."""
        return {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "WANDB_API_KEY": API_KEY,
            "WANDB_BASE_URL": self.wandb_url,
            "WTB_TELEGRAM_API_URL": f"{self.telegram_url}/bot",
            "WTB_LAB_FILE": str(self.lab_path),
            "WTB_DATA_DIR": str(self.tmp / "data"),
            "WTB_AGENT_EXECUTABLE": str(self.agent_script),
            **fast_settings(),
            **self.extra_settings,
        }

    def settings(self) -> Settings:
        """Build the bot's settings exactly as `python -m bot` would from its environment."""
        return Settings(_env_file=None, **self.env())  # type: ignore[call-arg, arg-type]

    async def start_servers(self) -> None:
        """Start both servers and make the lab's chats known to Telegram."""
        self.wandb_url = await asyncio.to_thread(self.wandb.start)
        self.telegram_url = await self.telegram.start()
        self.telegram.add_chat(LAB_CHAT, "supergroup", "ml-alerts")
        self.telegram.add_chat(OTHER_LAB_CHAT, "supergroup", "ml-quiet")
        self.telegram.add_chat(ADMIN, "private", first_name="Ada")

    async def start_bot(self) -> None:
        """Build and start the bot in this event loop, polling the Telegram server."""
        settings = self.settings()
        lab = load_lab(settings.lab_file)
        application = bot_app.build(settings, lab)

        def polling_error(exc: Exception) -> None:
            # As `run_polling` does: polling errors go to the bot's error handler.
            application.create_task(application.process_error(update=None, error=exc))

        await application.initialize()
        await bot_app.start_services(application)
        assert application.updater is not None
        if settings.telegram_webhook_url:
            await application.updater.start_webhook(**bot_app.webhook_options(settings))
        else:
            await application.updater.start_polling(
                poll_interval=0.0,
                timeout=1,
                allowed_updates=bot_app.ALLOWED_UPDATES,
                error_callback=polling_error,
            )
        await application.start()
        self.application = application

    async def stop_bot(self) -> None:
        """Stop the in-process bot the way `run_polling` does at a signal."""
        application, self.application = self.application, None
        if application is None:
            return
        assert application.updater is not None
        await application.updater.stop()
        await application.stop()
        await bot_app.stop_services(application)
        await application.shutdown()
        await bot_app.close_services(application)

    async def start_bot_process(self) -> None:
        """Start the bot as its own process (`python -m bot run`), for crash tests."""
        log = open(self.tmp / "bot.log", "ab")  # noqa: SIM115
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=str(REPO),
            env={**os.environ, **self.env()},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    async def kill_bot_process(self) -> None:
        """Kill the bot process with SIGKILL, as a crash or an OOM kill would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
            self.process = None

    async def __aenter__(self) -> Harness:
        await self.start_servers()
        await self.start_bot()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_bot()
        if self.process is not None:
            await self.kill_bot_process()
        self.kill_leftover_agents()
        await self.telegram.stop()
        await asyncio.to_thread(self.wandb.stop)

    def kill_leftover_agents(self) -> None:
        """Kill sweep agents (and their runs) a failed test left behind; the bot never does."""
        from bot.store import Store
        from wandb_client.agents import descendants, is_alive

        db = self.tmp / "data" / "bot.sqlite3"
        if not db.exists():
            return
        store = Store(db)
        try:
            for agent in store.agents.all(live_only=True):
                cmdline = json.loads(agent.handle or "{}").get("cmdline", agent.cmdline)
                if agent.launcher != "local" or not is_alive(agent.pid, cmdline):
                    continue
                for pid in [agent.pid, *descendants(agent.pid)]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            store.close()

    # -- acting as users ---------------------------------------------------------------

    def say(self, text: str, *, chat_id: int = LAB_CHAT, user_id: int = ADMIN) -> int:
        """Type a message in a chat as a user; return its message id."""
        sent = self.telegram.user_sends(chat_id, text, user_id=user_id)
        assert sent.message_id is not None
        return sent.message_id

    async def reply_to(
        self, text: str, *, chat_id: int = LAB_CHAT, user_id: int = ADMIN, timeout: float = 20
    ) -> ChatMessage:
        """Type a command and return the bot's first message after it."""
        before = len(self.telegram.bot_messages(chat_id))
        self.say(text, chat_id=chat_id, user_id=user_id)
        msgs = await self.telegram.wait_for_messages(chat_id, count=before + 1, timeout=timeout)
        return msgs[before]

    async def wait_for_text(
        self, needle: str | Callable[[str], bool], *, chat_id: int = LAB_CHAT, timeout: float = 30
    ) -> ChatMessage:
        """Wait for a bot message whose text or caption contains `needle` (or satisfies it)."""

        def matches(msg: ChatMessage) -> bool:
            text = msg.text or msg.caption or ""
            return needle(text) if callable(needle) else needle in text

        msgs = await self.telegram.wait_for_messages(
            chat_id, lambda ms: any(matches(m) for m in ms), timeout=timeout
        )
        return next(m for m in msgs if matches(m))

    def texts(self, chat_id: int = LAB_CHAT) -> list[str]:
        """Return the texts (or captions) of the bot's messages in a chat."""
        return [m.text or m.caption or "" for m in self.telegram.bot_messages(chat_id)]

    # -- acting as training scripts ------------------------------------------------------

    def sdk_env(self, **extra: str) -> dict[str, str]:
        """Return the environment of a wandb SDK process talking to the local server."""
        return sdk_env(self.wandb_url, self.tmp / "sdk", WANDB_ENTITY=ENTITY, **extra)

    async def train(
        self, *args: str, project: str = PROJECT, env: Mapping[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        """Start `examples/wine/train.py` with these arguments; return the process."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(WINE / "train.py"),
            *args,
            cwd=str(WINE),
            env=self.sdk_env(WANDB_PROJECT=project, **dict(env or {})),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def train_to_end(self, *args: str, timeout: float = 60, **kwargs: Any) -> int:
        """Run a training script to its end and return its exit code."""
        proc = await self.train(*args, **kwargs)
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        if proc.returncode not in (0, 1, 130, 255):
            raise AssertionError(f"train.py exited {proc.returncode}: {err.decode()[-2000:]}")
        return proc.returncode

    async def wait_until(
        self, condition: Callable[[], bool], *, timeout: float = 30, what: str = "condition"
    ) -> None:
        """Wait on a condition with short polls up to a deadline."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{what} not met after {timeout}s")
            await asyncio.sleep(0.05)

    async def end_seeded_run(
        self, name: str, state: str = "finished", project: str = PROJECT
    ) -> None:
        """Seed a running run, wait until the bot has seen it running, then end it."""
        assert self.application is not None
        store = self.application.bot_data.services.store
        self.wb.seed(
            {"runs": [{"entity": ENTITY, "project": project, "name": name, "state": "running"}]}
        )
        path = f"{ENTITY}/{project}/{name}"
        await self.wait_until(
            lambda: path in store.runs.memory(ENTITY, project), what=f"{name} seen"
        )
        self.wb.set_run_state(ENTITY, project, name, state)

    async def wait_polls(self, count: int) -> None:
        """Wait until the bot has started `count` more polls."""
        assert self.application is not None
        monitor = self.application.bot_data.services.monitor
        target = monitor.polls + count
        await self.wait_until(lambda: monitor.polls >= target, what=f"{count} polls")

    def run_states(self, project: str = PROJECT) -> dict[str, str]:
        """Return run id → state as the W&B server has them."""
        return {r["name"]: r["state"] for r in self.wb.list_runs(ENTITY, project)}


def run_ids_in(texts: Sequence[str], ids: Sequence[str]) -> dict[str, int]:
    """Count how many messages mention each run id."""
    return {run_id: sum(run_id in t for t in texts) for run_id in ids}
