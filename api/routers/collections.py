"""The collections of a run's dataset: list, create, read, delete."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import run_of, service
from api.schemas import CollectionDetail, CollectionInfo, NewCollection
from core.analysis import Collection, all_collections, collection_rows, run_dataset, save_selection
from core.analysis import delete_collection as remove_collection
from core.runs import Run
from core.service import QueryService

router = APIRouter(prefix="/runs/{run}/collections")


def collection_info(run: Run, found: Collection) -> dict:
    return {"collection_id": found.collection_id, "name": found.name, "dataset": found.dataset,
            "n_tracks": found.n_tracks, "n_in_run": len(collection_rows(run, found)),
            "created": found.created}


@router.get("", response_model=list[CollectionInfo],
            summary="The collections of the run's dataset (every run of the dataset shares them)")
def list_collections(run: Run = Depends(run_of)):
    return [collection_info(run, c) for c in all_collections(run_dataset(run))]


@router.post("", response_model=CollectionInfo, status_code=201,
             summary="Save tracks of the run as a named collection of its dataset (JSON: name, track_ids)",
             responses={422: {"description": "empty, too long, path-like or duplicate name; no tracks"}})
def create_collection(body: NewCollection, run: Run = Depends(run_of), queries: QueryService = Depends(service)):
    rows = queries.track_rows(run, body.track_ids)
    return collection_info(run, save_selection(run, body.name, rows))


@router.get("/{collection_id}", response_model=CollectionDetail,
            summary="One collection with the member tracks the run holds")
def get_collection(collection_id: str, run: Run = Depends(run_of), queries: QueryService = Depends(service)):
    found = queries.collection(run, collection_id)
    members = run.tracks.iloc[collection_rows(run, found)]
    return {**collection_info(run, found), "tracks": queries.records(run, members)}


@router.delete("/{collection_id}", response_model=CollectionInfo,
               summary="Delete a collection of the run's dataset; answers it as it was")
def delete_collection(collection_id: str, run: Run = Depends(run_of), queries: QueryService = Depends(service)):
    found = queries.collection(run, collection_id)
    info = collection_info(run, found)
    remove_collection(found.dataset, found.collection_id)
    return info
