"""Session state every page shares (the active run, the chosen projection), the query service and cached
loaders, and the chart selection events that map back to tracks."""
from __future__ import annotations

import math
from typing import Mapping

import pandas as pd
import streamlit as st

from core.analysis import (
    Collection,
    all_collections,
    collections_path,
    colour_options,
    colour_points,
    colour_sources,
    map_points,
    run_dataset,
    tag_sources,
)
from core.base import TimbreError
from core.runs import Run, first_healthy_run, list_runs
from core.service import QueryService

# Session keys (one place, so pages never spell them twice).
RUN_KEY = "active_run_id"  # the run every page works on
RUN_PICK_KEY = "runs_pick"  # the sidebar's run picker widget, which follows RUN_KEY
METHOD_KEY = "active_projection"  # the projection chosen on one page; the others draw the same one
DEFAULT_METHOD = "umap"


def active_run_id() -> str | None:
    """The chosen run, else the newest one that opens (else the newest); None when there is no run at all."""
    runs = list_runs()
    if not runs:
        return None
    if st.session_state.get(RUN_KEY) not in runs:
        st.session_state[RUN_KEY] = first_healthy_run() or runs[0]
    return st.session_state[RUN_KEY]


def set_active_run(run_id: str) -> None:
    st.session_state[RUN_KEY] = run_id


@st.cache_resource(show_spinner=False)
def cached_service() -> QueryService:
    """The server's :class:`core.service.QueryService`: every page's runs and queries (one per server;
    runs are opened as pages ask for them, their arrays and model loaded once, with no query warm-up)."""
    return QueryService(warm=False)


def cached_run(run_id: str) -> Run:
    """A run with its arrays and model loaded once per server (runs never change after they are written)."""
    service = cached_service()
    if run_id in service.loaded():
        return service.run(run_id)
    with st.spinner("Loading run..."):
        return service.run(run_id)


def cached_points(run_id: str, method: str) -> pd.DataFrame:
    """:func:`core.analysis.map_points` of a run, built once per server and again when the run's musicnn
    tags change (a tags job finished: the hovers carry them). Treat it as read-only."""
    return _points(run_id, method, files_stamp(tag_sources(cached_run(run_id))))


@st.cache_resource(show_spinner=False, max_entries=12)
def _points(run_id: str, method: str, tags_stamp: str) -> pd.DataFrame:
    return map_points(cached_run(run_id), method)


def files_stamp(files) -> str:
    """Names and modification times of those of ``files`` that exist: a cache key that changes when one is
    written."""
    return ";".join(f"{f.name}:{f.stat().st_mtime_ns}" for f in files if f.exists())


def colour_stamp(run_id: str) -> str:
    """Changes when what a map can be coloured by changes (cluster results, the dataset's tags or collections
    written)."""
    return files_stamp(colour_sources(cached_run(run_id)))


@st.cache_data(show_spinner=False, max_entries=32)
def cached_colour_options(run_id: str, stamp: str) -> list[str]:
    """:func:`core.analysis.colour_options` (``stamp``: :func:`colour_stamp`, so new results show up)."""
    return colour_options(cached_run(run_id))


@st.cache_resource(show_spinner=False, max_entries=12)
def cached_coloured_points(run_id: str, method: str, option: str, stamp: str) -> pd.DataFrame:
    """:func:`core.analysis.colour_points` of :func:`cached_points` (treat it as read-only)."""
    return colour_points(cached_run(run_id), cached_points(run_id, method), option)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_similar(run_id: str, row: int, k: int) -> pd.DataFrame:
    """The service's ``k`` nearest tracks of a track, the track itself first
    (:meth:`core.service.QueryService.nearest_tracks`)."""
    return cached_service().nearest_tracks(cached_run(run_id), row, k=k)


@st.cache_data(show_spinner=False, max_entries=256)
def nearest_others(run_id: str, row: int, k: int) -> pd.DataFrame:
    """A track's ``k`` nearest neighbours without the track itself, ranked 1..k
    (:meth:`core.service.QueryService.neighbours`)."""
    return cached_service().neighbours(cached_run(run_id), row, k=k)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_search(run_id: str, query: str, limit: int = 50) -> list[int]:
    """Rows of the service's text search in a run's tracks (:meth:`core.service.QueryService.search`: none for an
    empty query; ``tag:NAME`` gives the tracks most likely to carry that musicnn tag, :class:`TagError` when
    unknown)."""
    return cached_service().search(cached_run(run_id), query, limit=limit)["row"].astype(int).tolist()


def collection_stamp(dataset: str) -> float:
    """Changes whenever the dataset's collections do (a cache key)."""
    try:
        path = collections_path(dataset)
    except TimbreError:
        return 0.0
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False, max_entries=32)
def cached_collections(dataset: str, stamp: float) -> dict[str, Collection]:
    """``{collection id: Collection}`` of a dataset, by name (``stamp``: :func:`collection_stamp`)."""
    return {c.collection_id: c for c in all_collections(dataset)}


def run_collections(run: Run) -> dict[str, Collection]:
    """The collections of a run's dataset, read again whenever one is saved, renamed or deleted."""
    try:
        dataset = run_dataset(run)
    except TimbreError:
        return {}
    return cached_collections(dataset, collection_stamp(dataset))


def collection_label(collections: Mapping[str, Collection]):
    """A select box's ``format_func`` for collection ids (None: no collection)."""
    return lambda cid: "none" if cid is None else f"{collections[cid].name} ({collections[cid].n_tracks})"


def selected_box(selection: Mapping | None) -> tuple[float, float, float, float] | None:
    """The last box drawn in a ``st.plotly_chart`` selection event as ``(x0, x1, y0, y1)`` (corners in any
    order), or None when there is none (or it is malformed).

    Parameters
    ----------
    selection : mapping or None
        The chart's state: ``{"selection": {"box": [{"x": [x0, x1], "y": [y0, y1], ...}, ...], ...}}``.
    """
    boxes = ((selection or {}).get("selection") or {}).get("box") or []
    try:
        x, y = boxes[-1]["x"], boxes[-1]["y"]
        corners = tuple(float(v) for v in (x[0], x[1], y[0], y[1]))
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    return corners if all(map(math.isfinite, corners)) else None


def selected_rows(selection: Mapping | None) -> list[int]:
    """Track rows picked in a ``st.plotly_chart`` selection event (points without a row are ignored).

    Parameters
    ----------
    selection : mapping or None
        The chart's state: ``{"selection": {"points": [{"customdata": row, ...}, ...]}}``.

    Returns
    -------
    list of int
        In the order the points were reported, without repeats.
    """
    points = ((selection or {}).get("selection") or {}).get("points") or []
    rows: list[int] = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is None or isinstance(data, bool):
            continue
        try:
            row = int(data)
        except (TypeError, ValueError):
            continue
        if row not in rows:
            rows.append(row)
    return rows
