"""Track search and the neighbours of a library track."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from api.deps import maybe_listener, run_of, service
from api.routers.listeners import personal_body
from api.schemas import Neighbours, TrackList
from core.base import DEFAULT_K, MAX_K
from core.runs import Run
from core.service import QueryService

MAX_LIMIT = 500

router = APIRouter(prefix="/runs/{run}/tracks")


@router.get("", response_model=TrackList,
            summary="Search tracks by artist, title, file name or label (case-insensitive); no q lists them")
def tracks(q: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=MAX_LIMIT),
           tag: str = Query("", max_length=100, description="order by this musicnn tag's likelihood (tag=piano)"),
           run: Run = Depends(run_of), queries: QueryService = Depends(service)):
    found = queries.find_tracks(run, q, tag=tag)
    return TrackList(run=run.run_id, q=q, total=len(found),  # every match; the first `limit` are listed
                     tracks=queries.records(run, found.head(limit)))


@router.get("/{track_id}/neighbours", response_model=Neighbours,
            summary="The k library tracks most similar to a library track (itself left out)")
def neighbours(track_id: str, k: int = Query(DEFAULT_K, ge=1, le=MAX_K), run: Run = Depends(run_of),
               queries: QueryService = Depends(service), who: tuple = Depends(maybe_listener)):
    row = queries.track_row(run, track_id)
    near = queries.neighbours(run, row, k=k)
    track = queries.records(run, run.tracks.iloc[[row]])[0]
    answer = queries.listening.personalise(run, who[0], near, embedding=run.embeddings[row], k=k,
                                           query_name=track["name"], exclude=[row])
    return Neighbours(run=run.run_id, track=track, **personal_body(queries, run, answer, who[1]))
