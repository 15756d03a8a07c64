"""A set of tracks on screen: the selection (:mod:`ui.workspace`: a lasso or box drawn on the Map, tracks added
from lists), or a saved collection. The panel shows its size,
label mix and characteristic tags, a play list, "more like these", M3U / CSV downloads, and saving (a selection)
or renaming and deleting (a collection). The figures come from :mod:`core.analysis.collections`; this module only draws.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import (
    MAX_NAME_LENGTH,
    UNLABELLED,
    Collection,
    SelectionSummary,
    collection_rows,
    delete_collection,
    m3u_playlist,
    rename_collection,
    run_tags,
    save_selection,
    selection_summary,
    track_table,
    tracks_csv,
)
from core.base import TimbreError
from core.runs import Run
from ui.state import cached_run, cached_service, collection_label, run_collections
from ui.widgets import neighbour_list, play
from ui.workspace import clear_selection, list_actions

PLAYLIST_LIMIT = 20  # players drawn at most (the M3U and the CSV hold every track)
# Session keys of the Map page's sets (the selection itself is ui.workspace's)
NAME_KEY = "map_collection_name"
ERROR_KEY = "map_set_error"  # what a save, rename or delete (run as callbacks) could not do


@st.cache_data(show_spinner=False, max_entries=64)
def cached_collection_rows(run_id: str, collection: Collection) -> np.ndarray:
    """:func:`core.analysis.collections.collection_rows` (the members the run holds)."""
    return collection_rows(cached_run(run_id), collection)


# Sets are keyed by their rows as an array (hashed as bytes: a 100,000-track lasso costs milliseconds, a tuple of
# ints would cost a good part of a second).


@st.cache_data(show_spinner=False, max_entries=32)
def cached_summary(run_id: str, rows: np.ndarray) -> SelectionSummary:
    """:func:`core.analysis.collections.selection_summary` with the run's tags when it has them."""
    run = cached_run(run_id)
    return selection_summary(run, rows, tags=run_tags(run))


@st.cache_data(show_spinner="Finding more like these...", max_entries=32)
def cached_more_like(run_id: str, rows: np.ndarray, k: int) -> pd.DataFrame:
    """The service's tracks nearest a set (:func:`core.service.query.more_like_these`)."""
    return cached_service().similar(cached_run(run_id), rows, k=k)


def exports(run_id: str, rows: np.ndarray) -> tuple[Callable[[], str], Callable[[], str]]:
    """The set's M3U and CSV, each made only when its download is asked for (a large set's text takes seconds)."""
    def table() -> pd.DataFrame:
        return track_table(cached_run(run_id), rows)

    return (lambda: m3u_playlist(table())), (lambda: tracks_csv(table()))


def file_stem(name: str) -> str:
    """A download's file name from a collection name: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "selection"


def summary_lines(summary: SelectionSummary) -> None:
    mix = " · ".join(f"{r.label} {r.count} ({r.share:.0%})" for r in summary.label_mix.itertuples())
    st.markdown(f"**Labels:** {mix}")
    if summary.tags is None:
        st.caption("No musicnn tags for this run's tracks, so no tags are shown.")
    else:
        st.markdown("**Characteristic tags** (times as likely as in the whole library): "
                    + ", ".join(f"{tag} ×{lift:.2f}" for tag, lift in summary.tags))


def play_list(tracks: pd.DataFrame, *, total: int) -> None:
    """The first :data:`PLAYLIST_LIMIT` of a set's ``total`` tracks with players, in an expander."""
    shown = tracks.head(PLAYLIST_LIMIT)
    more = f" (the first {PLAYLIST_LIMIT} of {total}; the M3U holds them all)" if total > len(shown) else ""
    with st.expander(f"Play list{more}", expanded=False):
        for _, item in shown.iterrows():
            st.markdown(f"**{item['name']}** · {item['label'] if isinstance(item['label'], str) else UNLABELLED}")
            play(item["path"])


def downloads(m3u, csv, *, stem: str, key: str) -> None:
    """M3U and CSV download buttons (``m3u``, ``csv``: the text, or a callable that makes it on the click)."""
    left, right = st.columns(2)
    left.download_button("Download M3U playlist", m3u, file_name=f"{stem}.m3u", mime="audio/x-mpegurl",
                         key=f"{key}_m3u", icon=":material/queue_music:")
    right.download_button("Download CSV", csv, file_name=f"{stem}.csv", mime="text/csv", key=f"{key}_csv",
                          icon=":material/table:")


def more_like_section(run: Run, rows: np.ndarray, k: int, *, key: str) -> None:
    if not st.toggle(f"More like these: the {k} nearest tracks not in the set", key=f"{key}_more"):
        return
    try:
        found = cached_more_like(run.run_id, np.asarray(rows, dtype=np.int64), k)
    except TimbreError as error:
        st.error(str(error))
        return
    st.caption("Ranked by their mean cosine similarity to the tracks of the set.")
    if len(found) and float(found["score"].max()) <= 0:
        st.warning("Nothing else in the library is similar to this set in this run's space (every mean cosine "
                   "similarity is zero or below): these are the least dissimilar tracks.")
    neighbour_list(found)
    list_actions(run, found["row"], key=f"{key}_more_actions")


