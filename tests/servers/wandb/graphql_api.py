"""Serve W&B's GraphQL API over the store through graphql-core."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from tests.servers.wandb import filters
from tests.servers.wandb import filters as _filters_mod
from tests.servers.wandb.store import (
    DEFAULT_USERNAME,
    Project,
    Run,
    Store,
    StoreError,
    Sweep,
    b64id,
    console_line,
    iso,
)

SDL_PATH = Path(__file__).with_name("schema.graphql")
VIEWER_NAME = DEFAULT_USERNAME


def build_wandb_schema() -> GraphQLSchema:
    """Build the schema from ``schema.graphql``; custom scalars pass values through as-is."""
    return build_schema(SDL_PATH.read_text())


def operation_name(document: DocumentNode, given: str | None = None) -> str:
    """Return the name of the operation a document runs (``anonymous`` if unnamed)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else None
            if given is None or name == given:
                return name or "anonymous"
    return given or "anonymous"


def root_fields(document: DocumentNode, given: str | None = None) -> int:
    """Return how many top-level fields (aliases included) the operation asks for."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            given is None or (definition.name and definition.name.value == given)
        ):
            return len(definition.selection_set.selections)
    return 0


def _user(entity: str, username: str = VIEWER_NAME) -> dict[str, Any]:
    return {
        "id": b64id("User", username),
        "name": username.title(),
        "username": username,
        "email": f"{username}@example.com",
        "admin": False,
        "flags": "{}",
        "entity": entity,
        "deletedAt": None,
        "photoUrl": None,
        "userInfo": None,
        "defaultFramework": None,
        "apiKeys": {"edges": []},
        "teams": {"edges": []},
    }


def _page(
    items: list[Any], after: str | None, first: int | None
) -> tuple[list[tuple[Any, str]], dict[str, Any]]:
    start = int(after) if after and after.isdigit() else 0
    size = first if first is not None and first > 0 else 50
    chunk = items[start : start + size]
    edges = [(item, str(start + i + 1)) for i, item in enumerate(chunk)]
    info = {
        "startCursor": edges[0][1] if edges else None,
        "endCursor": edges[-1][1] if edges else after,
        "hasNextPage": start + size < len(items),
        "hasPreviousPage": start > 0,
    }
    return edges, info


def _filters(raw: Any) -> dict[str, Any] | None:
    if raw in (None, ""):
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    if value is not None and not isinstance(value, dict):
        raise GraphQLError("filters must be a JSON object")
    return value


class ProjectNode:
    """Resolve ``Project`` fields."""

    def __init__(self, store: Store, project: Project, default_entity: str) -> None:
        self._store = store
        self._project = project
        self._default_entity = default_entity
        self.id = b64id("Project", project.name)
        self.internalId = str(project.internal_id)
        self.name = project.name
        self.entityName = project.entity
        self.entity = {
            "id": b64id("Entity", project.entity),
            "name": project.entity,
            "isTeam": False,
        }
        self.description = None
        self.createdAt = iso(project.created_at)
        self.updatedAt = iso(project.created_at)
        self.isBenchmark = False
        self.readOnly = False
        self.user = None

    def _select(self, raw_filters: Any, order: str | None = "-created_at") -> list[Run]:
        try:
            return self._store.query_runs(self._project, _filters(raw_filters), order)
        except (_filters_mod.FilterError, json.JSONDecodeError) as exc:
            raise GraphQLError(f"invalid filters or order: {exc}") from exc

    def runCount(self, info: GraphQLResolveInfo, filters: Any = None) -> int:
        """Count the runs a filter selects."""
        try:
            return self._store.count_runs(self._project, _filters(filters))
        except (_filters_mod.FilterError, json.JSONDecodeError) as exc:
            raise GraphQLError(f"invalid filters: {exc}") from exc

    def runs(
        self,
        info: GraphQLResolveInfo,
        filters: Any = None,
        after: str | None = None,
        first: int | None = None,
        order: str | None = None,
    ) -> dict[str, Any]:
        """Page through the runs a filter selects."""
        selected = self._select(filters, order)
        edges, page_info = _page(selected, after, first)
        return {
            "edges": [{"node": RunNode(self._store, r), "cursor": c} for r, c in edges],
            "pageInfo": page_info,
            "totalCount": len(selected),
        }

    def run(self, info: GraphQLResolveInfo, name: str) -> RunNode | None:
        """Return one run."""
        found = self._project.runs.get(name)
        return RunNode(self._store, found) if found else None

    def sweep(self, info: GraphQLResolveInfo, sweepName: str) -> SweepNode | None:
        """Return one sweep."""
        found = self._project.sweeps.get(sweepName)
        return SweepNode(self._store, found) if found else None


def _sample(rows: list[dict[str, Any]], samples: int | None) -> list[dict[str, Any]]:
    if samples is None or samples <= 0 or len(rows) <= samples:
        return rows
    if samples == 1:
        return rows[-1:]
    last = len(rows) - 1
    picks = sorted({round(i * last / (samples - 1)) for i in range(samples)})
    return [rows[i] for i in picks]


# W&B caps how many log lines one request returns; the SDK documents that a larger tail
# comes back cut to the newest lines.
LOG_LINES_CAP = 1000


def _json_safe(value: Any) -> Any:
    """Return a history value as W&B's JSON carries it: NaN and infinities as strings.

    These rows travel as JSON objects, not JSON strings, and wandb-core's parser rejects a
    bare NaN, so the value is spelled out as the Python SDK writes it.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


