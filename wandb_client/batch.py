"""Build and read one GraphQL document that lists the changed runs of several projects."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wandb_client.snapshots import format_time

OPERATION = "ProjectsRuns"

# The fields `run_snapshot` reads, a subset of the SDK's own RunFragment (systemMetrics and
# historyKeys are left out: large, and nothing the poll needs).
RUN_FIELDS = """
fragment PolledRunFragment on Run {
    id
    tags
    name
    displayName
    sweepName
    state
    config
    group
    jobType
    commit
    createdAt
    heartbeatAt
    summaryMetrics
    historyLineCount
    user {
        name
        username
    }
}
"""

_ALIAS = """
    p{i}: project(name: $name{i}, entityName: $entity{i}) {{
        runs(filters: $filters{i}, after: $cursor{i}, first: $perPage, order: $order) {{
            edges {{ node {{ ...PolledRunFragment }} }}
            pageInfo {{ endCursor hasNextPage }}
        }}
    }}"""


@dataclass(frozen=True, slots=True)
class ChangedRunsQuery:
    """Ask for one project's changed runs, with the same filter as `changed_runs`."""

    entity: str
    project: str
    since: datetime | None
    also: tuple[str, ...] = ()


def changed_filter(since: datetime | None, also: Sequence[str]) -> dict[str, Any] | None:
    """Return the filter of a poll: updated after `since`, running, or named in `also`.

    None (every run) when `since` is None.
    """
    if since is None:
        return None
    either: list[dict[str, Any]] = [
        {"updatedAt": {"$gt": format_time(since)}},
        {"state": "running"},
    ]
    if also:
        either.append({"name": {"$in": sorted(set(also))}})
    return {"$or": either}


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One project's next page inside a batched document."""

    query: ChangedRunsQuery
    cursor: str | None = None


def build_document(pages: Sequence[PageRequest]) -> str:
    """Return one document with an aliased `project { runs }` field per page request."""
    params = ", ".join(
        f"$name{i}: String!, $entity{i}: String!, $filters{i}: JSONString, $cursor{i}: String"
        for i in range(len(pages))
    )
    body = "".join(_ALIAS.format(i=i) for i in range(len(pages)))
    return (
        f"query {OPERATION}({params}, $perPage: Int!, $order: String!) {{{body}\n}}\n{RUN_FIELDS}"
    )


def build_variables(pages: Sequence[PageRequest], per_page: int, order: str) -> dict[str, Any]:
    """Return the variables that go with `build_document(pages)`."""
    variables: dict[str, Any] = {"perPage": per_page, "order": order}
    for i, page in enumerate(pages):
        q = page.query
        filters = changed_filter(q.since, q.also)
        variables[f"name{i}"] = q.project
        variables[f"entity{i}"] = q.entity
        # W&B takes JSONString arguments as JSON text, as the SDK sends them.
        variables[f"filters{i}"] = json.dumps(filters) if filters is not None else None
        variables[f"cursor{i}"] = page.cursor
    return variables


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one alias answered: its runs' attributes and the cursor of a next page."""

    found: bool
    nodes: tuple[Mapping[str, Any], ...] = ()
    next_cursor: str | None = None


def read_response(data: Mapping[str, Any] | None, count: int) -> list[PageResult]:
    """Split a batched answer into one result per alias, in the order they were asked."""
    out: list[PageResult] = []
    for i in range(count):
        project = (data or {}).get(f"p{i}")
        if not isinstance(project, Mapping):
            # W&B answers `project: null` for a project that does not exist (yet).
            out.append(PageResult(found=False))
            continue
        runs = project.get("runs") or {}
        nodes = tuple(
            edge["node"]
            for edge in runs.get("edges") or ()
            if isinstance(edge, Mapping) and isinstance(edge.get("node"), Mapping)
        )
        info = runs.get("pageInfo") or {}
        more = bool(info.get("hasNextPage")) and bool(nodes)
        out.append(PageResult(True, nodes, str(info["endCursor"]) if more else None))
    return out
