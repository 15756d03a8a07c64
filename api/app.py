"""The REST API: health, runs, track search, neighbours of a track or of a set of tracks, recommendations and
genre for an upload, and the collections of a run's dataset (list, create, read, delete).

Every endpoint calls the same ``core`` functions the dashboard and the bot use. Runs are loaded once per process
(model, embeddings, tracks, maps, best classifier) and shared by all requests; inference is read-only (the model
is in eval mode, no cached state changes), so concurrent requests need no lock around it.

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
import threading
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd
from fastapi import FastAPI, File, Form, HTTPException, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.analysis import collections
from core.analysis.genre import best_classifier, predict_genre
from core.analysis.tags import resolve_tag, run_tags, tags_reason, top_tag_lists, tracks_by_tag
from core.base.config import check_bounds, doc
from core.base.errors import AudioDecodeError, CollectionError, TagError, TimbreError, without_paths
from core.data.tracks import clean_text, display_names, search_tracks
from core.data.uploads import MAX_UPLOAD_MB, safe_name, saved_upload
from core.runs import folder as runs
from core.runs.folder import Run, list_runs, load_run, run_summary
from core.service.links import with_links
from core.service.query import load_query, more_like_these, neighbours_of, recommend_audio, warm_up

log = logging.getLogger("api")

DEFAULT_RUN = "default"  # the {run} path segment that means the server's run (--run, else the newest)
MAX_K = 100
MAX_LIMIT = 500
MAX_SELECTION = 100_000  # track ids in one collection or one multi-track query
API_KEY_ENV = "TIMBRE_API_KEY"
API_KEY_HEADER = "X-API-Key"
CONFIG_ENV = "TIMBRE_API_CONFIG"  # how `python -m api` hands its settings to uvicorn's worker processes
MULTIPART_SLACK = 64 * 1024  # bytes of multipart framing allowed above the file cap
DOCS_ASSETS = "/docs-assets"  # Swagger UI's files, served from the swagger-ui-bundle package (no CDN: works offline)
PUBLIC_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")


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

    def __post_init__(self):
        check_bounds(self)


# ------------------------------------------------------------------------------------------ responses


class TagScore(BaseModel):
    tag: str
    likelihood: float


class Track(BaseModel):
    track_id: str
    name: str
    title: Optional[str] = None
    artist: Optional[str] = None
    label: Optional[str] = None
    file: Optional[str] = None
    spotify_url: str
    youtube_url: str
    tags: list[TagScore] = []  # the top 3 musicnn tags; [] when the run's dataset has none (core.analysis.tags)


class Neighbour(Track):
    rank: int
    score: float
    cosine: Optional[float] = None  # an upload's track cosine and passage score (score is their mean)
    passage: Optional[float] = None


class QueryInfo(BaseModel):
    name: str
    seconds: float


class RunInfo(BaseModel):
    model_config = ConfigDict(extra="allow")  # every column of core.runs.folder.run_summary
    run_id: str
    dataset: Optional[str] = None
    tracks: Optional[int] = None
    default: bool
    genre_classifier: Optional[dict] = None
    broken: Optional[str] = None  # why the run cannot be opened; its figures are then null


class Health(BaseModel):
    status: str
    default_run: Optional[str]
    loaded_runs: list[str]


class TrackList(BaseModel):
    run: str
    q: str
    total: int = Field(description="every track that matches; `tracks` lists the first `limit` of them")
    tracks: list[Track]


class Neighbours(BaseModel):
    run: str
    track: Track
    neighbours: list[Neighbour]


class Recommendation(BaseModel):
    run: str
    query: QueryInfo
    neighbours: list[Neighbour]
    map_positions: dict[str, list[float]]


class CollectionInfo(BaseModel):
    collection_id: str
    name: str
    dataset: str
    n_tracks: int  # members saved
    n_in_run: int  # members this run holds
    created: str


class CollectionDetail(CollectionInfo):
    tracks: list[Track]


class NewCollection(BaseModel):
    name: str = Field(..., max_length=1000)
    track_ids: list[str] = Field(..., max_length=MAX_SELECTION)


class SimilarQuery(BaseModel):
    track_ids: list[str] = Field(..., max_length=MAX_SELECTION)
    k: int = Field(10, ge=1, le=MAX_K)


class Similar(BaseModel):
    run: str
    query: list[Track]
    neighbours: list[Neighbour]


class Genre(BaseModel):
    run: str
    query: QueryInfo
    label: str
    probabilities: dict[str, float]
    model: str
    model_title: str
    input: str
    cv_accuracy: float
    cv_std: float
    test_accuracy: float


def track_records(table: pd.DataFrame, tags: Optional[pd.DataFrame] = None) -> list[dict]:
    """Rows of a track table as :class:`Track` / :class:`Neighbour` fields, links included (core.service.links), with
    each track's top 3 tags from ``tags`` (:meth:`RunStore.tags`: indexed by track_id; None: no tags)."""
    top = ([[]] * len(table) if tags is None else
           top_tag_lists(tags.reindex(table["track_id"].astype(str)), np.arange(len(table)), n=3))
    table = with_links(table).assign(name=display_names(table))
    out = []
    for row, tag_list in zip(table.to_dict("records"), top):
        record = {key: clean_text(row.get(key)) for key in ("track_id", "name", "title", "artist", "label",
                                                       "spotify_url", "youtube_url")}
        record["file"] = Path(row["path"]).name if clean_text(row.get("path")) else None  # never the server's folders
        if "rank" in row:
            record.update(rank=int(row["rank"]), score=float(row["score"]))
            for key in ("cosine", "passage"):
                if key in row and pd.notna(row[key]):  # NaN: the run has no passages
                    record[key] = float(row[key])
        record["tags"] = tag_list
        out.append(record)
    return out


