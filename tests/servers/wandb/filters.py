"""Evaluate W&B's MongoDB-style run filters and orders over plain run documents.

A run document is a dict with the keys ``state``, ``createdAt``, ``updatedAt``,
``heartbeatAt`` (datetimes), ``name``, ``displayName``, ``tags`` (a list), ``sweep``,
``group``, ``jobType``, ``config`` (``{k: {"value": v}}``) and ``summary`` (a dict).
This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

T = TypeVar("T")


class FilterError(ValueError):
    """Raised for a filter or order W&B would reject."""


class _Missing:
    """Stand for a field a run does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

TIME_FIELDS: Final = frozenset({"createdAt", "updatedAt", "heartbeatAt"})
_ALIASES: Final = {
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "heartbeat_at": "heartbeatAt",
    "display_name": "displayName",
    "job_type": "jobType",
    "sweepName": "sweep",
    "summaryMetrics": "summary_metrics",
}
_PLAIN_FIELDS: Final = frozenset(
    {"state", "name", "displayName", "tags", "sweep", "group", "jobType", *TIME_FIELDS}
)
_OPERATORS: Final = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$not"}
)


@functools.lru_cache(maxsize=1024)
def _parse_iso(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"invalid time value {value!r}") from exc


def parse_time(value: Any) -> datetime:
    """Parse an ISO-8601 string (with or without ``Z``) into an aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = _parse_iso(value)
    else:
        raise FilterError(f"time values must be ISO-8601 strings, got {value!r}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _dig(value: Any, path: Sequence[str]) -> Any:
    for part in path:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def field_value(doc: Mapping[str, Any], field: str) -> Any:
    """Return the value a filter field names in a run document, or ``MISSING``."""
    field = _ALIASES.get(field, field)
    if field in _PLAIN_FIELDS:
        value = doc.get(field, MISSING)
        return MISSING if value is None else value
    head, _, rest = field.partition(".")
    if head == "config" and rest:
        parts = rest.split(".")
        # `config.k` and `config.k.value` both mean the value of k.
        if len(parts) > 1 and parts[-1] == "value":
            parts = parts[:-1]
        entry = _dig(doc.get("config") or {}, parts[:1])
        if entry is MISSING:
            return MISSING
        value = entry.get("value", MISSING) if isinstance(entry, Mapping) else entry
        value = _dig(value, parts[1:])
    elif head in ("summary_metrics", "summary") and rest:
        value = _dig(doc.get("summary") or {}, rest.split("."))
    else:
        raise FilterError(f"unknown filter field {field!r}")
    return MISSING if value is None else value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime):
        return "time"
    return "other"


def _coerce(field: str, operand: Any) -> Any:
    if _ALIASES.get(field, field) in TIME_FIELDS and operand is not None:
        return parse_time(operand)
    return operand


def _equal(value: Any, operand: Any) -> bool:
    if value is MISSING:
        return operand is None
    if isinstance(value, list) and not isinstance(operand, list):
        return any(_equal(item, operand) for item in value)
    if _kind(value) != _kind(operand):
        return False
    return bool(value == operand)


def _compare(value: Any, operand: Any, op: Callable[[Any, Any], bool]) -> bool:
    if value is MISSING:
        return False
    if isinstance(value, list):
        return any(_compare(item, operand, op) for item in value)
    kind = _kind(value)
    if kind not in ("number", "str", "time") or kind != _kind(operand):
        return False
    return op(value, operand)


def _regex(value: Any, pattern: Any) -> bool:
    if not isinstance(pattern, str):
        raise FilterError("$regex needs a string")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise FilterError(f"invalid $regex {pattern!r}") from exc
    if isinstance(value, list):
        return any(isinstance(item, str) and compiled.search(item) for item in value)
    return isinstance(value, str) and compiled.search(value) is not None


def _apply(field: str, value: Any, op: str, raw: Any) -> bool:
    if op == "$not":
        if not isinstance(raw, Mapping):
            raise FilterError("$not needs an operator object")
        return not _field_matches(field, value, raw)
    if op == "$exists":
        return (value is not MISSING) == bool(raw)
    if op == "$regex":
        return _regex(value, raw)
    if op in ("$in", "$nin"):
        if not isinstance(raw, list):
            raise FilterError(f"{op} needs a list")
        found = any(_equal(value, _coerce(field, item)) for item in raw)
        return found if op == "$in" else not found
    operand = _coerce(field, raw)
    if op == "$eq":
        return _equal(value, operand)
    if op == "$ne":
        return not _equal(value, operand)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }
    if op in comparisons:
        return _compare(value, operand, comparisons[op])
    raise FilterError(f"unknown operator {op!r}")


def _field_matches(field: str, value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping) and any(str(k).startswith("$") for k in condition):
        for op, raw in condition.items():
            if op not in _OPERATORS:
                raise FilterError(f"unknown operator {op!r}")
            if not _apply(field, value, op, raw):
                return False
        return True
    return _apply(field, value, "$eq", condition)


def matches(doc: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Tell whether a run document satisfies a MongoDB-style filter."""
    if not flt:
        return True
    if not isinstance(flt, Mapping):
        raise FilterError("a filter must be an object")
    for key, condition in flt.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list):
                raise FilterError(f"{key} needs a list")
            results = (matches(doc, sub) for sub in condition)
            if key == "$and" and not all(results):
                return False
            if key == "$or" and not any(results):
                return False
            if key == "$nor" and any(results):
                return False
        elif key.startswith("$"):
            raise FilterError(f"unknown top-level operator {key!r}")
        elif not _field_matches(key, field_value(doc, key), condition):
            return False
    return True


def validate(flt: Any) -> None:
    """Raise ``FilterError`` if a filter is malformed, without any run to test."""
    matches(
        {"config": {}, "summary": {}, "tags": []},
        flt if isinstance(flt, Mapping) else {"$and": [flt]},
    )


def order_field(order: str | None) -> tuple[str, bool]:
    """Split an order such as ``-summary_metrics.acc`` into (field, descending)."""
    order = (order or "-created_at").strip()
    descending = order.startswith("-")
    name = order.lstrip("+-").strip() or "created_at"
    name = _ALIASES.get(name, name)
    if name not in _PLAIN_FIELDS:
        head, _, rest = name.partition(".")
        if head not in ("config", "summary_metrics", "summary") or not rest:
            raise FilterError(f"unknown order {order!r}")
    return name, descending


def _sort_key(value: Any) -> tuple[int, Any]:
    kind = _kind(value)
    rank = {"bool": 0, "number": 1, "str": 2, "time": 3}.get(kind, 4)
    if kind == "bool":
        return rank, int(value)
    if kind in ("number", "str", "time"):
        return rank, value
    return rank, repr(value)


def sort_runs(
    items: Iterable[T], doc_of: Callable[[T], Mapping[str, Any]], order: str | None
) -> list[T]:
    """Order runs like W&B: runs lacking the key come last in both directions; stable."""
    name, descending = order_field(order)
    present: list[tuple[tuple[int, Any], T]] = []
    missing: list[T] = []
    for item in items:
        value = field_value(doc_of(item), name)
        if value is MISSING or isinstance(value, list | dict):
            missing.append(item)
        else:
            present.append((_sort_key(value), item))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [item for _, item in present] + missing
