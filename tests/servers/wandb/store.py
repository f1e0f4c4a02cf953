"""Keep the in-memory W&B model: projects, runs, sweeps and agents, with W&B's state rules."""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from tests.servers.wandb import filters

DEFAULT_ENTITY = "lab"
DEFAULT_PROJECT = "uncategorized"
# Who an API key belongs to when no test named its user.
DEFAULT_USERNAME = "me"
RUN_STATES = frozenset({"pending", "running", "finished", "failed", "crashed", "killed"})
TERMINAL_STATES = frozenset({"finished", "failed", "crashed", "killed"})
SWEEP_STATES = frozenset({"PENDING", "RUNNING", "PAUSED", "FINISHED", "CANCELED", "FAILED"})
_ID_ALPHABET = string.ascii_lowercase + string.digits

NextParams = Callable[
    [dict[str, Any], list[tuple[dict[str, Any], float | None]], random.Random],
    "dict[str, Any] | None",
]

STARTUP_GRACE_S = 60.0


def record_console(run: Run, stream: Any) -> None:
    """Apply an `output.log` file_stream chunk: lines from `offset` on, overwriting as W&B does.

    The SDK resends a line at its old offset when a carriage return rewrote it (progress bars).
    """
    if not isinstance(stream, Mapping):
        return
    offset = int(stream.get("offset") or 0)
    for i, line in enumerate(stream.get("content") or []):
        index = offset + i
        if index < len(run.console):
            run.console[index] = str(line)
        else:
            run.console.extend([""] * (index - len(run.console)))
            run.console.append(str(line))


_CONSOLE_LINE = re.compile(
    r"^(?P<error>ERROR )?(?P<ts>\d{4}-\d\d-\d\dT[\d:.]+)(?: (?P<text>.*))?$", re.S
)


def console_line(number: int, raw: str) -> dict[str, Any]:
    """Split a streamed console line into W&B's log-line fields (stderr lines are "error")."""
    m = _CONSOLE_LINE.match(raw)
    if m is None:
        return {"number": number, "timestamp": None, "level": "", "label": "", "line": raw}
    return {
        "number": number,
        "timestamp": m["ts"],
        "level": "error" if m["error"] else "",
        "label": "",
        "line": m["text"] or "",
    }


class StoreError(ValueError):
    """Raised when a request names something that does not exist or is invalid."""


def b64id(kind: str, key: str) -> str:
    """Return W&B's GraphQL id for an object: base64 of ``Kind:key``."""
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def decode_id(gid: str) -> tuple[str, str]:
    """Split a GraphQL id into (kind, key)."""
    try:
        kind, _, key = base64.b64decode(gid.encode(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"invalid id {gid!r}") from exc
    return kind, key


def iso(dt: datetime | None) -> str | None:
    """Format a datetime as W&B does: naive UTC ISO-8601 (microseconds when non-zero)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat()


def new_id(rng: random.Random, length: int = 8) -> str:
    """Return a fresh lowercase alphanumeric id such as W&B's run and sweep names."""
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(length))


