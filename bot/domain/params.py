"""A run's hyperparameters as people want to read them: flat, sorted, without W&B's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_INTERNAL_KEYS = frozenset({"wandb_version"})
USUAL_MIN_RUNS = 3
_WRAPPER_KEYS = frozenset({"value", "desc"})


def flatten_config(config: Mapping[Any, Any]) -> dict[str, Any]:
    """Flatten a W&B run config into sorted dotted keys, without W&B's own entries."""
    flat: dict[str, Any] = {}
    _flatten_into(flat, "", config)
    return dict(sorted(flat.items()))


def _flatten_into(flat: dict[str, Any], prefix: str, config: Mapping[Any, Any]) -> None:
    for raw_key, raw_value in config.items():
        key = str(raw_key)
        if key.startswith("_") or key in _INTERNAL_KEYS:
            continue
        value = unwrap(raw_value)
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            _flatten_into(flat, f"{name}.", value)
        else:
            flat[name] = value


def unwrap(value: Any) -> Any:
    """Return a config value without W&B's `{"value": v, "desc": d}` wrapper."""
    if isinstance(value, Mapping) and "value" in value and set(value) <= _WRAPPER_KEYS:
        return value["value"]
    return value


def shown_params(
    config: Mapping[Any, Any],
    first: Sequence[str] = (),
    usual: Mapping[str, Any] | None = None,
) -> list[tuple[str, Any]]:
    """Return the parameters that tell this run apart: the `first` keys, then the rest that vary.

    A sweep's own parameters (`first`) are what differ between its runs, so they lead and,
    when known, are all there is. Of the rest, unset values, switches left off (`hang=False`)
    and values equal to the project's `usual` ones are constants, not news.
    """
    flat = flatten_config(config)
    lead = [(k, flat[k]) for k in first if k in flat]
    if lead:
        return lead
    usual = usual or {}
    return [
        (k, v)
        for k, v in flat.items()
        if v is not None and v is not False and not (k in usual and usual[k] == v)
    ]


def usual_values(configs: Sequence[Mapping[Any, Any]], share: float = 0.6) -> dict[str, Any]:
    """Return each parameter's value shared by most of these runs (at least three of them)."""
    if len(configs) < USUAL_MIN_RUNS:
        return {}
    counts: dict[str, dict[str, tuple[Any, int]]] = {}
    for config in configs:
        for key, value in flatten_config(config).items():
            seen = counts.setdefault(key, {})
            tag = repr(value)
            seen[tag] = (value, seen.get(tag, (value, 0))[1] + 1)
    usual = {}
    for key, seen in counts.items():
        value, n = max(seen.values(), key=lambda item: item[1])
        if n >= share * len(configs):
            usual[key] = value
    return usual
