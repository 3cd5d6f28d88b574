"""The HTTP service of `copyhound serve`: Starlette routes over one `Checker`, on uvicorn.

Thin on purpose: a handler reads and type-checks its body (service.bodies), calls one method of the
engine's `Checker` (engine.query.checker) in a worker thread (the work is the model, FAISS and numpy:
CPU-bound, so it must not run on the event loop), and answers the result dataclass's `to_dict()`.

    POST /v1/check        {account_id, prompt, timestamp?}   -> CheckResult
    POST /v1/who-else     {prompts: [...], threshold?}       -> WhoElseResult (the CLI's rows)
    GET  /v1/accounts/ID  -> AccountSummary        GET /v1/rings/ID -> RingSummary
    GET  /v1/health       -> CheckerHealth (503 while starting)
    GET  /metrics         -> Prometheus text (service.metrics)

Refusals are JSON objects `{"error": "<one line>"}`: 400 for a body that is not a JSON object or a field
of the wrong type or value, 401 for a missing or wrong bearer token (when one is configured; /v1/health
stays open for load balancers' probes), 404 for an unknown endpoint, account or ring, 405 for the wrong
method, 413 for a body over the limit, 503 while starting or when the workspace cannot be read. A bug
answers 500 with the same one-line shape; its traceback goes to the service's log, never to a client.

Start-up binds the port first, then, in a background thread, loads the model and reads the first
snapshot: until both are done /v1/health answers 503 with what it waits for (a writer holding the
workspace, say) and the other endpoints 503. The same thread then calls `Checker.refresh` every second,
so a newer state of the workspace is picked up once its writer is done.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import (
    CopyhoundError,
    Engine,
    IndexStateError,
    IngestError,
    NotFoundError,
    QueryError,
    ResourceError,
    ServiceError,
    WorkspaceError,
)
from engine.config import SERVE_HOST, SERVE_MAX_BODY, SERVE_PORT
from engine.query.checker import SYNC_EVERY
from service.bodies import check_fields, read_json, who_else_fields
from service.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

# Paths answered without the bearer token: what a load balancer probes.
OPEN_PATHS = frozenset({"/v1/health"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="copyhound"'}


@dataclass(frozen=True)
class Settings:
    host: str = SERVE_HOST
    port: int = SERVE_PORT
    token: str | None = None
    max_body: int = SERVE_MAX_BODY
    delta_limit: int | None = None  # the checker's default when None
    sync_every: float = SYNC_EVERY  # seconds between fsyncs of recorded exchanges (0: before each answer)
    poll: float = 1.0  # seconds between refreshes of the snapshot


class Service:
    """What the app holds: the engine, its checker once started, the settings, the metrics, and the
    thread that starts the checker and then keeps its snapshot fresh."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = Metrics()
        self.checker = None
        self.waiting = "loading the model and reading the workspace"
        self._starting = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ready(self):
        """The checker, or 503 while the service starts."""
        if self.checker is None:
            raise HTTPException(503, f"starting: {self.waiting}")
        return self.checker

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="copyhound-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.checker is not None:
            self.checker.close()

    def _loop(self) -> None:
        said = None
        while not self._stop.is_set():
            try:
                if self.checker is None:
                    self._start_checker()
                else:
                    self.checker.refresh()
            except CopyhoundError as err:
                self.waiting = str(err)
                if self.waiting != said:  # once per distinct reason, not once a second
                    log.warning("%s: %s", "not ready" if self.checker is None else "snapshot kept", err)
                    said = self.waiting
            except Exception as err:  # noqa: BLE001 - the thread must outlive a bug in one refresh
                self.waiting = f"internal error reading the workspace: {type(err).__name__}"
                if self.waiting != said:
                    log.exception("reading a snapshot failed")
                    said = self.waiting
            self._stop.wait(self.settings.poll)

    def _start_checker(self) -> None:
        if self._starting is None:
            started = time.monotonic()
            checker = self.engine.checker(delta_limit=self.settings.delta_limit,
                                          sync_every=self.settings.sync_every)
            checker.warm()
            self._starting = checker
            log.info("model %s loaded in %.1f s", checker.encoder.name, time.monotonic() - started)
        self._starting.refresh(force=True)
        self.checker = self._starting
        health = self.checker.health()
        log.info("ready: %d indexed prompts, %d accounts, %d rings, who-else threshold %.2f; recording "
                 "checked exchanges in %s", health.indexed_prompts, health.accounts, health.rings,
                 health.threshold, health.incoming)


# ---------------------------------------------------------------------- endpoints
def _service(request: Request) -> Service:
    return request.app.state.service


