"""The genre of an uploaded file."""
from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, File, Request, UploadFile

from api.deps import AudioSlots, audio_slots, query_audio, run_of, service
from api.schemas import Genre, QueryInfo
from core.runs import Run
from core.service import QueryService

router = APIRouter(prefix="/runs/{run}")


@router.post("/genre", response_model=Genre,
             summary="Genre probabilities of an uploaded audio file from the run's best saved classifier",
             responses={409: {"description": "the run has no saved classifier"}})
def genre(request: Request, file: UploadFile = File(...), run: Run = Depends(run_of),
          queries: QueryService = Depends(service), slots: AudioSlots = Depends(audio_slots)):
    queries.check_genre(run)  # before the upload is decoded
    with slots.held():
        query = query_audio(request, run, file)
        prediction = queries.genre(run, y=query.y)
    return Genre(run=run.run_id, query=QueryInfo(name=query.name, seconds=query.seconds),
                 **dataclasses.asdict(prediction))