def wrap_config(plain: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{k: v}`` into W&B's stored config ``{k: {"value": v, "desc": None}}``."""
    return {k: {"value": v, "desc": None} for k, v in plain.items()}


@dataclass
class Project:
    """A W&B project."""

    entity: str
    name: str
    internal_id: int
    created_at: datetime
    runs: dict[str, Run] = field(default_factory=dict)
    sweeps: dict[str, Sweep] = field(default_factory=dict)


@dataclass
class Run:
    """A W&B run as the server stores it."""

    entity: str
    project: str
    name: str
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime
    display_name: str | None = None
    state: str = "running"
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    system_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    sweep: str | None = None
    group: str | None = None
    job_type: str | None = None
    notes: str | None = None
    description: str | None = None
    host: str | None = None
    program: str | None = None
    commit: str | None = None
    exitcode: int | None = None
    stop_requested: bool = False
    last_seen: float | None = None
    streamed: bool = False
    # The username of the API key that created the run (W&B's `Run.user`).
    user: str = DEFAULT_USERNAME
    files: dict[str, bytes] = field(default_factory=dict)
    # output.log as the SDK streams it: one entry per console line, "[ERROR ]<iso> text".
    console: list[str] = field(default_factory=list)

    @property
    def gid(self) -> str:
        """Return the run's GraphQL id."""
        return b64id("Run", f"{self.entity}/{self.project}/{self.name}")

    @property
    def path(self) -> str:
        """Return ``entity/project/name``."""
        return f"{self.entity}/{self.project}/{self.name}"

    def doc(self) -> dict[str, Any]:
        """Return the document filters and orders look at."""
        return {
            "state": self.state,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "heartbeatAt": self.heartbeat_at,
            "name": self.name,
            "displayName": self.display_name or self.name,
            "tags": self.tags,
            "sweep": self.sweep,
            "group": self.group,
            "jobType": self.job_type,
            "config": self.config,
            "summary": self.summary,
        }

    def history_keys(self) -> dict[str, Any]:
        """Return W&B's ``historyKeys`` object: lastStep and per-key type counts."""
        counts: dict[str, dict[str, int]] = {}
        last_step = -1
        for i, row in enumerate(self.history):
            step = row.get("_step", i)
            if isinstance(step, int | float):
                last_step = max(last_step, int(step))
            for key, value in row.items():
                kind = "number" if isinstance(value, int | float) else type(value).__name__
                counts.setdefault(key, {}).setdefault(kind, 0)
                counts[key][kind] += 1
        return {
            "lastStep": last_step,
            "keys": {
                k: {"typeCounts": [{"type": t, "count": c} for t, c in v.items()]}
                for k, v in counts.items()
            },
        }

    def as_dict(self) -> dict[str, Any]:
        """Return the run as stored, JSON-ready (the control API's view)."""
        return {
            "id": self.gid,
            "entity": self.entity,
            "project": self.project,
            "name": self.name,
            "displayName": self.display_name or self.name,
            "state": self.state,
            "config": self.config,
            "summary": self.summary,
            "history": self.history,
            "tags": self.tags,
            "sweep": self.sweep,
            "group": self.group,
            "jobType": self.job_type,
            "notes": self.notes,
            "exitcode": self.exitcode,
            "stopRequested": self.stop_requested,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "heartbeatAt": iso(self.heartbeat_at),
            "files": sorted(self.files),
            "user": self.user,
        }


@dataclass
class Sweep:
    """A W&B sweep and the server-side controller state that drives it."""

    entity: str
    project: str
    name: str
    config_yaml: str
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    state: str = "RUNNING"
    description: str | None = None
    display_name: str | None = None
    run_names: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)  # run id -> agent id
    pending_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    exhausted: bool = False
    rng: random.Random = field(default_factory=random.Random)

    @property
    def gid(self) -> str:
        """Return the sweep's GraphQL id."""
        return b64id("Sweep", f"{self.entity}/{self.project}/{self.name}")

    @property
    def method(self) -> str | None:
        """Return the search method from the config."""
        method = self.config.get("method")
        return str(method) if method is not None else None

    @property
    def run_cap(self) -> int | None:
        """Return the config's ``run_cap``, if any."""
        cap = self.config.get("run_cap")
        return int(cap) if isinstance(cap, int | float) and cap > 0 else None

    def expected_runs(self) -> int | None:
        """Return how many runs the sweep will have: the grid size or the run cap."""
        cap = self.run_cap
        if self.method == "grid":
            size = grid_size(self.config.get("parameters") or {})
            if size is not None:
                return min(size, cap) if cap else size
        return cap


@dataclass
class Agent:
    """A registered sweep agent."""

    gid: str
    entity: str
    project: str
    sweep: str
    host: str
    created_at: datetime
    heartbeat_at: datetime
    runs: list[str] = field(default_factory=list)


