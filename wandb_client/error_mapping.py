"""Translate what the W&B SDK and its command line raise or print into the client's errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

from wandb_client.errors import (
    WandbAuthError,
    WandbError,
    WandbNotFoundError,
    WandbRequestError,
    WandbUnavailableError,
)

_AUTH_STATUSES = frozenset({401, 403})
_UNAVAILABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_AUTH_WORDS = re.compile(
    r"\b(401|403)\b|unauthori[sz]ed|forbidden|permission|api[ _-]?key|credential|"
    r"relogin|not logged in|authenticat",
    re.IGNORECASE,
)
_NOT_FOUND_WORDS = re.compile(
    r"\b404\b|could not find|not found|does not exist|no such", re.IGNORECASE
)
_UNAVAILABLE_WORDS = re.compile(
    r"did not respond in time|timed? ?out|\b(429|500|502|503|504)\b|rate limit|"
    r"too many requests|connection (refused|reset|error|aborted)|unreachable|"
    r"service process is not running|temporarily unavailable|bad gateway",
    re.IGNORECASE,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_status(exc: BaseException) -> int | None:
    for err in _causes(exc):
        response = getattr(err, "response", None)
        status = getattr(response, "http_status", None) or getattr(response, "status_code", None)
        if isinstance(status, int) and status > 0:
            return status
    return None


def error_class(text: str, status: int | None = None) -> type[WandbError]:
    """Return the client error class that an HTTP status or an error text stands for."""
    if status in _AUTH_STATUSES:
        return WandbAuthError
    if status == 404:
        return WandbNotFoundError
    if status in _UNAVAILABLE_STATUSES or (status is not None and status >= 500):
        return WandbUnavailableError
    # Order matters: wandb-core words an unreachable server as a failed credential check.
    if _UNAVAILABLE_WORDS.search(text):
        return WandbUnavailableError
    if _AUTH_WORDS.search(text):
        return WandbAuthError
    if _NOT_FOUND_WORDS.search(text):
        return WandbNotFoundError
    return WandbRequestError


def redact(text: str, secret: str | None) -> str:
    """Return `text` with `secret` blanked out."""
    return text.replace(secret, "***") if secret else text


def map_error(exc: BaseException, what: str, *, secret: str | None = None) -> WandbError:
    """Translate an SDK or transport exception into the client's own error."""
    if isinstance(exc, WandbError):
        return exc
    text = redact(" | ".join(f"{type(e).__name__}: {e}" for e in _causes(exc)), secret)
    if any(isinstance(e, TimeoutError | ConnectionError) for e in _causes(exc)):
        return WandbUnavailableError(f"{what}: {text}")
    return error_class(text, _http_status(exc))(f"{what}: {text}")


_WORDS: tuple[tuple[type[WandbError], str], ...] = (
    (WandbNotFoundError, "not found in W&B (a project appears with its first run)"),
    (WandbAuthError, "W&B refused the API key"),
    (WandbUnavailableError, "W&B did not answer"),
)


def in_words(error: WandbError | str) -> str:
    """Say in a few plain words what an error (or its stored text) means for the user."""
    kind = type(error) if isinstance(error, WandbError) else error_class(error)
    return next(
        (words for cls, words in _WORDS if issubclass(kind, cls)), "W&B refused the request"
    )
