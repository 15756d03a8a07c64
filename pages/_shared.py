"""Helpers every page uses: the active run (kept in session state) and cached loaders."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.maps import METHOD_NAMES, map_points, track_names
from core.query import similar_tracks
from core.runs import Run, list_runs, load_run

RUN_KEY = "active_run_id"
ROUTED_KEY = "_routed_through_app"
# The projection chosen on the Map page; the Recommend page places queries on the same one.
METHOD_KEY = "active_projection"
DEFAULT_METHOD = "umap"


@st.cache_resource(show_spinner="Loading run...")
def cached_run(run_id: str) -> Run:
    """A run with its arrays and model loaded once per server (runs never change after they are written)."""
    run = load_run(run_id)
    run.embeddings, run.projections, run.tracks, run.model  # noqa: B018 (warm the lazy attributes)
    return run


def ensure_router() -> None:
    """Rerun through ``app.py`` when Streamlit has taken ``pages/`` for a v1 multipage folder.

    Until ``app.py`` has called ``st.navigation`` once, Streamlit treats a ``pages/`` folder beside the main
    script as an old-style multipage app: after a server start, a first request straight to ``/map`` runs
    ``pages/map.py`` without the router, and every session then shows a sidebar of file names. Switching that
    mode off and rerunning sends the request through the router instead.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the v1 mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if not st.session_state.get(ROUTED_KEY):  # a page load: rerun at once (no click can be lost)
            st.session_state[ROUTED_KEY] = True
            st.rerun()
    st.session_state[ROUTED_KEY] = True


def active_run_id() -> str | None:
    """The run chosen on the Runs page, else the newest one; None when there is no run at all."""
    ensure_router()
    runs = list_runs()
    if not runs:
        return None
    if st.session_state.get(RUN_KEY) not in runs:
        st.session_state[RUN_KEY] = runs[0]
    return st.session_state[RUN_KEY]


def require_run() -> Run:
    """The active run, or a plain message pointing to the Runs page (and the page stops)."""
    run_id = active_run_id()
    if run_id is None:
        st.info("There is no run yet. Build the demo run (or train your own) on the Runs page.")
        st.page_link("pages/runs.py", label="Go to Runs", icon=":material/folder_open:")
        st.stop()
    return cached_run(run_id)


@st.cache_resource(show_spinner=False, max_entries=12)
def cached_points(run_id: str, method: str) -> pd.DataFrame:
    """:func:`core.maps.map_points` of a run, built once per server (treat it as read-only)."""
    return map_points(cached_run(run_id), method)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_similar(run_id: str, row: int, k: int) -> pd.DataFrame:
    """:func:`core.query.similar_tracks` (the track itself first)."""
    return similar_tracks(cached_run(run_id), row, k=k)


def projection_picker(widget_key: str) -> str:
    """PCA / t-SNE / UMAP switch; the choice is shared by every page that draws a map."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = st.session_state.get(METHOD_KEY, DEFAULT_METHOD)
    method = st.segmented_control("Projection", list(METHOD_NAMES), format_func=METHOD_NAMES.get,
                                  required=True, key=widget_key)
    st.session_state[METHOD_KEY] = method
    return method


def play(path) -> None:
    """An audio player for a library file, or a note when the file has moved."""
    if Path(str(path)).is_file():
        st.audio(str(path))
    else:
        st.caption(f"File not found: {path}")


def neighbour_list(neighbours: pd.DataFrame, *, skip_row: int | None = None) -> None:
    """Ranked tracks with cosine score, label and a player each (``skip_row`` gets no player: it is the query)."""
    names = track_names(neighbours)
    for (_, item), name in zip(neighbours.iterrows(), names):
        label = item["label"] if isinstance(item["label"], str) else "unlabelled"
        line = f"**{item['rank']}. {name}** · {label} · cosine **{item['score']:.3f}**"
        if item["row"] == skip_row:
            st.markdown(f"{line} · *this track*")
            continue
        st.markdown(line)
        play(item["path"])


# ---- analysis pages (Classifiers, Features, Clusters): a run or an imported feature table

INPUT_NAMES = {"features": "audio features", "embeddings": "embeddings", "both": "features + embeddings"}


@st.cache_resource(show_spinner="Loading data...", max_entries=8)
def cached_source(key: str, stamp: float):
    from core.feature_table import source_for_key

    return source_for_key(key)


def pick_source():
    """The active run or an imported feature table (the page stops when there is neither)."""
    from core.feature_table import source_choices, source_stamp

    choices = source_choices(active_run_id())
    if not choices:
        st.info("There is no run and no imported feature table yet. Build the demo run on the Runs page, or "
                "import a table with `python -m core import-features CSV --name NAME --label COL`.")
        st.stop()
    key = st.selectbox("Data", list(choices), format_func=choices.get, key="analysis_source")
    return cached_source(key, source_stamp(key))
