"""A local Telegram Bot API server for tests, benchmarks and checking the bot by hand."""

from __future__ import annotations

from .app import DEFAULT_TOKEN, ApiError, SentUpdate, Stats, TelegramServer
from .faults import FAULT_KINDS, Fault
from .flood import FloodControl, FloodLimits, LeakyBucket
from .html import HtmlParseError, ParsedText, parse_html, utf16_len
from .state import BOT_USER, ChatMessage

__all__ = [
    "BOT_USER",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "ApiError",
    "ChatMessage",
    "Fault",
    "FloodControl",
    "FloodLimits",
    "HtmlParseError",
    "LeakyBucket",
    "ParsedText",
    "SentUpdate",
    "Stats",
    "TelegramServer",
    "parse_html",
    "utf16_len",
]
