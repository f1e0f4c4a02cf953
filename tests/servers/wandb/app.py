"""Run the W&B-compatible HTTP server: GraphQL, file_stream, uploads and the control API."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.servers.wandb.graphql_api import GraphQLService, operation_name, root_fields
from tests.servers.wandb.store import DEFAULT_ENTITY, Store, StoreError

log = logging.getLogger(__name__)
API_KEY_RE = re.compile(r"^local-\w{40,}$")
FAULT_KINDS = frozenset({"429", "500", "503", "delay", "malformed"})
CONTROL_PREFIX = "/_control/"


@dataclass
class Fault:
    """A fault injected into the next ``count`` requests of one operation."""

    operation: str
    kind: str
    count: int
    delay: float = 0.0
    reset: int = 1


def api_key(header: str | None) -> str | None:
    """Return the accepted API key an Authorization header carries, else None."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, key = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key if user == "api" and API_KEY_RE.match(key) is not None else None


def authorized(header: str | None) -> bool:
    """Tell whether an Authorization header carries an accepted API key."""
    return api_key(header) is not None


class WandbServer:
    """A W&B-compatible server on 127.0.0.1 for the real wandb SDK."""

    def __init__(
        self,
        heartbeat_timeout: float = 120.0,
        default_entity: str = DEFAULT_ENTITY,
        check_interval: float = 0.2,
        seed: int | None = None,
    ) -> None:
        self.store = Store(heartbeat_timeout=heartbeat_timeout, seed=seed)
        self.default_entity = default_entity
        self.check_interval = check_interval
        self.graphql = GraphQLService(self.store, default_entity)
        self.base_url = ""
        # W&B limits how much one document may ask; None serves documents of any size.
        self.max_root_fields: int | None = None
        self._counts: Counter[str] = Counter()
        self._faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._checker: asyncio.Task[None] | None = None
        self.app = self._build_app()

    @property
    def heartbeat_timeout(self) -> float:
        """Return the seconds of file_stream silence after which a run is crashed."""
        return self.store.heartbeat_timeout

    @heartbeat_timeout.setter
    def heartbeat_timeout(self, value: float) -> None:
        self.store.heartbeat_timeout = value

    # ---- lifecycle ----------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:port (0 = any free port) and return the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{bound}"
        self.graphql.base_url = self.base_url
        self._checker = asyncio.create_task(self._check_heartbeats())
        return self.base_url

    async def stop(self) -> None:
        """Stop listening and cancel the crash detector."""
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _check_heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            self.store.check_heartbeats()

    # ---- controls as Python methods -------------------------------------------------

    def reset(self) -> None:
        """Forget all data, request counts and faults."""
        self.store.reset()
        self.reset_requests()
        with self._faults_lock:
            self._faults.clear()

    def add_user(self, key: str, username: str) -> None:
        """Make an API key belong to `username`: its runs are theirs, Viewer answers them."""
        self.store.users[key] = username

    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        """Bulk-create projects, sweeps and runs; return how many of each."""
        return self.store.seed(spec)

    def set_run_state(self, entity: str, project: str, run: str, state: str) -> dict[str, Any]:
        """Force a run's state and return the run as stored."""
        return self.store.set_run_state(entity, project, run, state).as_dict()

    def get_run(self, entity: str, project: str, run: str) -> dict[str, Any] | None:
        """Return a run as stored, or None."""
        with self.store.lock:
            found = self.store.run(entity, project, run)
            return found.as_dict() if found else None

    def list_runs(self, entity: str, project: str) -> list[dict[str, Any]]:
        """Return every run of a project as stored."""
        with self.store.lock:
            proj = self.store.project(entity, project, create=False)
            return [r.as_dict() for r in proj.runs.values()] if proj else []

    def list_sweeps(self, entity: str, project: str) -> list[dict[str, Any]]:
        """Return every sweep of a project as stored."""
        with self.store.lock:
            proj = self.store.project(entity, project, create=False)
            return [self.store.dump_sweep(s) for s in proj.sweeps.values()] if proj else []

    def get_sweep(self, entity: str, project: str, sweep: str) -> dict[str, Any] | None:
        """Return a sweep as stored, or None."""
        with self.store.lock:
            found = self.store.sweep(entity, project, sweep)
            return self.store.dump_sweep(found) if found else None

    def request_counts(self) -> dict[str, int]:
        """Return how many requests arrived per operation name."""
        with self._faults_lock:
            return dict(self._counts)

    def reset_requests(self) -> None:
        """Zero the request counters."""
        with self._faults_lock:
            self._counts.clear()

    def inject_fault(
        self, operation: str, kind: str, count: int = 1, delay: float = 0.0, reset: int = 1
    ) -> None:
        """Make the next ``count`` requests of ``operation`` fail (or wait) as ``kind`` says."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._faults_lock:
            self._faults.append(Fault(operation, kind, int(count), float(delay), int(reset)))

    def _take_fault(self, operation: str) -> Fault | None:
        with self._faults_lock:
            self._counts[operation] += 1
            for fault in self._faults:
                if fault.operation == operation and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---- HTTP -----------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024**2, middlewares=[self._auth_middleware])
        app.router.add_post("/graphql", self._graphql)
        app.router.add_post("/files/{entity}/{project}/{run}/file_stream", self._file_stream)
        app.router.add_put("/upload/{entity}/{project}/{run}/{filename:.+}", self._upload)
        app.router.add_post("/_control/reset", self._c_reset)
        app.router.add_post("/_control/seed", self._c_seed)
        app.router.add_get("/_control/requests", self._c_requests)
        app.router.add_post("/_control/requests/reset", self._c_requests_reset)
        app.router.add_post("/_control/faults", self._c_faults)
        app.router.add_get("/_control/runs/{entity}/{project}", self._c_list_runs)
        app.router.add_get("/_control/runs/{entity}/{project}/{run}", self._c_get_run)
        app.router.add_post("/_control/runs/{entity}/{project}/{run}/state", self._c_run_state)
        app.router.add_get("/_control/sweeps/{entity}/{project}", self._c_list_sweeps)
        app.router.add_get("/_control/sweeps/{entity}/{project}/{sweep}", self._c_get_sweep)
        app.router.add_get("/_control/health", self._c_health)
        app.router.add_post("/_control/users", self._c_users)
        return app

    @web.middleware
    async def _auth_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX) or path.startswith("/upload/"):
            return await handler(request)
        if not authorized(request.headers.get("Authorization")):
            return web.json_response({"errors": [{"message": "unauthorized"}]}, status=401)
        return await handler(request)

    async def _apply_fault(self, operation: str) -> web.Response | None:
        fault = self._take_fault(operation)
        if fault is None:
            return None
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind == "malformed":
            return web.Response(status=200, text='{"data": {', content_type="application/json")
        status = int(fault.kind)
        headers = (
            {"RateLimit-Reset": str(fault.reset), "Retry-After": str(fault.reset)}
            if status == 429
            else {}
        )
        return web.json_response(
            {"errors": [{"message": f"injected {fault.kind}"}]}, status=status, headers=headers
        )

    async def _graphql(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"errors": [{"message": "body is not JSON"}]}, status=400)
        query = payload.get("query") if isinstance(payload, dict) else None
        if not isinstance(query, str):
            return web.json_response({"errors": [{"message": "no query"}]}, status=400)
        document = self.graphql.document(query)
        given = payload.get("operationName") or None
        name = "invalid" if isinstance(document, list) else operation_name(document, given)
        injected = await self._apply_fault(name)
        if injected is not None:
            return injected
        if isinstance(document, list):
            errors = [{"message": e.message} for e in document]
            log.warning("rejected GraphQL document %s: %s", errors, query)
            return web.json_response({"errors": errors}, status=400)
        limit = self.max_root_fields
        if limit is not None and root_fields(document, given) > limit:
            message = f"query too complex: more than {limit} top-level fields"
            return web.json_response({"errors": [{"message": message}]}, status=400)
        user = self.store.username(api_key(request.headers.get("Authorization")))
        body = self.graphql.execute(document, payload.get("variables"), given, user)
        return web.json_response(body)

    async def _file_stream(self, request: web.Request) -> web.Response:
        injected = await self._apply_fault("file_stream")
        if injected is not None:
            return injected
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        m = request.match_info
        try:
            reply = self.store.file_stream(m["entity"], m["project"], m["run"], body or {})
        except (StoreError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(reply)

    async def _upload(self, request: web.Request) -> web.Response:
        injected = await self._apply_fault("upload")
        if injected is not None:
            return injected
        content = await request.read()
        m = request.match_info
        self.store.store_file(m["entity"], m["project"], m["run"], m["filename"], content)
        return web.Response(status=200)

    # ---- control routes ---------------------------------------------------------------

    async def _c_users(self, request: web.Request) -> web.Response:
        body = await request.json()
        key, username = body.get("key"), body.get("username")
        if not isinstance(key, str) or not API_KEY_RE.match(key) or not username:
            return web.json_response({"error": "needs an API key and a username"}, status=400)
        self.add_user(key, str(username))
        return web.json_response({"ok": True})

    async def _c_health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _c_seed(self, request: web.Request) -> web.Response:
        try:
            counts = self.seed(await request.json())
        except (StoreError, ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(counts)

    async def _c_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.request_counts())

    async def _c_requests_reset(self, request: web.Request) -> web.Response:
        self.reset_requests()
        return web.json_response({"ok": True})

    async def _c_faults(self, request: web.Request) -> web.Response:
        spec = await request.json()
        try:
            self.inject_fault(
                str(spec["operation"]),
                str(spec["kind"]),
                int(spec.get("count", 1)),
                float(spec.get("delay", 0.0)),
                int(spec.get("reset", 1)),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _c_list_runs(self, request: web.Request) -> web.Response:
        m = request.match_info
        return web.json_response(self.list_runs(m["entity"], m["project"]))

    async def _c_get_run(self, request: web.Request) -> web.Response:
        m = request.match_info
        found = self.get_run(m["entity"], m["project"], m["run"])
        if found is None:
            return web.json_response({"error": "run not found"}, status=404)
        return web.json_response(found)

    async def _c_run_state(self, request: web.Request) -> web.Response:
        m = request.match_info
        spec = await request.json()
        try:
            run = self.set_run_state(m["entity"], m["project"], m["run"], str(spec.get("state")))
        except StoreError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response(run)

    async def _c_list_sweeps(self, request: web.Request) -> web.Response:
        m = request.match_info
        return web.json_response(self.list_sweeps(m["entity"], m["project"]))

    async def _c_get_sweep(self, request: web.Request) -> web.Response:
        m = request.match_info
        found = self.get_sweep(m["entity"], m["project"], m["sweep"])
        if found is None:
            return web.json_response({"error": "sweep not found"}, status=404)
        return web.json_response(found)


class ServerThread:
    """Run a ``WandbServer`` on its own event loop in a daemon thread (for sync SDK tests)."""

    def __init__(self, server: WandbServer | None = None, port: int = 0) -> None:
        self.server = server or WandbServer()
        self.port = port
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="wandb-server", daemon=True
        )

    def start(self) -> str:
        """Start the thread and the server; return the base URL."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.server.start(self.port), self._loop)
        self.base_url = future.result(timeout=10)
        return self.base_url

    def stop(self) -> None:
        """Stop the server, the loop and the thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
