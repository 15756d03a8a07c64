"""What a researcher carries from view to view: one **selection** (a set of tracks) and one **focused track** (the
last one clicked). Both are kept by dataset, as track ids, so every projection, every page and every run of the
same dataset shows them (Compare's maps included); a run of another dataset shows none.

The selection grows from any list of tracks (neighbours, more like these, cluster cards, search results) through
:func:`list_actions`, which also adds a list to a saved collection.
"""
from __future__ import annotations

import dataclasses
import secrets
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import add_rows, rows_of_ids
from core.base import TimbreError
from core.runs import Run

SELECTION_KEY = "atlas_selection"  # Selection
FOCUS_KEY = "atlas_focus"  # {"dataset", "track_id"}
MESSAGE_KEY = "atlas_message"  # what the last list action did (shown once)


def dataset_of(run: Run) -> str:
    """The dataset a run's tracks belong to (its own id when its config names none)."""
    return str(run.config.get("dataset") or run.run_id)


@dataclasses.dataclass(frozen=True)
class Selection:
    """A set of tracks of one dataset, as the rows of the run it was made on (translated to another run of the
    dataset by track id). ``version`` is new with every change and unique across sessions (the caches keyed on
    it are the server's)."""

    dataset: str
    run_id: str
    rows: np.ndarray  # [shape=(r,), dtype=int64], ascending, unique
    version: int

    @property
    def size(self) -> int:
        return int(self.rows.size)


def _current() -> Optional[Selection]:
    return st.session_state.get(SELECTION_KEY)


def _ids(run: Run, rows: np.ndarray) -> np.ndarray:
    return run.tracks["track_id"].astype(str).to_numpy()[rows]


@st.cache_data(show_spinner=False, max_entries=16)
def _translated(origin_run_id: str, version: int, run_id: str, _rows: np.ndarray) -> np.ndarray:
    """The rows of ``run_id`` holding the tracks of a selection made on ``origin_run_id`` (cached per version)."""
    from ui.state import cached_run

    return rows_of_ids(cached_run(run_id), _ids(cached_run(origin_run_id), _rows))


def selection_rows(run: Run) -> Optional[np.ndarray]:
    """The selection as rows of ``run``, np.ndarray [shape=(r,), dtype=int64] (ascending); None when there is no
    selection or it belongs to another dataset."""
    chosen = _current()
    if chosen is None or chosen.dataset != dataset_of(run):
        return None
    if chosen.run_id == run.run_id:
        return chosen.rows
    return _translated(chosen.run_id, chosen.version, run.run_id, chosen.rows)


def selection_track_ids() -> Optional[np.ndarray]:
    """The selection's track ids (whatever the dataset), np.ndarray [shape=(r,), dtype=object]; None when empty.
    Compare matches runs of any datasets by track id."""
    from ui.state import cached_run

    chosen = _current()
    return None if chosen is None else _ids(cached_run(chosen.run_id), chosen.rows)


def selection_version() -> int:
    """Changes with every change of the selection (0: none), a cache key."""
    chosen = _current()
    return 0 if chosen is None else chosen.version


def focus_track_id() -> Optional[str]:
    """The focused track's id (whatever the dataset), None when there is none."""
    return (st.session_state.get(FOCUS_KEY) or {}).get("track_id")


def _store(run: Run, rows) -> None:
    rows = np.unique(np.asarray(rows, dtype=np.int64).ravel())
    rows = rows[(rows >= 0) & (rows < len(run.tracks))]
    if rows.size == 0:
        clear_selection()
        return
    st.session_state[SELECTION_KEY] = Selection(dataset_of(run), run.run_id, rows, version=secrets.randbits(62))


def set_selection(run: Run, rows) -> None:
    """Make ``rows`` of ``run`` the selection (an empty set clears it)."""
    _store(run, rows)


def add_to_selection(run: Run, rows) -> int:
    """Add ``rows`` of ``run`` to the selection (a selection of another dataset is replaced); returns how many
    tracks were new."""
    held = selection_rows(run)
    held = np.empty(0, dtype=np.int64) if held is None else held
    new = np.setdiff1d(np.asarray(rows, dtype=np.int64), held)
    _store(run, np.concatenate([held, new]))
    return int(new.size)