def set_panel(run: Run, rows: np.ndarray, *, title: str, k: int, key: str, stem: str) -> None:
    """What every set shows: title, summary, play list, downloads and more like these."""
    st.subheader(title)
    if len(rows) == 0:
        st.info("No track of this run is in it.")
        return
    rows = np.asarray(rows, dtype=np.int64)
    summary_lines(cached_summary(run.run_id, rows))
    play_list(track_table(run, rows[:PLAYLIST_LIMIT]), total=len(rows))
    downloads(*exports(run.run_id, rows), stem=stem, key=key)
    more_like_section(run, rows, k, key=key)


def attempt(change) -> None:
    """Run ``change()`` (a button's callback: before the page is drawn); its :class:`TimbreError` is kept to be
    shown by :func:`show_error`."""
    try:
        change()
    except TimbreError as error:
        st.session_state[ERROR_KEY] = str(error)


def show_error() -> None:
    message = st.session_state.pop(ERROR_KEY, None)
    if message:
        st.error(message)


def save_group(run: Run, rows: np.ndarray) -> None:
    """Save the selection under the typed name; the picker then shows the new collection."""
    saved = save_selection(run, st.session_state.get(NAME_KEY, ""), rows)
    st.session_state[picker_key(run.run_id)] = saved.collection_id
    st.session_state.pop(NAME_KEY, None)
    clear_selection()


def selection_panel(run: Run, rows: np.ndarray, *, k: int) -> None:
    """A lasso or box selection: :func:`set_panel`, a form that saves it as a collection, and a clear button."""
    set_panel(run, rows, title=f"Selection: {len(rows)} track{'s' * (len(rows) != 1)}", k=k, key="map_group",
              stem="selection")
    with st.form("map_save_collection", border=False):
        st.text_input("Collection name", key=NAME_KEY, max_chars=200, placeholder="e.g. calm piano",
                      help=f"At most {MAX_NAME_LENGTH} characters; names are unique within the dataset.")
        st.form_submit_button("Save as collection", type="primary", icon=":material/bookmark_add:",
                              on_click=attempt, args=(lambda: save_group(run, rows),))
    show_error()
    st.button("Clear the selection", key="map_group_clear", on_click=clear_selection)


def delete_shown(run: Run, collection: Collection) -> None:
    delete_collection(collection.dataset, collection.collection_id)
    st.session_state[picker_key(run.run_id)] = None


def collection_panel(run: Run, collection: Collection, *, k: int) -> None:
    """A saved collection: :func:`set_panel` with its members in this run, and rename / delete."""
    rows = cached_collection_rows(run.run_id, collection)
    held = "" if len(rows) == collection.n_tracks else f" ({collection.n_tracks} saved, {len(rows)} in this run)"
    set_panel(run, rows, title=f"Collection “{collection.name}”: {len(rows)} track{'s' * (len(rows) != 1)}{held}",
              k=k, key=f"map_coll_{collection.collection_id}", stem=file_stem(collection.name))
    cid = collection.collection_id
    with st.expander("Rename or delete"):
        with st.form(f"map_rename_{cid}", border=False):
            st.text_input("New name", value=collection.name, max_chars=200, key=f"map_rename_name_{cid}")
            st.form_submit_button("Rename", on_click=attempt, args=(lambda: rename_collection(
                collection.dataset, cid, st.session_state.get(f"map_rename_name_{cid}", "")),))
        st.button("Delete this collection", key=f"map_delete_{cid}", icon=":material/delete:", on_click=attempt,
                  args=(lambda: delete_shown(run, collection),))
    show_error()


def picker_key(run_id: str) -> str:
    return f"map_collection_{run_id}"


def collection_picker(run: Run) -> tuple[Collection | None, bool]:
    """The "Collection" select box and its "only these" filter; returns (the chosen collection, filter on)."""
    collections = run_collections(run)
    key = picker_key(run.run_id)
    if st.session_state.get(key) not in collections:
        st.session_state[key] = None  # deleted meanwhile (another session), or never chosen
    chosen = st.selectbox("Collection", [None, *collections], format_func=collection_label(collections), key=key,
                          disabled=not collections,
                          help="Collections are saved selections of this run's dataset: draw a lasso or a box "
                               "on the map, then save it below." if collections else
                               "No collection yet: draw a lasso or a box on the map, then save it below.")
    only = st.toggle("Only this collection", key="map_only_collection", disabled=chosen is None)
    return (None if chosen is None else collections[chosen]), bool(only and chosen is not None)
