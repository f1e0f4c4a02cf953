"""A run's hyperparameters as people want to read them: flat, sorted, without W&B's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_INTERNAL_KEYS = frozenset({"wandb_version"})
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


def shown_params(config: Mapping[Any, Any], first: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """Return the parameters worth a line: unset ones dropped, the `first` keys leading.

    A sweep's own parameters are what differ between its runs, so callers that know them
    pass them as `first`.
    """
    flat = {k: v for k, v in flatten_config(config).items() if v is not None}
    lead = [(k, flat[k]) for k in first if k in flat]
    return lead + [(k, v) for k, v in flat.items() if k not in first]