def clear_selection() -> None:
    st.session_state.pop(SELECTION_KEY, None)


def focus_row(run: Run) -> Optional[int]:
    """The focused (last clicked) track as a row of ``run``; None when there is none, it belongs to another
    dataset or ``run`` lacks it."""
    focus = st.session_state.get(FOCUS_KEY) or {}
    return focus_in(run) if focus.get("dataset") == dataset_of(run) else None


def focus_in(run: Run) -> Optional[int]:
    """The focused track's row in ``run`` whatever its dataset (matched by track id, as Compare matches runs); None
    when there is no focus or ``run`` lacks the track. The run it was clicked on answers without a search (a
    million-track run's search costs a tenth of a second, and pages ask on every rerun)."""
    focus = st.session_state.get(FOCUS_KEY) or {}
    if not focus:
        return None
    if focus.get("run") == run.run_id:
        return focus["row"]
    found = rows_of_ids(run, [focus["track_id"]])
    return int(found[0]) if found.size else None


def set_focus(run: Run, row: Optional[int]) -> None:
    """Focus row ``row`` of ``run`` (None: no focus)."""
    if row is None or not 0 <= int(row) < len(run.tracks):
        st.session_state.pop(FOCUS_KEY, None)
        return
    st.session_state[FOCUS_KEY] = {"dataset": dataset_of(run), "track_id": str(_ids(run, np.array([int(row)]))[0]),
                                   "run": run.run_id, "row": int(row)}


def apply_gesture(run: Run, event) -> bool:
    """What a finished gesture on an atlas map of ``run`` (:class:`ui.atlas.AtlasEvent`) does to the working set: a
    lasso or box is the selection, a click the focused track, Escape clears. True for a click (a new focus)."""
    if event.kind == "select":
        set_selection(run, event.rows)
    elif event.kind == "click" and event.rows.size:
        set_focus(run, int(event.rows[0]))
        return True
    elif event.kind == "clear":
        clear_selection()
    return False


# ------------------------------------------------------------------------------------- actions on a list of tracks


def _say(key: str, text: str) -> None:
    st.session_state[f"{MESSAGE_KEY}_{key}"] = text


def _add_selection(run: Run, rows: Sequence[int], key: str) -> None:
    new = add_to_selection(run, rows)
    _say(key, f"{new} track{'s' * (new != 1)} added to the selection ({selection_rows(run).size} now).")


def _add_collection(run: Run, rows: Sequence[int], key: str) -> None:
    chosen = st.session_state.get(f"{key}_collection")
    try:
        if chosen is None:
            raise TimbreError("choose a collection first")
        grown = add_rows(run, chosen, rows)
    except TimbreError as error:
        _say(key, f"Nothing added: {error}.")
        return
    _say(key, f"Collection “{grown.name}” now holds {grown.n_tracks} tracks.")


def list_actions(run: Run, rows, *, key: str, what: str = "these tracks") -> None:
    """Under a list of tracks: "Add to the selection" and "Add to a collection" (a saved collection of the
    run's dataset) for its ``rows``, and what the last such action did."""
    rows = [int(r) for r in (rows.tolist() if isinstance(rows, (np.ndarray, pd.Series)) else rows)]
    if not rows:
        return
    left, right = st.columns(2)
    left.button("Add to the selection", key=f"{key}_select", icon=":material/add_circle:",
                help=f"Add {what} ({len(rows)}) to the selection shown on every map",
                on_click=_add_selection, args=(run, rows, key))
    with right.popover("Add to a collection", icon=":material/bookmark_add:", help=f"Add {what} ({len(rows)}) "
                       "to a saved collection of this dataset"):
        from ui.state import collection_label, run_collections

        collections = run_collections(run)
        if not collections:
            st.caption("No collection yet: select tracks on the Map and save them as one.")
        else:
            st.selectbox("Collection", list(collections), format_func=collection_label(collections),
                         key=f"{key}_collection")
            st.button("Add", key=f"{key}_add", on_click=_add_collection, args=(run, rows, key))
    message = st.session_state.pop(f"{MESSAGE_KEY}_{key}", None)
    if message:
        st.caption(message)
