"""The command line: `wandb-telegram-bot [run|check]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from pydantic import SecretStr, ValidationError

from config import LabConfig, LabFileError, Settings, load_lab

EXIT_CONFIG = 2


def package_version() -> str:
    """Return the installed version of the bot."""
    try:
        return version("wandb-telegram-bot")
    except PackageNotFoundError:
        return "0+unknown"


def settings_problems(exc: ValidationError) -> list[str]:
    """Turn a settings validation error into one line per problem, naming the variable."""
    aliases = {name: field.alias or name.upper() for name, field in Settings.model_fields.items()}
    lines = []
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else "settings"
        name = aliases.get(key, key)
        if err["type"] == "missing":
            lines.append(f"{name}: missing (set it in the environment or in .env)")
        else:
            lines.append(f"{name}: {err['msg']}")
    return lines


def load_config() -> tuple[Settings, LabConfig]:
    """Build the settings and the lab file, or exit 2 with one line per problem."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings()
    except ValidationError as exc:
        problems.extend(settings_problems(exc))
    lab: LabConfig | None = None
    lab_path = settings.lab_file if settings else Settings.model_fields["lab_file"].default
    try:
        lab = load_lab(lab_path)
    except LabFileError as exc:
        problems.extend(exc.problems)
    if problems or settings is None or lab is None:
        print("wandb-telegram-bot cannot start:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return settings, lab


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="wandb-telegram-bot",
        description="Tell an ML lab's Telegram chats what its W&B runs and sweeps are doing.",
        epilog="Settings come from the environment and .env; see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check"],
        help="run the bot (default), or check the settings, the lab file, W&B and Telegram",
    )
    return parser


class RedactSecrets(logging.Filter):
    """Mask every secret's value in a log record, its traceback included, before it is written."""

    MASK = "***"

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        # Short values would mask ordinary words; no real token or key is that short.
        self.secrets = [s for s in secrets if len(s) >= 8]

    def redact(self, text: str) -> str:
        """Return the text with every secret masked."""
        for secret in self.secrets:
            text = text.replace(secret, self.MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secret_values(settings: Settings) -> list[str]:
    """Return the values of every secret setting that is set."""
    values = (getattr(settings, name) for name in Settings.model_fields)
    return [
        v.get_secret_value() for v in values if isinstance(v, SecretStr) and v.get_secret_value()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    args = build_parser().parse_args(argv)
    settings, lab = load_config()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Libraries log what they were given (PTB its API URL, with the token, at DEBUG): every
    # handler masks the secrets' values, whatever logger the record came from.
    redact = RedactSecrets(secret_values(settings))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    # Third-party HTTP clients log full URLs, and Telegram URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The job queue logs every poll at INFO; only its trouble is worth a line.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    from bot import app

    try:
        if args.command == "check":
            return asyncio.run(app.check(settings, lab))
        app.run(settings, lab)
    except LabFileError as exc:
        # What only the built app can tell, e.g. a sweep naming a launcher it lacks.
        print("wandb-telegram-bot cannot start:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