def grid_size(parameters: Mapping[str, Any]) -> int | None:
    """Return the number of grid points, or None when a parameter is not discrete."""
    size = 1
    for spec in parameters.values():
        if not isinstance(spec, Mapping):
            return None
        if "values" in spec:
            size *= len(spec["values"])
        elif "value" not in spec:
            return None
    return size


def _fallback_next_params(
    config: dict[str, Any], runs: list[tuple[dict[str, Any], float | None]], rng: random.Random
) -> dict[str, Any] | None:
    """Choose grid or random parameters (used only until ``sweeps.next_params`` exists)."""
    parameters: dict[str, Any] = config.get("parameters") or {}
    if config.get("method") == "grid":
        names = list(parameters)
        choices = [
            parameters[n]["values"] if "values" in parameters[n] else [parameters[n]["value"]]
            for n in names
        ]
        used = [json.dumps(p, sort_keys=True) for p, _ in runs]
        for combo in itertools.product(*choices):
            candidate = dict(zip(names, combo, strict=True))
            if json.dumps(candidate, sort_keys=True) not in used:
                return candidate
        return None
    chosen: dict[str, Any] = {}
    for name, spec in parameters.items():
        if "value" in spec:
            chosen[name] = spec["value"]
        elif "values" in spec:
            chosen[name] = rng.choice(spec["values"])
        elif isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
            chosen[name] = rng.randint(spec["min"], spec["max"])
        else:
            chosen[name] = rng.uniform(float(spec.get("min", 0)), float(spec.get("max", 1)))
    return chosen


def _engine() -> NextParams:
    try:
        from tests.servers.wandb.sweeps import next_params
    except ImportError:
        return _fallback_next_params
    return next_params  # type: ignore[no-any-return]


def _parse_json(raw: Any, what: str) -> Any:
    if raw is None or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{what} is not valid JSON") from exc