# ------------------------------------------------------------------------------------------ runs


def resolve_run(name: Optional[str]) -> Optional[Run]:
    """The run of ``--run`` (:func:`core.runs.folder.resolve_run`: an id, a folder path, or the newest run), or None
    when none is named and there is no run yet: the API then starts and answers 404 until one exists."""
    if name is None and not list_runs():
        return None
    return runs.resolve_run(name)


class RunStore:
    """Runs loaded once per process and shared by every request."""

    def __init__(self, default: Optional[Run]):
        self.default = None if default is None else default.run_id
        self._runs: dict[str, Run] = {} if default is None else {default.run_id: warm_up(default)}
        self._lock = threading.Lock()
        self._tags: dict[str, Optional[pd.DataFrame]] = {}

    def tags(self, run: Run) -> Optional[pd.DataFrame]:
        """The run's musicnn tags indexed by track_id (:func:`core.analysis.tags.run_tags`), read once; None without."""
        if run.run_id not in self._tags:
            tags = run_tags(run)
            self._tags[run.run_id] = None if tags is None else tags.set_axis(run.tracks["track_id"].astype(str))
        return self._tags[run.run_id]

    def loaded(self) -> list[str]:
        return list(self._runs)

    def get(self, name: str) -> Run:
        run_id = self.default if name == DEFAULT_RUN else name
        if run_id is None:
            raise HTTPException(404, "there is no run yet: build one with `python -m core demo` or `python -m core train`")
        if run_id in self._runs:
            return self._runs[run_id]
        if run_id not in list_runs():  # only listed runs: a URL can never name another folder
            raise HTTPException(404, f"no run named {name!r}; GET /runs lists them")
        with self._lock:
            if run_id not in self._runs:
                self._runs[run_id] = warm_up(load_run(run_id))
        return self._runs[run_id]


def tag_hits(run: Run, tags: Optional[pd.DataFrame], tag: str, *, q: str = "") -> pd.DataFrame:
    """Every track of the run (those matching ``q`` when given) with ``tag``, most likely first
    (:func:`core.analysis.tags.tracks_by_tag`): 422 for an unknown tag (naming close ones), 409 when the run has no tags
    (saying why)."""
    try:
        name = resolve_tag(tag)
    except TagError as error:
        raise HTTPException(422, str(error)) from None
    if tags is None:
        raise HTTPException(409, f"no musicnn tags to order by: {tags_reason(run)}")
    pool = None if not q.strip() else search_tracks(run.tracks, q, limit=len(run.tracks))["row"].to_numpy(np.int64)
    return run.tracks.iloc[tracks_by_tag(tags, name, rows=pool, limit=len(run.tracks))]  # row i: run.tracks row i


