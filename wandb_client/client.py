"""Ask W&B about runs and sweeps through the official SDK, off the event loop and bounded."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from wandb_client import sweep_control
from wandb_client.batch import (
    ChangedRunsQuery,
    PageRequest,
    PageResult,
    build_document,
    build_variables,
    changed_filter,
    read_response,
)
from wandb_client.error_mapping import map_error
from wandb_client.errors import (
    WandbAuthError,
    WandbError,
    WandbNotFoundError,
    WandbRequestError,
    WandbUnavailableError,
)
from wandb_client.models import (
    ConsoleLine,
    Goal,
    HistoryRow,
    RunPage,
    RunSnapshot,
    SweepSnapshot,
)
from wandb_client.processes import wandb_env
from wandb_client.snapshots import run_snapshot, sweep_snapshot
from wandb_client.sweep_control import SweepAction

log = logging.getLogger(__name__)

# wandb 0.31's own `Run._sampled_history` document, with as many specs as metrics.
SAMPLED_HISTORY = """
query RunSampledHistory($project: String!, $entity: String!, $name: String!, $specs: [JSONString!]!) {
    project(name: $project, entityName: $entity) {
        run(name: $name) { sampledHistory(specs: $specs) }
    }
}
"""

T = TypeVar("T")

# The SDK gives up after `timeout`; the margin lets its own error arrive before ours.
TIMEOUT_MARGIN_S = 2.0
# Full-fragment pages are heavy (config + summary per run); 200 keeps one page well under
# a megabyte for typical runs while an ordinary poll still fits in one request.
POLL_PAGE_SIZE = 200
POLL_ORDER = "+created_at"
# New steps of one metric since the last poll; more than this between polls is sampled.
HISTORY_SAMPLES = 1000
HISTORY_QUERY = """
query RunHistorySince($project: String!, $entity: String!, $name: String!, $specs: [JSONString!]!) {
    project(name: $project, entityName: $entity) {
        run(name: $name) { sampledHistory(specs: $specs) }
    }
}
"""

ChangedRuns = list[RunSnapshot] | WandbError
"""One project's answer in a batched listing: its changed runs, or why there are none."""


@dataclass(frozen=True, slots=True)
class ClientHealth:
    """Report how the client's recent calls to W&B went."""

    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    sdk_calls: int
    subprocess_calls: int
    # Failed calls so far by error class name (WandbUnavailableError, ...), for metrics.
    errors: Mapping[str, int] = field(default_factory=dict)


def _take(iterator: Iterator[T], n: int) -> list[T]:
    # islice stops after n items without asking for an n+1st: no request for a next page.
    return list(itertools.islice(iterator, n))


@dataclass(frozen=True, slots=True)
class _RunPath:
    """The part of a public-API `Run` that its console reader uses."""

    entity: str
    project: str
    id: str


def _points(rows: Any, key: str) -> list[tuple[int, float]]:
    """Return (step, value) pairs of one sampled-history spec, numbers only, by step."""
    points = []
    for row in rows or []:
        if not isinstance(row, Mapping):
            continue
        step, value = row.get("_step"), row.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(step, int | float):
            points.append((int(step), float(value)))
    return sorted(points)


def _next_page(iterator: Iterator[T], n: int, _api: Any) -> list[T]:
    return _take(iterator, n)


def _execute_pages(pages: Sequence[PageRequest], api: Any) -> list[PageResult]:
    execute = graphql_transport(api)
    data = execute(build_document(pages), build_variables(pages, POLL_PAGE_SIZE, POLL_ORDER))
    return read_response(data, len(pages))


def graphql_transport(api: Any) -> Callable[[str, Mapping[str, Any]], Any]:
    """Return the SDK's own GraphQL call (through wandb-core: same auth, retries, timeout).

    `Api._service_api.execute_graphql` is not public API; the wandb version is pinned and
    a test fails if a new one moves it. Without it, batched listings fall back to one
    request per project.
    """
    execute = getattr(getattr(api, "_service_api", None), "execute_graphql", None)
    if not callable(execute):
        raise WandbRequestError("this wandb has no Api._service_api.execute_graphql")
    return execute  # type: ignore[no-any-return]


