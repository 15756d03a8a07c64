"""Listeners: a key of one's own, events (played, liked, disliked, skipped), a listening history imported from
CSV, one's own data (seen and deleted: only one's own, by the key), and a "for you" list."""
from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from api.deps import listener, run_of, service
from api.schemas import Event, Forgotten, ForYou, HistoryImport, ListenerData, ListenerKey, NewEvent, NewListener
from core.base import DEFAULT_K, MAX_K, TimbreError
from core.data import saved_upload
from core.listeners import Listener
from core.runs import Run
from core.service import Personal, QueryService, check_k

router = APIRouter()


def personal_body(queries: QueryService, run: Run, answer: Personal, note: Optional[str] = None) -> dict:
    """``neighbours`` (track records with ``why``), ``personal`` and ``note`` of an answer for a listener."""
    records = queries.records(run, answer.neighbours)
    for record, why in zip(records, answer.neighbours.get("why", [[]] * len(records))):
        record["why"] = list(why)
    return {"neighbours": records, "personal": answer.personal, "note": note or answer.note}


@router.post("/listeners", response_model=ListenerKey, status_code=201,
             summary="Become a listener: a name in, a key out (send it as X-Listener-Key)")
def new_listener(body: NewListener, queries: QueryService = Depends(service)):
    found, key = queries.listening.store.new_api_listener(body.name)
    return ListenerKey(listener_id=found.listener_id, name=found.name, key=key)


@router.get("/listeners/me", response_model=ListenerData,
            summary="Everything the server keeps of the listener holding the key (counts and the newest events)")
def my_data(run: Optional[str] = Query(None, description="a run whose track names to add (default: the server's)"),
            me: Listener = Depends(listener), queries: QueryService = Depends(service)):
    try:
        named = queries.run(run)
    except TimbreError:  # names are a courtesy: no run, or a broken one, lists ids only
        named = None
    data = queries.listening.my_data(me, run=named)
    events = data["events"].astype(object).where(data["events"].notna(), None).to_dict("records")
    return ListenerData(listener_id=me.listener_id, name=me.name, counts=data["counts"],
                        events=[Event(**e) for e in events])


@router.delete("/listeners/me", response_model=Forgotten,
               summary="Delete the listener holding the key and everything it did (the key stops working)")
def forget_me(me: Listener = Depends(listener), queries: QueryService = Depends(service)):
    return Forgotten(deleted_events=queries.listening.forget(me))


@router.post("/runs/{run}/events", status_code=201, response_model=Event,
             summary="Record that the listener played, liked, disliked or skipped a track of the run")
def add_event(body: NewEvent, run: Run = Depends(run_of), me: Listener = Depends(listener),
              queries: QueryService = Depends(service)):
    event_id = queries.listening.record(run, me, body.track_id, body.kind, query=body.query, source="api")
    return Event(event_id=event_id, track_id=body.track_id, kind=body.kind, query=body.query, source="api")


@router.post("/runs/{run}/history", response_model=HistoryImport,
             summary="Import a listening history (a Last.fm or Spotify CSV export: artist, title, time) as plays")
def import_history(request: Request, file: UploadFile = File(...), run: Run = Depends(run_of),
                   me: Listener = Depends(listener), queries: QueryService = Depends(service)):
    cfg = request.app.state.config
    with saved_upload(file.file, file.filename, max_mb=cfg.max_upload_mb, dir=cfg.upload_dir) as path:
        report = queries.listening.import_history(run, me, path, name=file.filename or "history.csv")
    return HistoryImport(rows=report.rows, matched=report.matched, tracks=report.tracks, unmatched=report.unmatched,
                         unmatched_top=report.unmatched_top)


@router.get("/runs/{run}/for-you", response_model=ForYou,
            summary="Tracks new to the listener, from its taste and what listeners of the same tracks played")
def for_you(k: int = Query(DEFAULT_K, ge=1, le=MAX_K), run: Run = Depends(run_of), me: Listener = Depends(listener),
            queries: QueryService = Depends(service)):
    check_k(k, available=len(run.tracks))
    return ForYou(run=run.run_id, **personal_body(queries, run, queries.listening.for_you(run, me, k=k)))
