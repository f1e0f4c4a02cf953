"""Turn the attribute dicts the W&B SDK holds into the client's typed snapshots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

from wandb_client.models import Goal, RunSnapshot, SweepSnapshot

# Keys W&B keeps in a run's config for itself; they are not hyperparameters.
INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})


def parse_time(value: Any) -> datetime | None:
    """Parse a W&B timestamp (ISO-8601, naive means UTC) into an aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value.strip():
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    else:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format a datetime as the ISO-8601 UTC string W&B filters accept, floored to seconds.

    Flooring widens a `$gt` window by under a second: a run is reported twice rather
    than missed.
    """
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str | bytes | bytearray) and value:
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return dict(loaded) if isinstance(loaded, Mapping) else {}
    return {}


def unwrap_config(raw: Any) -> dict[str, Any]:
    """Return a run's hyperparameters: `{k: {"value": v}}` unwrapped, W&B's own keys dropped."""
    config: dict[str, Any] = {}
    for key, value in _as_dict(raw).items():
        if key in INTERNAL_CONFIG_KEYS:
            continue
        if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
            config[key] = value["value"]
        else:
            config[key] = value
    return config


def _git_info(attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    raw = _as_dict(attrs.get("rawconfig")) or _as_dict(attrs.get("config"))
    internal = raw.get("_wandb")
    if isinstance(internal, Mapping) and "value" in internal:
        internal = internal["value"]
    git = internal.get("git") if isinstance(internal, Mapping) else None
    git = git if isinstance(git, Mapping) else {}
    commit = attrs.get("commit") or git.get("commit")
    branch = git.get("branch")
    return (str(commit) if commit else None, str(branch) if branch else None)


def run_snapshot(
    attrs: Mapping[str, Any], *, entity: str, project: str, ui_url: str
) -> RunSnapshot:
    """Build a RunSnapshot from a run's GraphQL attributes, raw or as the SDK processed them."""
    run_id = str(attrs["name"])
    created = parse_time(attrs.get("createdAt")) or datetime.fromtimestamp(0, UTC)
    commit, branch = _git_info(attrs)
    history_lines = attrs.get("historyLineCount")
    tags = attrs.get("tags") or ()
    host = attrs.get("host")
    return RunSnapshot(
        entity=entity,
        project=project,
        id=run_id,
        display_name=str(attrs.get("displayName") or run_id),
        state=str(attrs.get("state") or "unknown").lower(),
        url=f"{ui_url.rstrip('/')}/{entity}/{project}/runs/{run_id}",
        created_at=created,
        updated_at=parse_time(attrs.get("updatedAt")),
        heartbeat_at=parse_time(attrs.get("heartbeatAt")),
        sweep=str(attrs["sweepName"]) if attrs.get("sweepName") else None,
        tags=tuple(str(t) for t in tags),
        config=unwrap_config(attrs.get("config")),
        summary=_as_dict(attrs.get("summaryMetrics")),
        host=str(host) if host else None,
        git_commit=commit,
        git_branch=branch,
        history_line_count=int(history_lines) if isinstance(history_lines, int) else None,
        graphql_id=str(attrs["id"]) if attrs.get("id") else None,
        group=str(attrs["group"]) if attrs.get("group") else None,
        user=_username(attrs.get("user")),
    )


def _username(user: Any) -> str | None:
    """Return the username of a run's `user { username }`, None when W&B gave none."""
    name = user.get("username") if isinstance(user, Mapping) else None
    return str(name) if name else None


def _sweep_config(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str) and raw.strip():
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError:
            return {}
        return dict(loaded) if isinstance(loaded, Mapping) else {}
    return {}


def sweep_objective(config: Mapping[str, Any]) -> tuple[str | None, Goal | None]:
    """Return the metric a sweep optimises and its goal (W&B's default goal: minimize)."""
    metric = config.get("metric")
    if not isinstance(metric, Mapping) or not metric.get("name"):
        return None, None
    goal: Goal = "maximize" if str(metric.get("goal", "")).lower() == "maximize" else "minimize"
    return str(metric["name"]), goal


def sweep_snapshot(
    attrs: Mapping[str, Any], *, entity: str, project: str, sweep_id: str, ui_url: str
) -> SweepSnapshot:
    """Build a SweepSnapshot from a sweep's GraphQL attributes."""
    config = _sweep_config(attrs.get("config"))
    metric, goal = sweep_objective(config)
    cap = attrs.get("runCountExpected")
    if cap is None and isinstance(config.get("run_cap"), int):
        cap = config["run_cap"]
    name = str(attrs.get("name") or sweep_id)
    return SweepSnapshot(
        entity=entity,
        project=project,
        id=name,
        display_name=str(attrs.get("displayName") or config.get("name") or name),
        state=str(attrs.get("state") or "unknown").lower(),
        method=str(attrs.get("method") or config.get("method") or "unknown"),
        url=f"{ui_url.rstrip('/')}/{entity}/{project}/sweeps/{name}",
        config=config,
        run_count=int(attrs.get("runCount") or 0),
        run_cap=int(cap) if isinstance(cap, int) else None,
        metric=metric,
        goal=goal,
        created_at=parse_time(attrs.get("createdAt")),
        graphql_id=str(attrs["id"]) if attrs.get("id") else None,
    )
