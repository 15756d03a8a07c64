"""What endpoints depend on (FastAPI ``Depends``): the app's query service, its settings, its audio slots, the
run a request names, and an upload decoded as a query."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Optional

from fastapi import Depends, Header, HTTPException, Request, UploadFile

from api import memory
from core.base import ListenerError
from core.data import saved_upload
from core.listeners import Listener
from core.runs import Run
from core.service import QueryAudio, QueryService

DEFAULT_RUN = "default"  # the {run} path segment that means the server's run (--run, else the newest)
LISTENER_HEADER = "X-Listener-Key"  # who is listening: the key POST /listeners gave


class AudioSlots:
    """At most ``slots`` audio queries decode and embed at once; another waits up to ``wait_s`` seconds for a
    slot, then gets 503 with ``Retry-After`` (a burst of large uploads must not multiply the server's memory).
    What a query's decoding freed goes back to the system when it ends (:func:`api.memory.trim`)."""

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
            memory.trim()


def service(request: Request) -> QueryService:
    """The app's :class:`~core.service.service.QueryService` (one per process, made by ``create_app``)."""
    return request.app.state.service


def audio_slots(request: Request) -> AudioSlots:
    return request.app.state.audio_slots


def run_of(run: str, queries: QueryService = Depends(service)) -> Run:
    """The run of the ``{run}`` path segment (``default``: the server's), opened once per process; the service's
    :class:`NotFound` becomes a 404."""
    return queries.run(None if run == DEFAULT_RUN else run)


def query_audio(request: Request, run: Run, upload: UploadFile) -> QueryAudio:
    """An upload decoded as a query of ``run``: streamed into a private temp file with the app's size cap
    (:func:`core.data.uploads.saved_upload`, removed whatever happens); the client's file name is only shown."""
    cfg = request.app.state.config
    with saved_upload(upload.file, upload.filename, max_mb=cfg.max_upload_mb, dir=cfg.upload_dir) as path:
        return service(request).load(run, path, name=upload.filename or "")


def listener(request: Request, key: str = Header(..., alias=LISTENER_HEADER,
                                                 description="the key POST /listeners gave")) -> Listener:
    """The listener whose key the request carries (404 for an unknown key, 503 when the store is unavailable)."""
    return service(request).listening.store.api_listener(key)


def maybe_listener(request: Request, key: Optional[str] = Header(
        None, alias=LISTENER_HEADER, description="personalise the answer for this listener")) -> tuple:
    """``(listener or None, note or None)``: no header is no listener; an unknown key is a 404; a store that
    cannot be read gives no listener and a note, so the answer is pure audio similarity."""
    if not key:
        return None, None
    try:
        return service(request).listening.store.api_listener(key), None
    except ListenerError as error:
        return None, f"recommendations are pure audio similarity: {error}"