class Store:
    """Hold every W&B object in memory; every public method is thread-safe."""

    def __init__(self, heartbeat_timeout: float = 120.0, seed: int | None = None) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._last_now = datetime.fromtimestamp(0, UTC)
        self.version = 0
        self.reset()

    # ---- basics -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every project, run, sweep and agent."""
        with self.lock:
            self.version += 1
            self._query_cache: dict[tuple[str, str, str, str | None], tuple[int, list[Run]]] = {}
            self.projects: dict[tuple[str, str], Project] = {}
            self.agents: dict[str, Agent] = {}
            self._agent_numbers = itertools.count(1)
            # API key → username; a key not named here belongs to DEFAULT_USERNAME.
            self.users: dict[str, str] = {}

    def username(self, api_key: str | None) -> str:
        """Return the user an API key belongs to."""
        return self.users.get(api_key or "", DEFAULT_USERNAME)

    def now(self) -> datetime:
        """Return the current UTC time, strictly later than any earlier call."""
        self.version += 1
        current = datetime.now(UTC)
        if current <= self._last_now:
            current = self._last_now + timedelta(microseconds=1)
        self._last_now = current
        return current

    def project(self, entity: str | None, name: str | None, create: bool = True) -> Project | None:
        """Return a project, creating it when asked."""
        key = (entity or DEFAULT_ENTITY, name or DEFAULT_PROJECT)
        with self.lock:
            found = self.projects.get(key)
            if found is None and create:
                found = Project(key[0], key[1], len(self.projects) + 1, self.now())
                self.projects[key] = found
            return found

    def projects_of(self, entity: str | None) -> list[Project]:
        """List the projects of an entity in creation order."""
        with self.lock:
            return [p for (e, _), p in self.projects.items() if e == (entity or DEFAULT_ENTITY)]

    def run(self, entity: str | None, project: str | None, name: str) -> Run | None:
        """Return a run or None."""
        proj = self.project(entity, project, create=False)
        return proj.runs.get(name) if proj else None

    def run_by_gid(self, gid: str) -> Run:
        """Return the run a GraphQL id names."""
        kind, key = decode_id(gid)
        parts = key.split("/")
        if kind != "Run" or len(parts) != 3:
            raise StoreError(f"not a run id: {gid!r}")
        found = self.run(*parts)
        if found is None:
            raise StoreError(f"run {key} not found")
        return found

    def sweep(self, entity: str | None, project: str | None, name: str) -> Sweep | None:
        """Return a sweep or None."""
        proj = self.project(entity, project, create=False)
        return proj.sweeps.get(name) if proj else None

    def touch(self, run: Run) -> None:
        """Record that a run changed."""
        run.updated_at = self.now()

    # ---- runs ---------------------------------------------------------------------

    def upsert_run(self, data: Mapping[str, Any], user: str = DEFAULT_USERNAME) -> tuple[Run, bool]:
        """Create or update a run from an UpsertBucket input; return (run, inserted).

        A new run belongs to `user`, the owner of the key that created it.
        """
        with self.lock:
            if data.get("id"):
                run = self.run_by_gid(str(data["id"]))
                proj = self.project(run.entity, run.project)
                assert proj is not None
                inserted = False
            else:
                proj = self.project(data.get("entityName"), data.get("modelName"))
                assert proj is not None
                name = data.get("name") or new_id(self._rng)
                existing = proj.runs.get(name)
                inserted = existing is None
                if existing is None:
                    now = self.now()
                    existing = Run(proj.entity, proj.name, name, now, now, now, user=user)
                    existing.last_seen = time.monotonic()
                    proj.runs[name] = existing
                run = existing
            config = _parse_json(data.get("config"), "config")
            if isinstance(config, dict):
                run.config = config
            summary = _parse_json(data.get("summaryMetrics"), "summaryMetrics")
            if isinstance(summary, dict):
                run.summary.update(summary)
            simple = {
                "displayName": "display_name",
                "groupName": "group",
                "jobType": "job_type",
                "notes": "notes",
                "description": "description",
                "host": "host",
                "jobProgram": "program",
                "commit": "commit",
            }
            for key, attr in simple.items():
                if data.get(key) is not None:
                    setattr(run, attr, data[key])
            if data.get("tags") is not None:
                run.tags = list(data["tags"])
            if data.get("state") in RUN_STATES:
                run.state = str(data["state"])
            sweep_name = data.get("sweep")
            if sweep_name and run.sweep != sweep_name:
                run.sweep = str(sweep_name)
                sweep = proj.sweeps.get(run.sweep)
                if sweep is not None and run.name not in sweep.run_names:
                    sweep.run_names.append(run.name)
                    sweep.pending.pop(run.name, None)
                    sweep.pending_params.pop(run.name, None)
                    sweep.updated_at = self.now()
            self.touch(run)
            return run, inserted

    def file_stream(
        self, entity: str, project: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply one file_stream POST to a run and return the reply the SDK expects."""
        with self.lock:
            proj = self.project(entity, project)
            assert proj is not None
            run = proj.runs.get(name)
            if run is None:
                now = self.now()
                run = Run(proj.entity, proj.name, name, now, now, now)
                proj.runs[name] = run
            changed = False
            files = body.get("files") or {}
            history = files.get("wandb-history.jsonl")
            if isinstance(history, Mapping):
                offset = int(history.get("offset") or 0)
                for i, line in enumerate(history.get("content") or []):
                    row = json.loads(line)
                    index = offset + i
                    if index < len(run.history):
                        run.history[index] = row
                    else:
                        run.history.append(row)
                    changed = True
            summary = files.get("wandb-summary.json")
            if isinstance(summary, Mapping) and summary.get("content"):
                run.summary = json.loads(summary["content"][-1])
                changed = True
            record_console(run, files.get("output.log"))
            events = files.get("wandb-events.jsonl")
            if isinstance(events, Mapping):
                for line in events.get("content") or []:
                    row = json.loads(line)
                    run.events.append(row)
                    run.system_metrics = row
            run.heartbeat_at = self.now()
            run.last_seen = time.monotonic()
            run.streamed = True
            if body.get("complete"):
                exitcode = body.get("exitcode")
                run.exitcode = int(exitcode) if exitcode is not None else 0
                if run.stop_requested:
                    run.state = "killed"
                else:
                    run.state = "finished" if run.exitcode == 0 else "failed"
                changed = True
                self._after_run_ended(proj, run)
            elif run.state in ("running", "pending", "crashed"):
                changed = changed or run.state != "running"
                run.state = "running"
            if changed:
                self.touch(run)
            reply: dict[str, Any] = {"exitcode": None, "limits": {}}
            if run.stop_requested:
                reply["stopped"] = True
            return reply

    def create_run_files(self, entity: str, project: str, name: str) -> Run:
        """Return the run whose files are about to be uploaded, creating it if needed."""
        with self.lock:
            run = self.run(entity, project, name)
            if run is None:
                run, _ = self.upsert_run({"entityName": entity, "modelName": project, "name": name})
            return run

    def store_file(
        self, entity: str, project: str, name: str, filename: str, content: bytes
    ) -> None:
        """Keep an uploaded run file."""
        with self.lock:
            run = self.run(entity, project, name)
            if run is not None:
                run.files[filename] = content

    def stop_run(self, gid: str) -> Run:
        """Flag a run so its next file_stream reply (and agent heartbeat) stops it."""
        with self.lock:
            run = self.run_by_gid(gid)
            if run.state not in TERMINAL_STATES:
                run.stop_requested = True
                self.touch(run)
            return run

    def set_run_state(self, entity: str, project: str, name: str, state: str) -> Run:
        """Force a run's state (control API)."""
        if state not in RUN_STATES:
            raise StoreError(f"unknown state {state!r}")
        with self.lock:
            run = self.run(entity, project, name)
            if run is None:
                raise StoreError(f"run {entity}/{project}/{name} not found")
            run.state = state
            if state == "running":
                run.last_seen = time.monotonic()
            self.touch(run)
            if state in TERMINAL_STATES:
                proj = self.project(entity, project)
                assert proj is not None
                self._after_run_ended(proj, run)
            return run

    def check_heartbeats(self) -> list[Run]:
        """Mark running runs silent for longer than the timeout crashed (killed if stopped)."""
        now = time.monotonic()
        limit = now - self.heartbeat_timeout
        # A run that has not streamed yet is still starting (imports, wandb-core): on a
        # busy machine that can outlast a short test timeout, so it gets a grace period.
        starting_limit = now - max(self.heartbeat_timeout, STARTUP_GRACE_S)
        ended: list[Run] = []
        with self.lock:
            for proj in self.projects.values():
                for run in proj.runs.values():
                    if (
                        run.state == "running"
                        and run.last_seen is not None
                        and run.last_seen < (limit if run.streamed else starting_limit)
                    ):
                        run.state = "killed" if run.stop_requested else "crashed"
                        self.touch(run)
                        ended.append(run)
                        self._after_run_ended(proj, run)
        return ended

    def query_runs(
        self, proj: Project, flt: Mapping[str, Any] | None, order: str | None
    ) -> list[Run]:
        """Return a project's runs matching a filter, in the requested order."""
        key = (proj.entity, proj.name, json.dumps(flt, sort_keys=True, default=str), order)
        with self.lock:
            cached = self._query_cache.get(key)
            if cached is not None and cached[0] == self.version:
                return cached[1]
            pairs = [(r, r.doc()) for r in proj.runs.values()]
            selected = [pair for pair in pairs if filters.matches(pair[1], flt)]
            result = [r for r, _ in filters.sort_runs(selected, lambda pair: pair[1], order)]
            # Paging re-asks the same query page after page: remember it until anything changes.
            self._query_cache[key] = (self.version, result)
            if len(self._query_cache) > 32:
                self._query_cache.pop(next(iter(self._query_cache)))
            return result

    def count_runs(self, proj: Project, flt: Mapping[str, Any] | None) -> int:
        """Count a project's runs matching a filter."""
        with self.lock:
            if not flt:
                return len(proj.runs)
            return len(self.query_runs(proj, flt, None))

    # ---- sweeps -------------------------------------------------------------------

    def create_sweep(
        self,
        entity: str | None,
        project: str | None,
        config_yaml: str,
        name: str | None = None,
        state: str = "RUNNING",
        description: str | None = None,
        display_name: str | None = None,
    ) -> Sweep:
        """Create a sweep from its YAML (or JSON) config."""
        try:
            config = yaml.safe_load(config_yaml) or {}
        except yaml.YAMLError as exc:
            raise StoreError(f"invalid sweep config: {exc}") from exc
        if not isinstance(config, dict):
            raise StoreError("a sweep config must be a mapping")
        with self.lock:
            proj = self.project(entity, project)
            assert proj is not None
            sweep_name = name or new_id(self._rng)
            now = self.now()
            sweep = Sweep(
                proj.entity,
                proj.name,
                sweep_name,
                config_yaml,
                config,
                now,
                now,
                state=state.upper(),
                description=description,
                display_name=display_name,
                rng=random.Random(self._rng.random()),
            )
            proj.sweeps[sweep_name] = sweep
            for run in proj.runs.values():
                if run.sweep == sweep_name and run.name not in sweep.run_names:
                    sweep.run_names.append(run.name)
            return sweep

    def sweep_by_gid(self, gid: str) -> Sweep:
        """Return the sweep a GraphQL id names."""
        kind, key = decode_id(gid)
        parts = key.split("/")
        if kind != "Sweep" or len(parts) != 3:
            raise StoreError(f"not a sweep id: {gid!r}")
        found = self.sweep(*parts)
        if found is None:
            raise StoreError(f"sweep {key} not found")
        return found

    def set_sweep_state(self, sweep: Sweep, state: str) -> None:
        """Change a sweep's state; cancelling stops its live runs."""
        state = state.upper()
        if state not in SWEEP_STATES:
            raise StoreError(f"unknown sweep state {state!r}")
        with self.lock:
            sweep.state = state
            sweep.updated_at = self.now()
            if state == "CANCELED":
                for run in self.sweep_runs(sweep):
                    if run.state == "running":
                        run.stop_requested = True
                        self.touch(run)

    def sweep_runs(self, sweep: Sweep) -> list[Run]:
        """Return the runs that belong to a sweep, oldest first."""
        with self.lock:
            proj = self.project(sweep.entity, sweep.project)
            assert proj is not None
            return [proj.runs[n] for n in sweep.run_names if n in proj.runs]

    def best_metric(self, sweep: Sweep) -> float | None:
        """Return the best value of the sweep's metric over its runs."""
        metric = sweep.config.get("metric") or {}
        name = metric.get("name")
        if not name:
            return None
        values = [
            float(v)
            for r in self.sweep_runs(sweep)
            if isinstance(v := r.summary.get(name), int | float) and not isinstance(v, bool)
        ]
        values = [v for v in values if not math.isnan(v)]
        if not values:
            return None
        return max(values) if metric.get("goal") == "maximize" else min(values)

    def _sweep_history(self, sweep: Sweep) -> list[tuple[dict[str, Any], float | None]]:
        names = list((sweep.config.get("parameters") or {}).keys())
        metric = (sweep.config.get("metric") or {}).get("name")
        out: list[tuple[dict[str, Any], float | None]] = []
        for run in self.sweep_runs(sweep):
            params = {}
            for n in names:
                entry = run.config.get(n)
                params[n] = entry.get("value") if isinstance(entry, dict) else entry
            value = run.summary.get(metric) if metric else None
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            out.append((params, float(value) if ok else None))  # type: ignore[arg-type]
        out.extend((dict(p), None) for p in sweep.pending_params.values())
        return out

    def _live_count(self, sweep: Sweep) -> int:
        running = sum(1 for r in self.sweep_runs(sweep) if r.state in ("running", "pending"))
        return running + len(sweep.pending)

    def _maybe_finish(self, sweep: Sweep) -> None:
        if sweep.state != "RUNNING":
            return
        cap = sweep.run_cap
        capped = cap is not None and len(sweep.run_names) + len(sweep.pending) >= cap
        if (sweep.exhausted or capped) and self._live_count(sweep) == 0:
            sweep.state = "FINISHED"
            sweep.updated_at = self.now()

    def _after_run_ended(self, proj: Project, run: Run) -> None:
        if run.sweep and run.sweep in proj.sweeps:
            sweep = proj.sweeps[run.sweep]
            sweep.updated_at = self.now()
            self._maybe_finish(sweep)

    # ---- agents -------------------------------------------------------------------

    def create_agent(
        self, entity: str | None, project: str | None, sweep_name: str, host: str
    ) -> Agent:
        """Register an agent for a sweep."""
        with self.lock:
            sweep = self.sweep(entity, project, sweep_name)
            if sweep is None:
                raise StoreError(f"sweep {sweep_name} not found")
            now = self.now()
            gid = b64id("Agent", str(next(self._agent_numbers)))
            agent = Agent(gid, sweep.entity, sweep.project, sweep.name, host, now, now)
            self.agents[gid] = agent
            return agent

    def agent_heartbeat(self, gid: str, run_state: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Answer an agent heartbeat with its commands: run, stop, exit, or nothing."""
        with self.lock:
            agent = self.agents.get(gid)
            if agent is None:
                raise StoreError(f"agent {gid} not found")
            agent.heartbeat_at = self.now()
            sweep = self.sweep(agent.entity, agent.project, agent.sweep)
            if sweep is None:
                raise StoreError(f"sweep {agent.sweep} not found")
            proj = self.project(agent.entity, agent.project)
            assert proj is not None
            live = {rid for rid, alive in run_state.items() if alive}
            for rid, owner in list(sweep.pending.items()):
                if owner == gid and rid not in live and rid not in proj.runs:
                    # The agent's process died before wandb.init: the slot is free again.
                    del sweep.pending[rid]
                    sweep.pending_params.pop(rid, None)
            commands: list[dict[str, Any]] = []
            for rid in sorted(live):
                run = proj.runs.get(rid)
                if sweep.state == "CANCELED" or (run is not None and run.stop_requested):
                    commands.append({"type": "stop", "run_id": rid})
            if sweep.state == "CANCELED":
                return commands or [{"type": "exit"}]
            if sweep.state == "FINISHED":
                return [] if live else [{"type": "exit"}]
            if sweep.state != "RUNNING" or live:
                return commands
            cap = sweep.run_cap
            if cap is not None and len(sweep.run_names) + len(sweep.pending) >= cap:
                self._maybe_finish(sweep)
                return [{"type": "exit"}]
            params = _engine()(sweep.config, self._sweep_history(sweep), sweep.rng)
            if params is None:
                sweep.exhausted = True
                self._maybe_finish(sweep)
                return [{"type": "exit"}]
            run_id = new_id(self._rng)
            while run_id in proj.runs or run_id in sweep.pending:
                run_id = new_id(self._rng)
            sweep.pending[run_id] = gid
            sweep.pending_params[run_id] = dict(params)
            sweep.updated_at = self.now()
            agent.runs.append(run_id)
            return [
                {
                    "type": "run",
                    "run_id": run_id,
                    "runqueue_item_id": None,
                    "program": sweep.config.get("program"),
                    "args": {k: {"value": v} for k, v in params.items()},
                }
            ]

    # ---- seeding ------------------------------------------------------------------

    def seed(self, spec: Mapping[str, Any]) -> dict[str, int]:
        """Bulk-create projects, sweeps and runs (see README for the JSON shape)."""
        counts = {"projects": 0, "sweeps": 0, "runs": 0}
        with self.lock:
            for p in spec.get("projects") or []:
                self.project(p.get("entity"), p.get("name"))
                counts["projects"] += 1
            for s in spec.get("sweeps") or []:
                config = s.get("config") or {}
                text = (
                    config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
                )
                sweep = self.create_sweep(
                    s.get("entity"),
                    s.get("project"),
                    text,
                    name=s.get("name"),
                    state=s.get("state", "RUNNING"),
                )
                if s.get("createdAt"):
                    sweep.created_at = filters.parse_time(s["createdAt"])
                counts["sweeps"] += 1
            for r in spec.get("runs") or []:
                self._seed_run(r)
                counts["runs"] += 1
            generate = spec.get("generate")
            for gen in [generate] if isinstance(generate, Mapping) else (generate or []):
                counts["runs"] += self._generate(gen)
        return counts

    def _seed_run(self, r: Mapping[str, Any]) -> Run:
        proj = self.project(r.get("entity"), r.get("project"))
        assert proj is not None
        now = self.now()
        created = filters.parse_time(r["createdAt"]) if r.get("createdAt") else now
        updated = filters.parse_time(r["updatedAt"]) if r.get("updatedAt") else max(created, now)
        heartbeat = filters.parse_time(r["heartbeatAt"]) if r.get("heartbeatAt") else created
        name = r.get("name") or new_id(self._rng)
        state = r.get("state", "finished")
        if state not in RUN_STATES:
            raise StoreError(f"unknown state {state!r}")
        run = Run(
            proj.entity,
            proj.name,
            name,
            created,
            updated,
            heartbeat,
            display_name=r.get("displayName"),
            state=state,
            config=wrap_config(r.get("config") or {}),
            summary=dict(r.get("summary") or {}),
            history=[dict(row) for row in r.get("history") or []],
            console=[str(line) for line in r.get("console") or []],
            tags=list(r.get("tags") or []),
            sweep=r.get("sweep"),
            group=r.get("group"),
            job_type=r.get("jobType"),
            notes=r.get("notes"),
            user=str(r.get("user") or DEFAULT_USERNAME),
        )
        if r.get("live"):
            run.last_seen = time.monotonic()
            run.streamed = True
        proj.runs[name] = run
        if run.sweep and run.sweep in proj.sweeps and name not in proj.sweeps[run.sweep].run_names:
            proj.sweeps[run.sweep].run_names.append(name)
        return run

    def _generate(self, gen: Mapping[str, Any]) -> int:
        count = int(gen.get("count", 0))
        rng = random.Random(gen.get("seed", 0))
        start = filters.parse_time(gen.get("start", "2026-01-01T00:00:00"))
        step = timedelta(seconds=float(gen.get("stepSeconds", 60)))
        states: list[str] = list(gen.get("states") or ["finished"])
        prefix = str(gen.get("prefix", "gen"))
        metric = str(gen.get("metric", "accuracy"))
        for i in range(count):
            created = start + i * step
            self._seed_run(
                {
                    "entity": gen.get("entity"),
                    "project": gen.get("project"),
                    "name": f"{prefix}{i:06d}",
                    "displayName": f"{prefix}-{i}",
                    "state": states[i % len(states)],
                    "createdAt": created,
                    "updatedAt": created + step / 2,
                    "heartbeatAt": created + step / 2,
                    "config": {"lr": rng.choice([0.001, 0.01, 0.1]), "depth": rng.randint(1, 10)},
                    "summary": {metric: rng.random(), "loss": rng.random()},
                    "tags": rng.sample(["a", "b", "c"], rng.randint(0, 2)),
                    "sweep": gen.get("sweep"),
                }
            )
        return count

    def dump_sweep(self, sweep: Sweep) -> dict[str, Any]:
        """Return a sweep as stored, JSON-ready (the control API's view)."""
        with self.lock:
            return {
                "id": sweep.gid,
                "entity": sweep.entity,
                "project": sweep.project,
                "name": sweep.name,
                "state": sweep.state,
                "config": sweep.config,
                "runs": list(sweep.run_names),
                "pending": sorted(sweep.pending),
                "runCount": len(sweep.run_names),
                "createdAt": iso(sweep.created_at),
                "updatedAt": iso(sweep.updated_at),
            }

    def all_runs(self) -> Iterable[Run]:
        """Iterate over every run of every project."""
        with self.lock:
            return [r for p in self.projects.values() for r in p.runs.values()]
