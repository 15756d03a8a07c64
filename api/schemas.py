"""The API's request and response bodies (pydantic). Where a body mirrors a ``core`` type its fields are read
from that type (:func:`fields_of`), so the two cannot drift apart; the rest is the API's own contract."""
from __future__ import annotations

import dataclasses
import typing
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from core.analysis import GenrePrediction
from core.base import DEFAULT_SET_K, MAX_K

MAX_SELECTION = 100_000  # track ids in one collection or one multi-track query


def fields_of(cls) -> dict:
    """A dataclass's fields as :func:`pydantic.create_model` field definitions (all required)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], ...) for f in dataclasses.fields(cls)}


class TagScore(BaseModel):
    tag: str
    likelihood: float


class Track(BaseModel):
    """One track as :meth:`core.service.service.QueryService.records` gives it."""

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
    why: list[str] = []  # for a listener: "sounds like X", "you liked Y", "listeners of Z played it", strongest first


class Personal(BaseModel):
    """How an answer for a listener (the ``X-Listener-Key`` header) was ranked."""

    personal: bool = Field(False, description="true when the listener's taste or other listeners re-ranked it")
    note: Optional[str] = Field(None, description="why it is pure audio similarity although a listener was named")


class QueryInfo(BaseModel):
    """The uploaded query (:class:`core.service.service.QueryAudio` without its samples)."""

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


class Neighbours(Personal):
    run: str
    track: Track
    neighbours: list[Neighbour]


class Recommendation(Personal):
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
    k: int = Field(DEFAULT_SET_K, ge=1, le=MAX_K)


class Similar(Personal):
    run: str
    query: list[Track]
    neighbours: list[Neighbour]


class Genre(create_model("GenrePrediction", **fields_of(GenrePrediction))):
    """:class:`core.analysis.genre.GenrePrediction` of an uploaded query."""

    run: str
    query: QueryInfo


class NewListener(BaseModel):
    name: str = Field(..., min_length=1, max_length=80)


class ListenerKey(BaseModel):
    listener_id: int
    name: str
    key: str = Field(description="send it as the X-Listener-Key header; it is shown only this once")


class NewEvent(BaseModel):
    track_id: str = Field(..., max_length=200)
    kind: str = Field(..., description="played, liked, disliked or skipped")
    query: Optional[str] = Field(None, max_length=300, description="what led there (a query's name)")


class Event(BaseModel):
    event_id: int
    track_id: str
    kind: str
    time: Optional[float] = None  # seconds since 1970
    query: Optional[str] = None
    source: Optional[str] = None
    name: Optional[str] = None  # the track's name when the run holds it


class ListenerData(BaseModel):
    listener_id: int
    name: str
    counts: dict[str, int]
    events: list[Event] = Field(description="the newest events (at most 500); counts cover all")


class Forgotten(BaseModel):
    deleted_events: int


class HistoryImport(BaseModel):
    rows: int
    matched: int
    tracks: int
    unmatched: int
    unmatched_top: list[tuple[str, int]] = Field(description="the most frequent unmatched artist - title, with counts")


class ForYou(Personal):
    run: str
    neighbours: list[Neighbour]
