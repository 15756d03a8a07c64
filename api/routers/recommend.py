"""Recommendations for an uploaded file and for a set of library tracks."""
from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from api.deps import AudioSlots, audio_slots, maybe_listener, query_audio, run_of, service
from api.routers.listeners import personal_body
from api.schemas import QueryInfo, Recommendation, Similar, SimilarQuery
from core.base import DEFAULT_K, MAX_K
from core.data import display_name
from core.runs import Run
from core.service import QueryService, check_k

router = APIRouter(prefix="/runs/{run}")


@router.post("/recommend", response_model=Recommendation,
             summary="The k library tracks most similar to an uploaded audio file (multipart: file, k)")
def recommend(request: Request, file: UploadFile = File(...), k: int = Form(DEFAULT_K, ge=1, le=MAX_K),
              run: Run = Depends(run_of), queries: QueryService = Depends(service),
              slots: AudioSlots = Depends(audio_slots), who: tuple = Depends(maybe_listener)):
    check_k(k, available=len(run.tracks))  # before the upload is decoded: a bad k is told at once
    with slots.held():
        query = query_audio(request, run, file)
        found = queries.recommend(run, query, k=k, genre=False).recommendation
    answer = queries.listening.personalise(run, who[0], found.neighbours, embedding=found.embedding, k=k,
                                           query_name=query.name)
    return Recommendation(run=run.run_id, query=QueryInfo(name=query.name, seconds=query.seconds),
                          **personal_body(queries, run, answer, who[1]),
                          map_positions={m: [round(float(v), 4) for v in xy] for m, xy in found.positions.items()})


@router.post("/similar", response_model=Similar,
             summary="The k tracks nearest a set of library tracks, none of the set among them (JSON: track_ids, k)")
def similar(body: SimilarQuery, run: Run = Depends(run_of), queries: QueryService = Depends(service),
            who: tuple = Depends(maybe_listener)):
    rows = queries.track_rows(run, body.track_ids)
    found = queries.similar(run, rows, k=body.k)
    answer = queries.listening.personalise(run, who[0], found, embedding=run.embeddings[rows].mean(axis=0), k=body.k,
                                           query_name=f"the {len(rows)} tracks" if len(rows) > 1 else
                                           display_name(run.tracks.iloc[rows[0]]), exclude=rows)
    return Similar(run=run.run_id, query=queries.records(run, run.tracks.iloc[rows]),
                   **personal_body(queries, run, answer, who[1]))