class AudioSlots:
    """At most ``slots`` audio queries decode and embed at once; another waits up to ``wait_s`` seconds for a
    slot, then gets 503 with ``Retry-After`` (a burst of large uploads must not multiply the server's memory)."""

    retry_after_s = 5

    def __init__(self, slots: int, wait_s: float):
        self._free, self.wait_s = threading.BoundedSemaphore(slots), wait_s

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if not self._free.acquire(timeout=self.wait_s):
            raise HTTPException(503, "the server is busy with other audio queries; try again in a few seconds",
                                headers={"Retry-After": str(self.retry_after_s)})
        try:
            yield
        finally:
            self._free.release()


def check_k(k: int, available: int, what: str) -> None:
    if k > available:
        raise HTTPException(422, f"k={k} is more than the {available} {what}")


def track_row(run: Run, track_id: str) -> int:
    rows = np.flatnonzero(run.tracks["track_id"].to_numpy() == track_id)
    if not len(rows):
        raise HTTPException(404, f"no track {track_id!r} in run {run.run_id!r}; search with GET /runs/{{run}}/tracks?q=")
    return int(rows[0])


def track_rows(run: Run, track_ids: list[str]) -> np.ndarray:
    """Rows of ``track_ids`` (repeats dropped): 422 when there are none, 404 naming the ids the run lacks."""
    ids = list(dict.fromkeys(track_ids))
    if not ids:
        raise HTTPException(422, "track_ids is empty: name at least one track (GET /runs/{run}/tracks lists them)")
    rows = collections.rows_of_ids(run, ids)
    if len(rows) < len(ids):
        known = set(run.tracks["track_id"].astype(str).to_numpy()[rows])
        missing = [t for t in ids if t not in known]
        raise HTTPException(404, f"{len(missing)} track id(s) not in run {run.run_id!r}: "
                                 f"{', '.join(map(repr, missing[:3]))}{' ...' if len(missing) > 3 else ''}")
    return rows


def collection_info(run: Run, found: collections.Collection) -> dict:
    return {"collection_id": found.collection_id, "name": found.name, "dataset": found.dataset,
            "n_tracks": found.n_tracks, "n_in_run": len(collections.collection_rows(run, found)),
            "created": found.created}


def find_collection(run: Run, collection_id: str) -> collections.Collection:
    """A collection of the run's dataset, or 404 (an id of another form is never looked up)."""
    try:
        return collections.load_collection(collections.run_dataset(run), collection_id)
    except CollectionError as error:
        raise HTTPException(404, str(error)) from None


def query_audio(run: Run, upload: UploadFile, cfg: ApiConfig) -> tuple[QueryInfo, np.ndarray]:
    """Decode an upload as a query: mono at the run's rate, at least one training chunk, at most 10 minutes."""
    with saved_upload(upload.file, upload.filename, max_mb=cfg.max_upload_mb, dir=cfg.upload_dir) as path:
        y = load_query(run, path)
    return QueryInfo(name=safe_name(upload.filename), seconds=round(y.size / run.mel_params.sr, 2)), y


def run_info(run_id: str, default: Optional[str]) -> dict:
    """:func:`core.runs.folder.run_summary` with the run's classifier; a broken run is listed with its reason."""
    summary = run_summary(run_id)
    best = None if summary["broken"] else best_classifier(load_run(run_id))
    genre = None if best is None else {"model": best.model, "input": best.input, "cv_accuracy": best.cv_mean,
                                       "classes": list(best.classes)}
    return {**summary, "default": run_id == default, "genre_classifier": genre}


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
        if scope["type"] == "http" and not _public(scope["path"]) and scope["method"] != "OPTIONS":
            given = dict(scope["headers"]).get(API_KEY_HEADER.lower().encode(), b"")
            if not secrets.compare_digest(given, self.key):
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


