"""Health and the runs."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import service
from api.schemas import Health, RunInfo
from core.runs import list_runs
from core.service import QueryService

router = APIRouter()


@router.get("/health", response_model=Health, summary="Liveness and the loaded runs")
def health(queries: QueryService = Depends(service)):
    return Health(status="ok", default_run=queries.default_id, loaded_runs=queries.loaded())


@router.get("/runs", response_model=list[RunInfo], summary="Every complete run with its evaluation")
def runs(queries: QueryService = Depends(service)):
    return [queries.summary(run_id) for run_id in list_runs()]
