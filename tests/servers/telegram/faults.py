"""Describe injected faults: what a method answers for its next N calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAULT_KINDS = frozenset(
    {
        "flood",  # 429 Too Many Requests with parameters.retry_after
        "blocked",  # 403 bot was blocked by the user
        "kicked",  # 403 bot was kicked from the group chat
        "migrate",  # 400 group upgraded; the chat stays migrated afterwards
        "conflict",  # 409 terminated by other getUpdates request
        "server_error",  # 5xx with a JSON body
        "non_json",  # 5xx (502 by default) with an HTML body
        "delay",  # sleep before doing anything; a client that gave up gets nothing done
        "slow_response",  # do the work, then sleep before answering (the send happened)
        "bad_request",  # 400 with a given description
    }
)


@dataclass
class Fault:
    """One armed fault: the method (canonical name or ``*``) and how many calls it hits."""

    method: str
    kind: str
    count: int = 1
    chat_id: int | None = None
    retry_after: int = 5
    delay: float = 10.0
    status: int | None = None
    migrate_to_chat_id: int | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")

    def matches(self, method: str, chat_id: int | None) -> bool:
        """Tell whether this fault applies to a call of ``method`` for ``chat_id``."""
        if self.count <= 0:
            return False
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def to_json(self) -> dict[str, Any]:
        """Render the control API's JSON for this fault."""
        return {
            "method": self.method,
            "kind": self.kind,
            "count": self.count,
            "chat_id": self.chat_id,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "status": self.status,
            "migrate_to_chat_id": self.migrate_to_chat_id,
            "description": self.description,
        }