class WandbSession:
    """Hold one W&B session: the SDK in worker threads, timeouts, errors and health."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        default_entity: str | None = None,
        ui_url: str | None = None,
        timeout: float = 30.0,
        concurrency: int = 4,
        subprocess_env: Mapping[str, str] | None = None,
        batch_size: int = 25,
        margin: float = TIMEOUT_MARGIN_S,
    ) -> None:
        """Keep the settings; the SDK is built on first use, in a worker thread.

        `margin` is how much longer than `timeout` a call may take before we give up on it:
        the SDK's own error arrives first, and the first call also starts wandb-core.
        """
        self._api_key = api_key
        self._base_url = base_url.rstrip("/") if base_url else None
        self._default_entity = default_entity
        self._ui_url = (ui_url or self._base_url or "https://wandb.ai").rstrip("/")
        self._timeout = float(timeout)
        self._margin = margin
        self._concurrency = max(1, concurrency)
        self._batch_size = max(1, batch_size)
        self._subprocess_extra = dict(subprocess_env or {})
        self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="wandb-api")
        self._slots = asyncio.Semaphore(self._concurrency)
        self._api: Any = None
        self._api_lock = asyncio.Lock()
        self._closed = False
        self._last_success_at: datetime | None = None
        self._last_error: str | None = None
        self._consecutive_failures = 0
        self._sdk_calls = 0
        self._subprocess_calls = 0
        self._errors: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"WandbClient(base_url={self._base_url!r}, entity={self._default_entity!r})"

    @property
    def health(self) -> ClientHealth:
        """Return the client's health record."""
        return ClientHealth(
            last_success_at=self._last_success_at,
            last_error=self._last_error,
            consecutive_failures=self._consecutive_failures,
            sdk_calls=self._sdk_calls,
            subprocess_calls=self._subprocess_calls,
            errors=dict(self._errors),
        )

    @property
    def ui_url(self) -> str:
        """Return the base of the links to runs and sweeps."""
        return self._ui_url

    def subprocess_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the environment a `wandb` child process needs to act as this client."""
        return wandb_env(self._api_key, self._base_url, {**self._subprocess_extra, **(extra or {})})

    # -- plumbing -----------------------------------------------------------------------

    def _record_success(self) -> None:
        self._last_success_at = datetime.now(UTC)
        self._consecutive_failures = 0
        self._last_error = None

    def _record_failure(self, error: WandbError) -> None:
        self._consecutive_failures += 1
        self._errors[type(error).__name__] += 1
        self._last_error = f"{type(error).__name__}: {error}"

    async def _in_thread(self, fn: Callable[[], T], what: str) -> T:
        """Run one blocking SDK call in a worker thread, bounded in number and time."""
        if self._closed:
            raise WandbRequestError(f"{what}: the client is closed")
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        self._sdk_calls += 1
        future = loop.run_in_executor(self._executor, functools.partial(ctx.run, fn))

        def _done(fut: asyncio.Future[T]) -> None:
            # The slot frees when the thread does, not when the caller stops waiting: a
            # call that timed out still holds its connection until the SDK lets go.
            self._slots.release()
            if not fut.cancelled():
                fut.exception()

        future.add_done_callback(_done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout + self._margin)
        except TimeoutError as exc:
            raise WandbUnavailableError(
                f"{what}: W&B did not answer within {self._timeout:.0f} s"
            ) from exc

    async def _sdk(self, what: str, fn: Callable[[Any], T]) -> T:
        """Call `fn(api)` in a thread, map its errors and keep the health record."""
        try:
            api = await self._ensure_api()
            result = await self._in_thread(lambda: fn(api), what)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = map_error(exc, what, secret=self._api_key)
            if isinstance(error, WandbNotFoundError):
                # W&B answered; what was asked for does not exist (yet). Not trouble.
                self._record_success()
                log.debug("W&B: %s", error)
            else:
                self._record_failure(error)
                log.warning("W&B call failed: %s", error)
            raise error from exc
        self._record_success()
        return result

    async def _ensure_api(self) -> Any:
        if self._api is not None:
            return self._api
        async with self._api_lock:
            if self._api is None:
                self._api = await self._in_thread(self._build_api, "connect to W&B")
        return self._api

    def _build_api(self) -> Any:
        import wandb

        overrides: dict[str, Any] = {}
        if self._base_url:
            overrides["base_url"] = self._base_url
        if self._default_entity:
            # Without it, every path parse asks W&B for the viewer's default entity once.
            overrides["entity"] = self._default_entity
        # An explicit key is checked with the server and never written to ~/.netrc.
        return wandb.Api(
            api_key=self._api_key, overrides=overrides, timeout=max(1, round(self._timeout))
        )

    # -- reading --------------------------------------------------------------------------

    async def viewer(self) -> str:
        """Return the entity (user name) the API key belongs to."""

        def call(api: Any) -> str:
            viewer = api.viewer
            name = getattr(viewer, "entity", None) or getattr(viewer, "username", None)
            if not name:
                raise WandbAuthError("W&B returned no viewer for this API key")
            return str(name)

        return await self._sdk("viewer", call)

    @property
    def _subprocess_timeout(self) -> float:
        # A child pays for interpreter and wandb-core start-up before its first request.
        return self._timeout + 30.0

    async def _subprocess(self, what: str, call: Awaitable[T]) -> T:
        self._subprocess_calls += 1
        try:
            result = await call
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = map_error(exc, what, secret=self._api_key)
            self._record_failure(error)
            log.warning("W&B command failed: %s", error)
            raise error from exc
        self._record_success()
        return result

    async def close(self) -> None:
        """Release the SDK and the worker threads; calls after this fail."""
        self._closed = True
        self._api = None
        self._executor.shutdown(wait=False, cancel_futures=True)


class HistoryReads(WandbSession):
    """Read what runs logged: history by key, sampled new steps, console output."""

    async def history(
        self,
        entity: str,
        project: str,
        run_id: str,
        keys: Sequence[str] | None = None,
        samples: int = 500,
    ) -> list[HistoryRow]:
        """Return up to `samples` sampled history rows of a run, ordered by step."""
        path = f"{entity}/{project}/{run_id}"

        def call(api: Any) -> list[HistoryRow]:
            api.flush()
            run = api.run(path)
            rows = run.history(keys=list(keys) if keys else None, samples=samples, pandas=False)
            result: list[HistoryRow] = []
            for row in rows or []:
                if not isinstance(row, Mapping):
                    continue
                step = row.get("_step")
                values = {k: v for k, v in row.items() if k != "_step"}
                result.append(HistoryRow(step=int(step) if step is not None else -1, values=values))
            result.sort(key=lambda r: r.step)
            return result

        return await self._sdk(f"history {path}", call)

    async def metric_history(
        self, entity: str, project: str, run_id: str, keys: Sequence[str], samples: int = 500
    ) -> dict[str, list[tuple[int, float]]]:
        """Return each metric's sampled (step, value) points, one request for all of them.

        W&B samples the rows holding every key of a spec, so each metric gets its own spec:
        a metric logged every 100 steps keeps all its points beside one logged every step.
        """
        path = f"{entity}/{project}/{run_id}"
        specs = [json.dumps({"keys": ["_step", key], "samples": samples}) for key in keys]
        variables = {"entity": entity, "project": project, "name": run_id, "specs": specs}

        def call(api: Any) -> dict[str, list[tuple[int, float]]]:
            # The SDK's own `Run.history(keys=…)` sends one spec and needs a `Run` fetch first.
            data = api._service_api.execute_graphql(SAMPLED_HISTORY, variables)
            run = (data.get("project") or {}).get("run")
            if run is None:
                raise WandbNotFoundError(f"run {path} not found")
            return {
                key: _points(rows, key)
                for key, rows in zip(keys, run.get("sampledHistory") or [], strict=False)
            }

        return await self._sdk(f"history {path}", call)

    async def console_tail(
        self, entity: str, project: str, run_id: str, last: int = 20
    ) -> list[ConsoleLine]:
        """Return the last `last` lines a run wrote to its console, oldest first, one request."""
        path = f"{entity}/{project}/{run_id}"

        def call(api: Any) -> list[ConsoleLine]:
            from wandb.apis.public import ConsoleLogs

            # `Run.console_logs(last=N)` without the `Run` query `api.run()` would send first:
            # the reader needs only the run's path.
            target = _RunPath(entity, project, run_id)
            logs = ConsoleLogs(api._service_api, target, last=max(1, last))  # type: ignore[arg-type]
            return [
                ConsoleLine(line.number, line.content, line.level, line.timestamp) for line in logs
            ]

        return await self._sdk(f"console of {path}", call)

    async def history_since(
        self,
        entity: str,
        project: str,
        run_id: str,
        metrics: Sequence[str],
        min_step: int | None = None,
        samples: int = HISTORY_SAMPLES,
    ) -> dict[str, list[HistoryRow]]:
        """Return each metric's logged rows from `min_step` on, in one request.

        One `sampledHistory` spec per metric (a row must hold its keys), so a run with two
        alerted metrics still costs one request.
        """
        specs = [
            json.dumps(
                {"keys": ["_step", metric], "samples": samples}
                | ({"minStep": min_step} if min_step is not None else {})
            )
            for metric in metrics
        ]
        variables = {"project": project, "entity": entity, "name": run_id, "specs": specs}

        def call(api: Any) -> Any:
            return graphql_transport(api)(HISTORY_QUERY, variables)

        data = await self._sdk(f"history of {entity}/{project}/{run_id}", call)
        run = ((data or {}).get("project") or {}).get("run")
        if run is None:
            raise WandbNotFoundError(f"run {entity}/{project}/{run_id} not found")
        out: dict[str, list[HistoryRow]] = {}
        for metric, rows in zip(metrics, run.get("sampledHistory") or [], strict=False):
            parsed = [
                HistoryRow(int(row["_step"]), {metric: row.get(metric)})
                for row in rows or ()
                if isinstance(row, Mapping) and isinstance(row.get("_step"), int | float)
            ]
            out[metric] = sorted(parsed, key=lambda r: r.step)
        return out


class WandbClient(HistoryReads):
    """Read and control W&B runs and sweeps for one API key and server."""

    async def _list_runs(
        self,
        what: str,
        entity: str,
        project: str,
        *,
        filters: Mapping[str, Any] | None,
        order: str,
        per_page: int,
        limit: int | None,
    ) -> list[RunSnapshot]:
        """List runs with full attributes, one request a page, each page its own SDK call."""
        page = await self._list_page(
            what, entity, project, filters=filters, order=order, per_page=per_page, limit=limit
        )
        return page.runs

    async def _list_page(
        self,
        what: str,
        entity: str,
        project: str,
        *,
        filters: Mapping[str, Any] | None,
        order: str,
        per_page: int,
        limit: int | None,
    ) -> RunPage:
        """List runs like `_list_runs`, with the count of all that match (same request)."""
        path = f"{entity}/{project}"

        first = per_page if limit is None else min(per_page, limit)
        total = 0

        def first_page(api: Any) -> tuple[Iterator[Any], list[Any]]:
            nonlocal total
            # The SDK caches Runs objects by filter string forever; a poller must flush.
            api.flush()
            runs = api.runs(
                path, filters=dict(filters or {}), order=order, per_page=per_page, lazy=False
            )
            # A Paginator's __iter__ rewinds it, and islice calls iter() on what it gets:
            # one generator keeps a single position across pages.
            iterator = (run for run in runs)
            page = _take(iterator, first)
            # The page's answer holds `runCount(filters)`: the total costs no request.
            total = len(runs) if runs.last_response else len(page)
            return iterator, page

        iterator, page = await self._sdk(what, first_page)
        runs = list(page)
        want = first
        while len(page) == want and (limit is None or len(runs) < limit):
            want = per_page if limit is None else min(per_page, limit - len(runs))
            page = await self._sdk(what, functools.partial(_next_page, iterator, want))
            runs.extend(page)
        snapshots = [self._run_snapshot(run, entity, project) for run in runs]
        return RunPage(snapshots, max(total, len(snapshots)))

    def _run_snapshot(self, run: Any, entity: str, project: str) -> RunSnapshot:
        # `_attrs` holds exactly what the listing returned; the public properties of a
        # lazy run would fetch, and `run.sweep` costs a GetSweep per run.
        attrs: Mapping[str, Any] = run._attrs
        return run_snapshot(attrs, entity=entity, project=project, ui_url=self._ui_url)

    async def changed_runs(
        self, entity: str, project: str, since: datetime | None, also: Sequence[str] = ()
    ) -> list[RunSnapshot]:
        """Return runs updated after `since`, every running run, and the runs named in `also`.

        All runs if `since` is None. `also` names runs the caller last saw running, so a run
        that W&B ended without moving its `updatedAt` is still seen. One `Runs` request for up
        to 200 matching runs, however many changed.
        """
        return await self._list_runs(
            "changed runs",
            entity,
            project,
            filters=changed_filter(since, also),
            order=POLL_ORDER,
            per_page=POLL_PAGE_SIZE,
            limit=None,
        )

    async def changed_runs_many(self, queries: Sequence[ChangedRunsQuery]) -> list[ChangedRuns]:
        """Return each project's changed runs (as `changed_runs`), or its error, in order.

        One GraphQL request lists up to `batch_size` projects (aliases, one filter each),
        plus one more per round of further pages. A batch W&B refuses is asked again one
        project at a time; a batch W&B did not answer is that error for each project.
        """
        size = self._batch_size
        batches = [queries[i : i + size] for i in range(0, len(queries), size)]
        answers = await asyncio.gather(*(self._changed_batch(batch) for batch in batches))
        return [answer for batch in answers for answer in batch]

    async def _changed_batch(self, queries: Sequence[ChangedRunsQuery]) -> list[ChangedRuns]:
        nodes: list[list[Mapping[str, Any]]] = [[] for _ in queries]
        found = [True] * len(queries)
        pending = [(i, PageRequest(q)) for i, q in enumerate(queries)]
        what = f"changed runs of {len(queries)} projects"
        while pending:
            pages = [page for _, page in pending]
            try:
                results = await self._sdk(what, functools.partial(_execute_pages, pages))
            except WandbUnavailableError as exc:
                return [exc] * len(queries)
            except WandbError as exc:
                log.warning("W&B refused a batched listing (%s); asking one project at a time", exc)
                return await self._changed_one_by_one(queries)
            following = []
            for (i, page), result in zip(pending, results, strict=True):
                nodes[i].extend(result.nodes)
                found[i] = found[i] and result.found
                if result.next_cursor is not None:
                    following.append((i, PageRequest(page.query, result.next_cursor)))
            pending = following
        return [
            [
                run_snapshot(node, entity=q.entity, project=q.project, ui_url=self._ui_url)
                for node in runs
            ]
            if ok
            else WandbNotFoundError(f"changed runs: could not find project {q.entity}/{q.project}")
            for q, runs, ok in zip(queries, nodes, found, strict=True)
        ]

    async def _changed_one_by_one(self, queries: Sequence[ChangedRunsQuery]) -> list[ChangedRuns]:
        async def one(q: ChangedRunsQuery) -> ChangedRuns:
            try:
                return await self.changed_runs(q.entity, q.project, q.since, q.also)
            except WandbError as exc:
                return exc

        return list(await asyncio.gather(*(one(q) for q in queries)))

    async def recent_runs(
        self, entity: str, project: str, state: str | None = None, limit: int = 10
    ) -> list[RunSnapshot]:
        """Return the newest `limit` runs, optionally only those in `state`, in one request."""
        return (await self.run_page(entity, project, state, limit)).runs

    async def run_page(
        self, entity: str, project: str, state: str | None = None, limit: int = 10
    ) -> RunPage:
        """Return the newest `limit` runs and how many there are in all, in one request."""
        filters = {"state": state} if state else None
        return await self._list_page(
            "recent runs",
            entity,
            project,
            filters=filters,
            order="-created_at",
            per_page=max(1, limit),
            limit=max(1, limit),
        )

    async def best_runs(
        self,
        entity: str,
        project: str,
        metric: str,
        goal: Goal,
        limit: int = 2,
        sweep: str | None = None,
    ) -> list[RunSnapshot]:
        """Return the `limit` runs with the best summary `metric`, best first, in one request."""
        key = f"summary_metrics.{metric}"
        clauses: list[dict[str, Any]] = [{key: {"$exists": True}}]
        if sweep:
            clauses.append({"sweep": sweep})
        order = f"-{key}" if goal == "maximize" else f"+{key}"
        return await self._list_runs(
            "best runs",
            entity,
            project,
            filters={"$and": clauses},
            order=order,
            per_page=max(1, limit),
            limit=max(1, limit),
        )

    async def sweep_runs(self, entity: str, project: str, sweep_id: str) -> list[RunSnapshot]:
        """Return every run of a sweep with config and summary, in one listing."""
        return await self._list_runs(
            "sweep runs",
            entity,
            project,
            filters={"$and": [{"sweep": sweep_id}]},
            order="+created_at",
            per_page=POLL_PAGE_SIZE,
            limit=None,
        )

    async def runs_named(
        self, entity: str, project: str, display_name: str, limit: int = 6
    ) -> list[RunSnapshot]:
        """Return the newest runs shown under this display name, in one request."""
        return await self._list_runs(
            "runs by name",
            entity,
            project,
            filters={"display_name": display_name},
            order="-created_at",
            per_page=limit,
            limit=limit,
        )

    async def run(self, entity: str, project: str, run_id: str) -> RunSnapshot:
        """Return one run with config and summary."""
        path = f"{entity}/{project}/{run_id}"

        def call(api: Any) -> RunSnapshot:
            api.flush()
            return self._run_snapshot(api.run(path), entity, project)

        return await self._sdk(f"run {path}", call)

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot:
        """Return a sweep's state, objective and run counts."""
        path = f"{entity}/{project}/{sweep_id}"

        def call(api: Any) -> SweepSnapshot:
            from wandb.apis.public import Sweep

            # `api.sweep` caches forever and `flush` does not clear it; `Sweep.get` does not.
            sweep = Sweep.get(api, entity, project, sweep_id)
            if sweep is None:
                raise WandbNotFoundError(f"sweep {path} not found")
            return sweep_snapshot(
                sweep._attrs,
                entity=entity,
                project=project,
                sweep_id=sweep_id,
                ui_url=self._ui_url,
            )

        return await self._sdk(f"sweep {path}", call)

    async def projects(self, entity: str) -> list[str]:
        """Return the names of an entity's projects."""

        def call(api: Any) -> list[str]:
            return [str(p.name) for p in api.projects(entity)]

        return await self._sdk(f"projects of {entity}", call)

    # -- control --------------------------------------------------------------------------

    async def stop_run(self, entity: str, project: str, run_id: str) -> None:
        """Flag a run to stop, as the UI's Stop button does; the run exits on its own."""
        path = f"{entity}/{project}/{run_id}"

        def call(api: Any) -> None:
            api.flush()
            api.run(path).stop()

        await self._sdk(f"stop run {path}", call)

    async def create_sweep(self, config: Mapping[str, Any], entity: str, project: str) -> str:
        """Create a sweep from `config` and return its id, through `wandb.sweep` in a child."""
        return await self._subprocess(
            f"create sweep in {entity}/{project}",
            sweep_control.create_sweep(
                config,
                entity=entity,
                project=project,
                env=self.subprocess_env(),
                timeout_s=self._subprocess_timeout,
            ),
        )

    async def set_sweep_state(
        self, entity: str, project: str, sweep_id: str, action: SweepAction
    ) -> None:
        """Stop, cancel, pause or resume a sweep through the `wandb sweep` command line."""
        await self._subprocess(
            f"{action} sweep {entity}/{project}/{sweep_id}",
            sweep_control.set_sweep_state(
                f"{entity}/{project}/{sweep_id}",
                action,
                env=self.subprocess_env(),
                timeout_s=self._subprocess_timeout,
            ),
        )
