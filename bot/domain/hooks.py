"""What a W&B automation webhook names: the project to poll now, and nothing more."""

from __future__ import annotations

import json
from dataclasses import dataclass

# W&B project and entity names: letters, digits, dashes, underscores and dots.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class HookPayloadError(ValueError):
    """The webhook's body does not name a project."""


@dataclass(frozen=True, slots=True)
class HookRequest:
    """A project a webhook asks the bot to poll; `entity` is None for the lab's default."""

    entity: str | None
    project: str
    event: str


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise HookPayloadError(f"{field}: expected a W&B name")
    if not set(value) <= _NAME_CHARS:
        raise HookPayloadError(f"{field}: not a W&B name")
    return value


def parse_hook(body: bytes) -> HookRequest:
    """Read the project (and entity) a webhook body names.

    The README's payload template sends `project` and `entity` (filled by W&B's
    `${project_name}` and `${entity_name}`); `project_name`/`entity_name` are taken too.
    The project may also come as `entity/project`.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookPayloadError("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise HookPayloadError("the body is not a JSON object")
    project = data.get("project", data.get("project_name"))
    entity = data.get("entity", data.get("entity_name"))
    if isinstance(project, str) and "/" in project and entity is None:
        entity, project = project.split("/", 1)
    event = data.get("event_type", data.get("event", ""))
    return HookRequest(
        entity=_name(entity, "entity") if entity not in (None, "") else None,
        project=_name(project, "project"),
        event=event if isinstance(event, str) else "",
    )
