"""Pieces of pages that several pages draw: the run picker, the projection switch, players, ranked track lists
with Spotify / YouTube links, and the "no data yet" stops."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.analysis import UNLABELLED
from core.base import TimbreError, public_path
from core.data import display_name, display_names
from core.runs import Run, list_runs, run_label
from core.service import track_links
from ui.figures import METHOD_NAMES
from ui.sources import source_choices, source_for_key, source_stamp
from ui.state import DEFAULT_METHOD, METHOD_KEY, RUN_KEY, RUN_PICK_KEY, active_run_id, cached_run, set_active_run

RUNS_PAGE = "pages/runs.py"
SOURCE_KEY = "analysis_source"


def score_pair(learned, baseline) -> str:
    """A learned score with the MFCC baseline's in brackets, "0.755 (0.650)", one table column for both; a dash
    where there is none (an unlabelled library, a reference run)."""
    if learned is None or pd.isna(learned):
        return "—"
    return f"{learned:.3f}" if baseline is None or pd.isna(baseline) else f"{learned:.3f} ({baseline:.3f})"


def run_picker() -> str | None:
    """The sidebar's "Active run" select box (drawn by the router on every page); returns the active run."""
    current = active_run_id()
    if current is None:
        return None
    st.session_state[RUN_PICK_KEY] = current  # follows RUN_KEY when a page or a new build changed it
    st.sidebar.selectbox("Active run", list_runs(), key=RUN_PICK_KEY, help="Every page works on this run. Newest first.",
                         format_func=run_label, on_change=lambda: set_active_run(st.session_state[RUN_PICK_KEY]))
    return st.session_state[RUN_KEY]


def require_run() -> Run:
    """The active run, or a plain message pointing to the Runs page (and the page stops)."""
    run_id = active_run_id()
    if run_id is None:
        st.info("There is no run yet. Build the demo run (or train your own) on the Runs page.")
        st.page_link(RUNS_PAGE, label="Go to Runs", icon=":material/folder_open:")
        st.stop()
    return open_run(run_id)


def open_run(run_id: str, *, stop: bool = True) -> Run | None:
    """:func:`ui.state.cached_run`, or a plain message naming the run and why it cannot be opened (a damaged
    folder, a newer version's model) and then the page stops (``stop``) or None comes back; the sidebar still
    offers the other runs."""
    try:
        return cached_run(run_id)
    except TimbreError as error:
        st.error(f"Run {run_id} cannot be opened: {error}. Choose another run in the sidebar.")
        if stop:
            st.stop()
        return None


def projection_picker(widget_key: str) -> str:
    """PCA / t-SNE / UMAP switch; the choice is shared by every page that draws a map.

    The switch can answer None: when a server's first request ran a page outside the router, the next click
    reaches a widget of another id (the old page mode's). The page then keeps the shared choice, never None.
    """
    shared = st.session_state.get(METHOD_KEY)
    shared = shared if shared in METHOD_NAMES else DEFAULT_METHOD
    if widget_key not in st.session_state:
        st.session_state[widget_key] = shared
    method = st.segmented_control("Projection", list(METHOD_NAMES), format_func=METHOD_NAMES.get,
                                  required=True, key=widget_key)
    method = method if method in METHOD_NAMES else shared
    st.session_state[METHOD_KEY] = method
    return method


def play(path) -> None:
    """An audio player for a library file, or a note when the file has moved."""
    if Path(str(path)).is_file():
        st.audio(str(path))
    else:
        st.caption(f"File not found: {path}")


def links_markdown(track) -> str:
    """``[Spotify](...) · [YouTube](...)`` for one track (search links; see :func:`core.service.links.track_links`)."""
    links = track_links(track)
    return f"[Spotify]({links['spotify_url']}) · [YouTube]({links['youtube_url']})"


def track_heading(track) -> None:
    """A track's name as a subheader, with its label, length, file and links below."""
    label = track["label"] if isinstance(track["label"], str) else UNLABELLED
    st.subheader(display_name(track))
    st.caption(f"label **{label}** · {track['duration_s']:.1f} s · `{public_path(track['path'])}`")
    st.markdown(links_markdown(track))


def neighbour_list(neighbours: pd.DataFrame, *, skip_row: int | None = None, buttons=None) -> None:
    """Ranked tracks with their similarity score, label, Spotify and YouTube links and a player each (``skip_row`` gets no
    player: it is the query itself). A ``why`` column (an answer for a listener) is shown as each track's reasons, and
    ``buttons(row)`` (:func:`ui.taste.button_maker`) draws under each track."""
    personal = "why" in neighbours.columns and "taste" in neighbours.columns  # re-ranked: the score is a blend
    for (_, item), name in zip(neighbours.iterrows(), display_names(neighbours)):
        label = item["label"] if isinstance(item["label"], str) else UNLABELLED
        score = f"blend **{item['score']:.2f}**" if personal else f"similarity **{item['score']:.3f}**"
        line = f"**{item['rank']}. {name}** · {label} · {score} · {links_markdown(item)}"
        if item["row"] == skip_row:
            st.markdown(f"{line} · *this track*")
            continue
        st.markdown(line)
        if "why" in neighbours.columns and len(item["why"]):
            st.caption("; ".join(item["why"]).capitalize())
        play(item["path"])
        if buttons is not None:
            buttons(item["row"])


def pick_source():
    """Select box of the active run and every imported feature table; returns the chosen
    :class:`core.analysis.sources.Source` (the page stops when there is neither)."""
    choices = source_choices(active_run_id())
    if not choices:
        st.info("There is no run and no imported feature table yet. Build the demo run on the Runs page, or "
                "import a table with `python -m core import-features CSV --name NAME --label COL`.")
        st.stop()
    key = st.selectbox("Data", list(choices), format_func=choices.get, key=SOURCE_KEY)
    try:
        return cached_source(key, source_stamp(key))
    except TimbreError as error:  # a broken active run (its reason never names a server folder)
        st.error(f"{choices[key].capitalize()} cannot be opened: {error}. Choose another run in the sidebar"
                 + (" or another table above." if len(choices) > 1 else "."))
        st.stop()


@st.cache_resource(show_spinner="Loading data...", max_entries=8)
def cached_source(key: str, stamp: float):
    """:func:`ui.sources.source_for_key`, loaded again when ``stamp`` (the files' modification time) changes."""
    return source_for_key(key)
