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

    A sweep's own parameters (`first`) are what differ between its runs, so they lead; after
    them come only values that differ from the project's `usual` ones. Without sweep
    parameters, unset values, switches left off (`hang=False`) and values equal to the
    usual ones are constants, not news.
    """
    flat = flatten_config(config)
    lead = [(k, flat[k]) for k in first if k in flat]
    usual = usual or {}
    if lead:
        led = {k for k, _ in lead}
        return lead + [
            (k, v) for k, v in flat.items() if k not in led and k in usual and usual[k] != v
        ]
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


class RecentConfigs:
    """Remember the configs of each project's latest runs, to know its usual values."""

    def __init__(self, keep: int = 30) -> None:
        """Keep at most `keep` runs per project, the latest seen."""
        self._keep = keep
        self._configs: dict[str, dict[str, Mapping[Any, Any]]] = {}

    def add(self, project: str, runs: Mapping[str, Mapping[Any, Any]]) -> None:
        """Note the configs of runs (path → config) a poll of `project` listed."""
        seen = self._configs.setdefault(project, {})
        for path, config in runs.items():
            seen.pop(path, None)  # seen again: now the latest
            seen[path] = config
        for path in list(seen)[: max(0, len(seen) - self._keep)]:
            del seen[path]

    def usual(self, project: str) -> dict[str, Any]:
        """Return the project's usual parameter values, from the runs remembered."""
        return usual_values(list(self._configs.get(project, {}).values()))
