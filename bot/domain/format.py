"""Formatting shared by every message: escaping, numbers, durations, splitting."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024

STATE_MARKERS: Mapping[str, str] = {
    "finished": "✅",
    "failed": "❌",
    "crashed": "💥",
    "killed": "🛑",
    "stalled": "⏸",
    "recovered": "▶️",
    "running": "🏃",
    "pending": "⏳",
    "preempted": "⏏️",
    "sweep": "🧹",
    "best": "🏆",
    "digest": "🗓",
    "burst": "📦",
    "attention": "⚠️",
}


def esc(value: object) -> str:
    """Escape any value for Telegram HTML."""
    return html.escape(str(value), quote=True)


def link(url: str, text: str) -> str:
    """Return an HTML link whose visible text is escaped."""
    return f'<a href="{html.escape(url, quote=True)}">{esc(text)}</a>'


def fmt_number(value: Any, digits: int = 4) -> str:
    """Format a metric with `digits` significant digits; booleans and text as they are."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 10**digits or magnitude < 10 ** -(digits - 1):
            return f"{value:.{digits - 1}e}"
        decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
        return f"{value:.{decimals}f}"
    return str(value)


def fmt_delta(value: float, digits: int = 4) -> str:
    """Format a signed difference such as +0.0056 or −0.0120."""
    if not math.isfinite(value):
        return fmt_number(value, digits)
    text = fmt_number(abs(value), digits)
    return ("+" if value >= 0 else "−") + text


def fmt_duration(seconds: float | None) -> str:
    """Humanise a duration: 12s, 2m 14s, 3h 05m, 2d 04h."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 1:
        return "under 1s"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fmt_clock(moment: datetime, tz: Any = None) -> str:
    """Format a time of day (HH:MM) in the given zone."""
    return moment.astimezone(tz).strftime("%H:%M")


def is_finite_number(value: Any) -> bool:
    """Tell whether a value is a real, finite number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def utf16_len(text: str) -> int:
    """Count UTF-16 code units, the way Telegram measures message length."""
    return len(text.encode("utf-16-le")) // 2


def split_message(lines: Iterable[str], limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Join lines into as few messages as fit `limit`, cutting only between lines.

    A single line longer than the limit is cut hard; callers keep HTML tags within a line.
    """
    chunks: list[str] = []
    current = ""
    for line in lines:
        while utf16_len(line) > limit:
            head = line[: limit // 2]
            line = line[limit // 2 :]
            if current:
                chunks.append(current)
                current = ""
            chunks.append(head)
        candidate = f"{current}\n{line}" if current else line
        if utf16_len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def truncate(text: str, limit: int = 64) -> str:
    """Shorten text to at most `limit` characters, ending with … when cut (before escaping)."""
    if limit < 1:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def fmt_ago(seconds: float | None) -> str:
    """Humanise an age coarsely for chat lines: 45s, 12 min, 3h 05m, 2d 04h."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if 60 <= seconds < 3600:
        return f"{int(seconds // 60)} min"
    return fmt_duration(seconds)