class RunNode:
    """Resolve ``Run`` fields."""

    def __init__(self, store: Store, run: Run) -> None:
        self._store = store
        self._run = run
        proj = store.project(run.entity, run.project, create=False)
        self.id = run.gid
        self.projectId = str(proj.internal_id if proj else 0)
        self.name = run.name
        self.displayName = run.display_name or run.name
        self.tags = list(run.tags)
        self.sweepName = run.sweep
        self.state = run.state
        self.group = run.group
        self.jobType = run.job_type
        self.commit = run.commit
        self.host = run.host
        self.readOnly = False
        self.createdAt = iso(run.created_at)
        self.updatedAt = iso(run.updated_at)
        self.heartbeatAt = iso(run.heartbeat_at)
        self.description = run.description
        self.notes = run.notes
        self.historyLineCount = len(run.history)
        self.exitcode = run.exitcode
        self.shouldStop = run.stop_requested
        self.failed = run.state in ("failed", "crashed")
        self.stopped = run.state == "killed"
        self.running = run.state == "running"
        self.user = {"id": b64id("User", run.user), "name": run.user.title(), "username": run.user}

    def config(self, info: GraphQLResolveInfo) -> str:
        """Return the config as W&B stores it: ``{k: {"value": v}}``, JSON-encoded."""
        return json.dumps(self._run.config)

    def summaryMetrics(self, info: GraphQLResolveInfo) -> str:
        """Return the latest summary, JSON-encoded."""
        return json.dumps(self._run.summary)

    def systemMetrics(self, info: GraphQLResolveInfo) -> str:
        """Return the latest system metrics, JSON-encoded."""
        return json.dumps(self._run.system_metrics)

    def historyKeys(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        """Describe the run's history keys and last step."""
        return self._run.history_keys()

    def history(
        self,
        info: GraphQLResolveInfo,
        samples: int | None = None,
        minStep: int | None = None,
        maxStep: int | None = None,
    ) -> list[str]:
        """Return history rows as JSON lines (minStep inclusive, maxStep exclusive)."""
        rows = [
            row
            for i, row in enumerate(self._run.history)
            if (minStep is None or row.get("_step", i) >= minStep)
            and (maxStep is None or row.get("_step", i) < maxStep)
        ]
        return [json.dumps(row) for row in _sample(rows, samples)]

    def events(self, info: GraphQLResolveInfo, samples: int | None = None) -> list[str]:
        """Return system-metric rows as JSON lines."""
        return [json.dumps(row) for row in _sample(self._run.events, samples)]

    def sampledHistory(
        self, info: GraphQLResolveInfo, specs: list[str]
    ) -> list[list[dict[str, Any]]]:
        """Return, per spec, the history rows holding every key (min/maxStep inclusive)."""
        out: list[list[dict[str, Any]]] = []
        for raw in specs:
            spec = json.loads(raw) if isinstance(raw, str) else raw
            keys = list(dict.fromkeys(spec.get("keys") or []))
            lo, hi = spec.get("minStep"), spec.get("maxStep")
            rows = []
            for i, row in enumerate(self._run.history):
                step = row.get("_step", i)
                if (lo is not None and step < lo) or (hi is not None and step > hi):
                    continue
                if keys and not all(k in row for k in keys):
                    continue
                picked = {k: row[k] for k in keys} if keys else dict(row)
                rows.append({k: _json_safe(v) for k, v in picked.items()})
            out.append(_sample(rows, spec.get("samples")))
        return out

    def logLineCount(self, info: GraphQLResolveInfo) -> int:
        """Return how many console lines the run has streamed."""
        return len(self._run.console)

    def logLines(
        self,
        info: GraphQLResolveInfo,
        last: int | None = None,
        first: int | None = None,
        after: str | None = None,
        useImprovedPagination: bool | None = None,
    ) -> dict[str, Any]:
        """Return console lines: the newest `last` (what `console_logs(last=N)` asks, one
        request), or `first` lines after a cursor (the line number, opaque to the SDK)."""
        lines = [console_line(i, raw) for i, raw in enumerate(self._run.console)]
        if last is not None:
            page, more = lines[max(0, len(lines) - min(last, LOG_LINES_CAP)) :], False
        else:
            start = int(after) + 1 if after and after.isdigit() else 0
            size = min(first or LOG_LINES_CAP, LOG_LINES_CAP)
            page, more = lines[start : start + size], start + size < len(lines)
        return {
            "edges": [{"node": line} for line in page],
            "pageInfo": {
                "startCursor": str(page[0]["number"]) if page else None,
                "endCursor": str(page[-1]["number"]) if page else None,
                "hasNextPage": more,
                "hasPreviousPage": bool(page) and page[0]["number"] > 0,
            },
        }

    def parquetHistory(self, info: GraphQLResolveInfo, liveKeys: list[str]) -> dict[str, Any]:
        """Serve all history as live data (no parquet files)."""
        return {"parquetUrls": [], "liveData": [dict(row) for row in self._run.history]}

    def project(self, info: GraphQLResolveInfo) -> ProjectNode | None:
        """Return the run's project."""
        proj = self._store.project(self._run.entity, self._run.project, create=False)
        return ProjectNode(self._store, proj, self._run.entity) if proj else None

    def sweep(self, info: GraphQLResolveInfo) -> SweepNode | None:
        """Return the run's sweep."""
        if not self._run.sweep:
            return None
        found = self._store.sweep(self._run.entity, self._run.project, self._run.sweep)
        return SweepNode(self._store, found) if found else None


class SweepNode:
    """Resolve ``Sweep`` fields."""

    def __init__(self, store: Store, sweep: Sweep) -> None:
        self._store = store
        self._sweep = sweep
        self.id = sweep.gid
        self.name = sweep.name
        self.displayName = sweep.display_name or sweep.name
        self.method = sweep.method
        self.state = sweep.state
        self.description = sweep.description
        self.config = sweep.config_yaml
        self.createdAt = iso(sweep.created_at)
        self.updatedAt = iso(sweep.updated_at)
        self.heartbeatAt = iso(sweep.updated_at)
        self.runCount = len(sweep.run_names)
        self.runCountExpected = sweep.expected_runs()
        self.earlyStopJobRunning = False
        self.controller = None
        self.scheduler = None

    def bestLoss(self, info: GraphQLResolveInfo) -> float | None:
        """Return the best metric value among the sweep's runs."""
        return self._store.best_metric(self._sweep)

    def project(self, info: GraphQLResolveInfo) -> ProjectNode | None:
        """Return the sweep's project."""
        proj = self._store.project(self._sweep.entity, self._sweep.project, create=False)
        return ProjectNode(self._store, proj, self._sweep.entity) if proj else None

    def runs(
        self,
        info: GraphQLResolveInfo,
        first: int | None = None,
        after: str | None = None,
        order: str | None = None,
    ) -> dict[str, Any]:
        """Page through the sweep's runs."""
        runs = filters.sort_runs(
            self._store.sweep_runs(self._sweep), Run.doc, order or "+created_at"
        )
        edges, page_info = _page(runs, after, first or len(runs) or 1)
        return {
            "edges": [{"node": RunNode(self._store, r), "cursor": c} for r, c in edges],
            "pageInfo": page_info,
            "totalCount": len(runs),
        }


class Root:
    """Resolve the root Query and Mutation fields."""

    def __init__(
        self, store: Store, default_entity: str, base_url: str, user: str = VIEWER_NAME
    ) -> None:
        self.store = store
        self.default_entity = default_entity
        self.base_url = base_url
        self.user = user

    # Query
    def viewer(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        """Return the user the request's API key belongs to."""
        return _user(self.default_entity, self.user)

    def project(
        self, info: GraphQLResolveInfo, name: str | None = None, entityName: str | None = None
    ) -> ProjectNode | None:
        """Return a project by entity and name."""
        entity = entityName or self.default_entity
        proj = self.store.project(entity, name, create=False)
        return ProjectNode(self.store, proj, entity) if proj else None

    def models(
        self,
        info: GraphQLResolveInfo,
        entityName: str | None = None,
        after: str | None = None,
        first: int | None = None,
    ) -> dict[str, Any]:
        """Page through an entity's projects."""
        entity = entityName or self.default_entity
        projects = self.store.projects_of(entity)
        edges, page_info = _page(projects, after, first)
        return {
            "edges": [{"node": ProjectNode(self.store, p, entity), "cursor": c} for p, c in edges],
            "pageInfo": page_info,
        }

    projects = models

    def entity(self, info: GraphQLResolveInfo, name: str | None = None) -> dict[str, Any]:
        """Return an entity."""
        entity = name or self.default_entity
        return {"id": b64id("Entity", entity), "name": entity, "isTeam": False}

    # Mutation
    def upsertBucket(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        """Create or update a run."""
        data = dict(input)
        data["entityName"] = data.get("entityName") or self.default_entity
        run, inserted = self.store.upsert_run(data, self.user)
        return {"bucket": RunNode(self.store, run), "inserted": inserted}

    def upsertSweep(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        """Create a sweep, or change an existing sweep's state."""
        if input.get("id"):
            sweep = self.store.sweep_by_gid(str(input["id"]))
            if input.get("state"):
                self.store.set_sweep_state(sweep, str(input["state"]))
            if input.get("description") is not None:
                sweep.description = input["description"]
            return {
                "sweep": SweepNode(self.store, sweep),
                "inserted": False,
                "configValidationWarnings": [],
            }
        if not input.get("config"):
            raise GraphQLError("a new sweep needs a config")
        sweep = self.store.create_sweep(
            input.get("entityName") or self.default_entity,
            input.get("projectName"),
            str(input["config"]),
            state=str(input.get("state") or "RUNNING"),
            description=input.get("description"),
            display_name=input.get("displayName"),
        )
        return {
            "sweep": SweepNode(self.store, sweep),
            "inserted": True,
            "configValidationWarnings": [],
        }

    def createAgent(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        """Register a sweep agent."""
        agent = self.store.create_agent(
            input.get("entityName") or self.default_entity,
            input.get("projectName"),
            input["sweep"],
            input["host"],
        )
        return {
            "agent": {"id": agent.gid, "name": agent.gid, "host": agent.host, "state": "RUNNING"}
        }

    def agentHeartbeat(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        """Answer an agent heartbeat with its commands."""
        raw = input.get("runState")
        run_state = json.loads(raw) if isinstance(raw, str) and raw else {}
        commands = self.store.agent_heartbeat(str(input["id"]), run_state or {})
        return {"agent": {"id": input["id"], "state": "RUNNING"}, "commands": json.dumps(commands)}

    def stopRun(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        """Ask a run to stop."""
        self.store.stop_run(str(input["id"]))
        return {"success": True}

    def createRunFiles(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        """Hand out upload URLs for run files."""
        entity, project, name = input["entityName"], input["projectName"], input["runName"]
        run = self.store.create_run_files(entity, project, name)
        return {
            "runID": b64id("Run", run.name),
            "uploadHeaders": [],
            "files": [
                {"name": f, "uploadUrl": f"{self.base_url}/upload/{entity}/{project}/{name}/{f}"}
                for f in input["files"]
            ],
        }


class GraphQLService:
    """Parse, validate and execute W&B GraphQL requests against a store."""

    def __init__(self, store: Store, default_entity: str) -> None:
        self.schema = build_wandb_schema()
        self.store = store
        self.default_entity = default_entity
        self.base_url = ""
        self._cache: OrderedDict[str, DocumentNode | list[GraphQLError]] = OrderedDict()

    def document(self, query: str) -> DocumentNode | list[GraphQLError]:
        """Parse and validate a document (cached); return it or its errors."""
        cached = self._cache.get(query)
        if cached is not None:
            self._cache.move_to_end(query)
            return cached
        try:
            doc: DocumentNode | list[GraphQLError] = parse(query)
        except GraphQLError as exc:
            doc = [exc]
        if not isinstance(doc, list):
            errors = validate(self.schema, doc)
            if errors:
                doc = list(errors)
        self._cache[query] = doc
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        return doc

    def execute(
        self,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        operation: str | None,
        user: str = VIEWER_NAME,
    ) -> dict[str, Any]:
        """Execute a validated document as `user` and return the JSON response body."""
        root = Root(self.store, self.default_entity, self.base_url, user)
        with self.store.lock:
            result = execute(
                self.schema,
                document,
                root_value=root,
                variable_values=dict(variables or {}),
                operation_name=operation,
            )
        assert not hasattr(result, "__await__")
        body: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
        if result.errors:  # type: ignore[union-attr]
            body["errors"] = [_error(e) for e in result.errors]  # type: ignore[union-attr]
        return body


def _error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    message = str(original) if isinstance(original, StoreError) else error.message
    out: dict[str, Any] = {"message": message}
    if error.path:
        out["path"] = list(error.path)
    return out