async def check(request: Request) -> Response:
    service = _service(request)
    fields = check_fields(await read_json(request, service.settings.max_body))
    result = await run_in_threadpool(service.ready().check, **fields)
    service.metrics.verdict(result.verdict)
    return JSONResponse(result.to_dict())


async def who_else(request: Request) -> Response:
    service = _service(request)
    fields = who_else_fields(await read_json(request, service.settings.max_body))
    result = await run_in_threadpool(service.ready().who_else, **fields)
    return JSONResponse(result.to_dict())


async def account(request: Request) -> Response:
    checker = _service(request).ready()
    return JSONResponse((await run_in_threadpool(checker.account, request.path_params["account_id"])).to_dict())


async def ring(request: Request) -> Response:
    checker = _service(request).ready()
    raw = request.path_params["ring_id"]
    try:
        ring_id = int(raw)
    except ValueError:
        raise HTTPException(400, f"ring ids are whole numbers, not {raw[:40]!r}") from None
    return JSONResponse((await run_in_threadpool(checker.ring, ring_id)).to_dict())


async def health(request: Request) -> Response:
    service = _service(request)
    if service.checker is None:
        return JSONResponse({"status": "starting", "waiting": service.waiting}, status_code=503)
    return JSONResponse(service.checker.health().to_dict())


async def metrics(request: Request) -> Response:
    service = _service(request)
    text = service.metrics.render(service.checker.health() if service.checker else None)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


ROUTES = [
    Route("/v1/check", check, methods=["POST"]),
    Route("/v1/who-else", who_else, methods=["POST"]),
    Route("/v1/accounts/{account_id:path}", account, methods=["GET"]),
    Route("/v1/rings/{ring_id}", ring, methods=["GET"]),
    Route("/v1/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


# ---------------------------------------------------------------------- errors
def _error(status: int, message: object, headers: dict | None = None) -> JSONResponse:
    text = " ".join(str(message).split()) or "error"
    return JSONResponse({"error": text}, status_code=status, headers=headers)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no endpoint {request.method} {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.url.path} does not take {request.method}"
    return _error(exc.status_code, detail, exc.headers)


async def _on_domain(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, QueryError | IngestError):
        status = 400
    elif isinstance(exc, WorkspaceError | IndexStateError | ResourceError):
        status = 503
    else:
        status = 500
    return _error(status, exc)


async def _on_crash(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer, and uvicorn logs the traceback: the client gets one line.
    return _error(500, "internal error: the service's log has the details")


# ---------------------------------------------------------------------- middleware
class Guard:
    """Bearer-token check and request metrics around every request (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.service.metrics.observe(_endpoint(scope), scope["method"], status, time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> Response | None:
        token = self.service.settings.token
        if token is None or scope["path"] in OPEN_PATHS:
            return None
        header = Headers(scope=scope).get("authorization")
        if not header:
            return _error(401, "missing bearer token: send the header Authorization: Bearer TOKEN", _CHALLENGE)
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _error(401, "wrong bearer token", _CHALLENGE)
        return None


def _endpoint(scope: Scope) -> str:
    """The route's template (never the raw path: ids would make a label per account)."""
    for route in ROUTES:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return route.path
    return "other"


# ---------------------------------------------------------------------- app and server
def create_app(engine: Engine, settings: Settings | None = None) -> Starlette:
    """The ASGI app over `engine` (open it read-only: `Engine(ws, read_only=True)`)."""
    service = Service(engine, settings or Settings())

    @asynccontextmanager
    async def lifespan(app: Starlette):
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = Starlette(routes=ROUTES, middleware=[Middleware(Guard, service=service)], lifespan=lifespan,
                    exception_handlers={HTTPException: _on_http, CopyhoundError: _on_domain, Exception: _on_crash})
    app.state.service = service
    return app


def run(engine: Engine, *, host: str = SERVE_HOST, port: int = SERVE_PORT, token: str | None = None,
        max_body: int = SERVE_MAX_BODY, delta_limit: int | None = None, sync_every: float = SYNC_EVERY) -> None:
    """Serve `engine` until interrupted: the `serve` front end `copyhound serve` loads by entry point."""
    settings = Settings(host, port, token, max_body, delta_limit, sync_every=sync_every)
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    log.info("listening on http://%s:%d for %s%s", host if ":" not in host else f"[{host}]", bound,
             engine.workspace, "" if token else " (no bearer token: loopback use only)")
    if token is None and not _loopback(host):
        log.warning("serving on %s without a bearer token: anyone who reaches the port can query the workspace",
                    host)
    config = uvicorn.Config(create_app(engine, settings), log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on Ctrl-C, then raises it again: a stop asked for, not an error.
        pass
    log.info("stopped")


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        raise ServiceError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    sock.set_inheritable(True)
    return sock


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