def add_error_handlers(app: FastAPI) -> None:
    """Every failure a client can cause is a 4xx with a ``detail`` that says why; nothing else leaks."""

    @app.exception_handler(AudioDecodeError)
    def audio_error(request, error: AudioDecodeError):
        return _json(413 if error.reason.startswith("too large") else 422, without_paths(str(error)))

    @app.exception_handler(TimbreError)
    def timbre_error(request, error: TimbreError):
        return _json(409, without_paths(str(error)))

    @app.exception_handler(RequestValidationError)
    def invalid(request, error: RequestValidationError):
        return _json(422, _validation_detail(error))

    @app.exception_handler(Exception)
    def unexpected(request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json(500, f"internal error ({type(error).__name__}); the server log has the details")


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) from files shipped with the package: FastAPI's default loads them from a CDN, and
    a server without internet showed a blank page."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - docs",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect():
        return get_swagger_ui_oauth2_redirect_html()


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


def create_app(cfg: ApiConfig = ApiConfig(), *, api_key: Optional[str] = None) -> FastAPI:
    """The API over ``cfg.run`` (loaded now) and every other run on demand.

    ``api_key`` defaults to ``TIMBRE_API_KEY`` from the environment; empty or unset means no key is asked.
    """
    api_key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    store = RunStore(resolve_run(cfg.run))
    app = FastAPI(title="Timbre Atlas API", version="1", docs_url=None, redoc_url=None,
                  description="Similar tracks and genre for audio, over the runs of Timbre Atlas. "
                              f"`{DEFAULT_RUN}` as {{run}} is the server's run.")
    slots = AudioSlots(cfg.audio_slots, cfg.queue_seconds)
    app.state.store, app.state.config, app.state.audio_slots = store, cfg, slots
    add_error_handlers(app)
    add_offline_docs(app)

    @app.get("/health", response_model=Health, summary="Liveness and the loaded runs")
    def health():
        return Health(status="ok", default_run=store.default, loaded_runs=store.loaded())

    @app.get("/runs", response_model=list[RunInfo], summary="Every complete run with its evaluation")
    def runs():
        return [run_info(run_id, store.default) for run_id in list_runs()]

    @app.get("/runs/{run}/tracks", response_model=TrackList,
             summary="Search tracks by artist, title, file name or label (case-insensitive); no q lists them")
    def tracks(run: str, q: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=MAX_LIMIT),
               tag: str = Query("", max_length=100, description="order by this musicnn tag's likelihood (tag=piano)")):
        r = store.get(run)
        if tag.strip():
            found = tag_hits(r, store.tags(r), tag, q=q)
        else:
            found = search_tracks(r.tracks, q, limit=len(r.tracks)) if q.strip() else r.tracks
        return TrackList(run=r.run_id, q=q, total=len(found),  # every match; the first `limit` are listed
                         tracks=track_records(found.head(limit), tags=store.tags(r)))

    @app.get("/runs/{run}/tracks/{track_id}/neighbours", response_model=Neighbours,
             summary="The k library tracks most similar to a library track (itself left out)")
    def neighbours(run: str, track_id: str, k: int = Query(5, ge=1, le=MAX_K)):
        r = store.get(run)
        row = track_row(r, track_id)
        check_k(k, len(r.tracks) - 1, "other tracks of the run")
        near = neighbours_of(r, row, k=k)
        return Neighbours(run=r.run_id, track=track_records(r.tracks.iloc[[row]], tags=store.tags(r))[0],
                          neighbours=track_records(near, tags=store.tags(r)))

    @app.post("/runs/{run}/recommend", response_model=Recommendation,
              summary="The k library tracks most similar to an uploaded audio file (multipart: file, k)")
    def recommend(run: str, file: UploadFile = File(...), k: int = Form(5, ge=1, le=MAX_K)):
        r = store.get(run)
        check_k(k, len(r.tracks), "tracks of the run")
        with slots.held():
            query, y = query_audio(r, file, cfg)
            found = recommend_audio(r, y, k=k)
        return Recommendation(run=r.run_id, query=query, neighbours=track_records(found.neighbours, tags=store.tags(r)),
                              map_positions={m: [round(float(v), 4) for v in xy] for m, xy in found.positions.items()})

    @app.post("/runs/{run}/similar", response_model=Similar,
              summary="The k tracks nearest a set of library tracks, none of the set among them (JSON: track_ids, k)")
    def similar(run: str, body: SimilarQuery):
        r = store.get(run)
        rows = track_rows(r, body.track_ids)
        try:
            found = more_like_these(r, rows, k=body.k)
        except CollectionError as error:  # the set is the whole library
            raise HTTPException(422, str(error)) from None
        return Similar(run=r.run_id, query=track_records(r.tracks.iloc[rows], tags=store.tags(r)),
                       neighbours=track_records(found, tags=store.tags(r)))

    @app.get("/runs/{run}/collections", response_model=list[CollectionInfo],
             summary="The collections of the run's dataset (every run of the dataset shares them)")
    def list_collections(run: str):
        r = store.get(run)
        return [collection_info(r, c) for c in collections.all_collections(collections.run_dataset(r))]

    @app.post("/runs/{run}/collections", response_model=CollectionInfo, status_code=201,
              summary="Save tracks of the run as a named collection of its dataset (JSON: name, track_ids)",
              responses={422: {"description": "empty, too long, path-like or duplicate name; no tracks"}})
    def create_collection(run: str, body: NewCollection):
        r = store.get(run)
        rows = track_rows(r, body.track_ids)
        try:
            saved = collections.save_selection(r, body.name, rows)
        except CollectionError as error:
            raise HTTPException(422, str(error)) from None
        return collection_info(r, saved)

    @app.get("/runs/{run}/collections/{collection_id}", response_model=CollectionDetail,
             summary="One collection with the member tracks the run holds")
    def get_collection(run: str, collection_id: str):
        r = store.get(run)
        found = find_collection(r, collection_id)
        members = r.tracks.iloc[collections.collection_rows(r, found)]
        return {**collection_info(r, found), "tracks": track_records(members, tags=store.tags(r))}

    @app.delete("/runs/{run}/collections/{collection_id}", response_model=CollectionInfo,
                summary="Delete a collection of the run's dataset; answers it as it was")
    def delete_collection(run: str, collection_id: str):
        r = store.get(run)
        found = find_collection(r, collection_id)
        info = collection_info(r, found)
        collections.delete_collection(found.dataset, found.collection_id)
        return info

    @app.post("/runs/{run}/genre", response_model=Genre,
              summary="Genre probabilities of an uploaded audio file from the run's best saved classifier",
              responses={409: {"description": "the run has no saved classifier"}})
    def genre(run: str, file: UploadFile = File(...)):
        r = store.get(run)
        if best_classifier(r) is None:
            raise HTTPException(409, f"run {r.run_id!r} has no saved classifier: train one with "
                                     f"`python -m core classify --run {r.run_id}` or on the Classifiers page")
        with slots.held():
            query, y = query_audio(r, file, cfg)
            prediction = predict_genre(r, y=y)
        return Genre(run=r.run_id, query=query, **dataclasses.asdict(prediction))

    app.add_middleware(BodyLimit, max_mb=cfg.max_upload_mb)
    if api_key:
        app.add_middleware(ApiKeyGuard, key=api_key)
        _document_key(app)
    if cfg.cors_origin:  # outermost, so a browser's preflight is answered before the key is asked
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origin), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=[API_KEY_HEADER, "Content-Type"])
    return app


def app_from_env() -> FastAPI:
    """uvicorn's app factory: the settings ``python -m api`` put in ``TIMBRE_API_CONFIG``."""
    values = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    values["cors_origin"] = tuple(values.get("cors_origin", ()))
    return create_app(ApiConfig(**values))
