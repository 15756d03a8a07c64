"""The REST API: health, runs, track search, neighbours of a track or of a set of tracks, recommendations and
genre for an upload, and the collections of a run's dataset (list, create, read, delete).

FastAPI's "bigger applications" shape: :func:`create_app` (here) starts one
:class:`core.service.service.QueryService` per process in its :func:`lifespan` (runs are loaded and warmed once
and shared by every request; inference is read-only, so concurrent requests need no lock around it), adds the
guards and the one table that maps core's typed errors to HTTP statuses (:data:`STATUS`), and includes a router
per resource (``api/routers/``); ``api/deps.py`` resolves the ``{run}`` of a path through the service, and
``api/schemas.py`` holds the bodies.

Uploads are streamed into a private temp file with the app's size cap (:func:`core.data.uploads.saved_upload`): the
client's file name is only shown, never used as a path, and the file is removed whatever happens. Request bodies
larger than the cap are refused before they are read (by ``Content-Length``) or as soon as they pass it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
from typing import Optional

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from api import memory
from api.deps import DEFAULT_RUN, LISTENER_HEADER, AudioSlots
from api.routers import collections, genre, listen, listeners, recommend, runs, tracks
from core.base import (
    MAX_UPLOAD_MB,
    AudioDecodeError,
    CollectionError,
    HistoryError,
    InvalidQuery,
    ListenerError,
    NoClassifier,
    NotFound,
    TimbreError,
    TooLarge,
    check_bounds,
    config_from_dict,
    doc,
    without_paths,
)
from core.service import QueryService, default_run

log = logging.getLogger("api")

API_KEY_ENV = "TIMBRE_API_KEY"
API_KEY_HEADER = "X-API-Key"
CONFIG_ENV = "TIMBRE_API_CONFIG"  # how `python -m api` hands its settings to uvicorn's worker processes
MULTIPART_SLACK = 64 * 1024  # bytes of multipart framing allowed above the file cap
DOCS_ASSETS = "/docs-assets"  # Swagger UI's files, served from the fastapi-offline package (no CDN: works offline)
PUBLIC_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")

# core's typed errors -> HTTP status: the one place the API decides. A subclass is looked up before its base
# (FastAPI walks the error's class hierarchy), so TooLarge is a 413 although it is also an AudioDecodeError.
STATUS = {
    TooLarge: 413,
    NotFound: 404,
    InvalidQuery: 422,
    AudioDecodeError: 422,
    CollectionError: 422,  # a bad collection name or an unusable set of tracks
    NoClassifier: 409,
    HistoryError: 422,  # a listening history that cannot be read
    ListenerError: 503,  # the listener database is corrupt or locked (recommendations still answer, pure audio)
    TimbreError: 409,  # the run cannot answer: broken, no tags, a classifier that cannot take the query
}
# How to list what was not found, in the API's terms (NotFound.what -> hint)
NOT_FOUND_HINTS = {"run": "GET /runs lists them", "track": "search with GET /runs/{run}/tracks?q="}


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    """Settings of the API server (each one a ``python -m api`` flag; the key comes from ``TIMBRE_API_KEY``)."""

    run: Optional[str] = doc(None, "run id or run folder path, answered under /runs/default (default: the newest run)")
    max_upload_mb: float = doc(float(MAX_UPLOAD_MB), "largest upload, as the dashboard's server.maxUploadSize")
    cors_origin: tuple[str, ...] = doc((), "browser origins allowed to call the API (CORS is off when none)")
    upload_dir: Optional[str] = doc(None, "folder of the upload temp files (default: the system temp folder)")
    audio_slots: int = doc(2, "audio queries (recommend, genre) decoded and embedded at once; each holds up to ~200 "
                              "MB while it runs, so memory stays bounded however many clients send files", at_least=1)
    queue_seconds: float = doc(30.0, "how long an audio query waits for a slot before a 503 with Retry-After",
                               at_least=0.0)
    listen_slots: int = doc(4, "live streams (WebSocket /runs/{run}/listen) at once; each takes a fraction of a core",
                            at_least=1)
    listen_seconds: float = doc(600.0, "longest live stream per connection (and so its bytes)", above=0.0)

    def __post_init__(self):
        check_bounds(self)


# ------------------------------------------------------------------------------------------ guards


def _json(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _public(path: str) -> bool:
    """The docs page, its assets and the schema: open without a key (the page's "Authorize" sends it)."""
    return path in PUBLIC_PATHS or path.startswith(DOCS_ASSETS + "/")


class ApiKeyGuard:
    """With an API key set, every request but the docs needs a matching ``X-API-Key`` header (checked before
    the body is read)."""

    def __init__(self, app, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope, receive, send):
        checked = scope["type"] == "websocket" or (
            scope["type"] == "http" and not _public(scope["path"]) and scope["method"] != "OPTIONS")
        if checked:
            given = dict(scope["headers"]).get(API_KEY_HEADER.lower().encode(), b"")
            if not secrets.compare_digest(given, self.key):
                if scope["type"] == "websocket":  # closed before the handshake: the client sees a 403
                    return await send({"type": "websocket.close", "code": 1008})
                return await _json(401, f"missing or wrong {API_KEY_HEADER} header")(scope, receive, send)
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies above the upload cap: by ``Content-Length`` before reading, else once passed."""

    def __init__(self, app, max_mb: float):
        self.app, self.max_mb = app, max_mb
        self.max_bytes = int(max_mb * 2**20) + MULTIPART_SLACK

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = f"upload too large: more than {self.max_mb:g} MB, the limit is {self.max_mb:g} MB"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await _json(413, detail)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


def _validation_detail(error: RequestValidationError) -> str:
    """FastAPI's list of problems as one sentence: ``k: Input should be less than or equal to 100``."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path"))
        message = str(problem.get("msg"))
        if "Expected UploadFile" in message:  # a form field, or a file part without a file name
            message = "expected an uploaded file (a multipart/form-data file part with a file name)"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def error_detail(error: TimbreError) -> str:
    """What a client is told: the error's message without the server's folders, and for :class:`NotFound` how
    to list what exists."""
    detail = without_paths(str(error))
    hint = NOT_FOUND_HINTS.get(error.what) if isinstance(error, NotFound) else None
    return f"{detail}; {hint}" if hint else detail


def add_error_handlers(app: FastAPI) -> None:
    """Every failure a client can cause is a 4xx with a ``detail`` that says why (:data:`STATUS`); nothing
    else leaks."""

    def typed(request, error: TimbreError):
        status = next(code for kind, code in STATUS.items() if isinstance(error, kind))
        return _json(status, error_detail(error))

    for kind in STATUS:
        app.add_exception_handler(kind, typed)

    @app.exception_handler(RequestValidationError)
    def invalid(request, error: RequestValidationError):
        return _json(422, _validation_detail(error))

    @app.exception_handler(Exception)
    def unexpected(request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json(500, f"internal error ({type(error).__name__}); the server log has the details")


def _document_key(app: FastAPI) -> None:
    """Show the key in the OpenAPI docs ("Authorize" in /docs sends it)."""

    def schema():
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}}
            spec["security"] = [{"ApiKey": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = schema


# ------------------------------------------------------------------------------------------ the app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """At start-up (in each worker process) the query service opens and warms the server's run, before the first
    request is taken; malloc's arenas are bounded first (:mod:`api.memory`)."""
    memory.bound_arenas()
    app.state.service = QueryService(default_run(app.state.config.run))
    yield


def create_app(cfg: ApiConfig = ApiConfig(), *, api_key: Optional[str] = None) -> FastAPI:
    """The API over ``cfg.run`` (loaded and warmed when the server starts: :func:`lifespan`) and every other run
    on demand.

    ``api_key`` defaults to ``TIMBRE_API_KEY`` from the environment; empty or unset means no key is asked.
    """
    api_key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    # /docs from Swagger UI 5 shipped in fastapi-offline (FastAPI's default loads it from a CDN, blank offline;
    # swagger-ui-bundle ships 4.15, which cannot read the OpenAPI 3.1 FastAPI writes)
    app = FastAPIOffline(title="Timbre Atlas API", version="1", docs_url="/docs", redoc_url=None,
                         static_url=DOCS_ASSETS, lifespan=lifespan,
                         description="Similar tracks and genre for audio, over the runs of Timbre Atlas. "
                                     f"`{DEFAULT_RUN}` as {{run}} is the server's run.")
    app.state.config, app.state.audio_slots = cfg, AudioSlots(cfg.audio_slots, cfg.queue_seconds)
    app.state.listen_slots = listen.ListenSlots(cfg.listen_slots)
    add_error_handlers(app)
    for router in (runs.router, tracks.router, recommend.router, collections.router, genre.router, listeners.router,
                   listen.router):
        app.include_router(router)
    app.add_middleware(BodyLimit, max_mb=cfg.max_upload_mb)
    if api_key:
        app.add_middleware(ApiKeyGuard, key=api_key)
        _document_key(app)
    if cfg.cors_origin:  # outermost, so a browser's preflight is answered before the key is asked
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origin), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=[API_KEY_HEADER, LISTENER_HEADER, "Content-Type"])
    return app


def app_from_env() -> FastAPI:
    """uvicorn's app factory: the settings ``python -m api`` put in ``TIMBRE_API_CONFIG``."""
    return create_app(config_from_dict(ApiConfig, json.loads(os.environ.get(CONFIG_ENV) or "{}"), what="API setting"))
