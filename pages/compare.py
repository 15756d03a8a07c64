"""Compare: runs side by side (evaluation, the settings that differ, loss curves) and how their spaces differ
(neighbour agreement, most-changed tracks, per-label k-NN accuracy, trustworthy, aligned and linked maps)."""
from __future__ import annotations

import itertools

import numpy as np
import streamlit as st

from core.analysis import Comparison, aligned_maps, compare_runs, rows_of_ids
from core.base import CompareError, runs_dir
from core.runs import config_differences, list_runs, read_alias, run_label, run_problem, run_summary
from core.service import neighbours_table
from ui import nav, workspace
from ui.atlas import atlas_map, decode_event
from ui.atlas_layers import label_layer
from ui.figures import agreement_figure, loss_figure, per_label_figure
from ui.state import active_run_id, cached_run, nearest_others
from ui.widgets import neighbour_list, open_run, projection_picker, score_pair

SCORES = {"5-NN (MFCC)": ("knn5_acc", "mfcc_knn5_acc"), "P@5 (MFCC)": ("p_at_5", "mfcc_p_at_5"),
          "rec. top-1 (top-5)": ("recording_top1", "recording_top5")}  # a score with its baseline's in brackets
# column widths that fit a 1280 px window with the sidebar open (tests/test_browser_tables.py)
SCORES_WIDTHS = {name: st.column_config.Column(width=width) for name, width in {
    "run": 176, "kind": 72, "dataset": 76, "tracks": 52, "epochs": 56, "train (min)": 72, **dict.fromkeys(SCORES, 100)}.items()}
SEEN_KEY = "compare_events_seen"  # {map key: seq of the last gesture taken}
DRAG_KEY = "map_drag_mode"  # the drag mode, shared with the Map page (pages/map.py)
N_NEIGHBOURS = 10
N_CHANGED = 10


@st.cache_data(show_spinner=False)
def cached_differences(run_ids: tuple[str, ...]):
    return config_differences(list(run_ids))


@st.cache_resource(show_spinner="Comparing the runs' neighbourhoods...", max_entries=8)
def cached_comparison(run_ids: tuple[str, ...], method: str) -> Comparison:
    """:func:`core.analysis.compare.compare_runs` (runs never change once written)."""
    return compare_runs([cached_run(r) for r in run_ids], method=method)


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_aligned(run_ids: tuple[str, ...], method: str) -> tuple[dict, dict]:
    """:func:`core.analysis.compare.aligned_maps` of a cached comparison."""
    comparison = cached_comparison(run_ids, method)
    return aligned_maps(comparison.runs, comparison.shared, method)


def short_name(run_id: str) -> str:
    """A run's alias; else the id without its date and time (dataset-suffix is enough to tell runs apart)."""
    return read_alias(runs_dir() / run_id) or (run_id.split("-", 2)[-1] if run_id.count("-") >= 2 else run_id)


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_layer(run_ids: tuple[str, ...], method: str, run_id: str):
    """``run_id``'s points aligned onto the first run's map (as they are when the runs share no track)."""
    coords, _ = cached_aligned(run_ids, method) if len(run_ids) > 1 and compares(run_ids, method) else ({}, {})
    if run_id in coords:
        x, y = coords[run_id][:, 0], coords[run_id][:, 1]
    else:
        projections = cached_run(run_id).projections
        x, y = projections[f"{method}_x"].to_numpy(), projections[f"{method}_y"].to_numpy()
    return label_layer(run_id, x, y, key=f"compare/{'+'.join(run_ids)}/{method}/{run_id}")


def compares(run_ids: tuple[str, ...], method: str) -> bool:
    try:
        cached_comparison(run_ids, method)
    except CompareError:
        return False
    return True


@st.cache_data(show_spinner=False, max_entries=32)
def cached_rows(run_id: str, version: int, _track_ids) -> np.ndarray:
    """The rows of ``run_id`` holding the selection's tracks (by track id, whatever the runs' datasets)."""
    return rows_of_ids(cached_run(run_id), _track_ids)


def take_events(chosen: list[str]) -> None:
    """A gesture on one run's map changes the working set (:mod:`ui.workspace`) every map shows: a lasso is the
    selection, a click the focused track, Escape clears."""
    seen = st.session_state.setdefault(SEEN_KEY, {})
    for run_id in chosen:
        key = f"compare_atlas_{run_id}"
        event = decode_event(st.session_state.get(key))
        if event is None or event.seq <= seen.get(key, -1):
            continue
        seen[key] = event.seq
        workspace.apply_gesture(cached_run(run_id), event)


def draw_maps(chosen: list[str], method: str, comparison: Comparison | None) -> None:
    """One atlas map per run, aligned onto the first by Procrustes when the runs compare, each with its
    trustworthiness; the selection and the focused track (matched by track id) shown on all of them."""
    _, disparity = cached_aligned(tuple(chosen), method) if comparison else ({}, {})
    ids = workspace.selection_track_ids()
    if ids is not None:
        left, right = st.columns([4, 1])
        left.caption(f"**{len(ids)} track(s) selected**, shown on every map (and on the Map page).")
        right.button("Clear selection", key="compare_clear", on_click=workspace.clear_selection)
    for column, run_id in zip(st.columns(len(chosen)), chosen):
        with column:
            st.caption(f"`{run_label(run_id)}`")
            if comparison:
                note = "the reference frame" if run_id == chosen[0] else f"aligned, disparity {disparity[run_id]:.2f}"
                st.caption(f"{comparison.trust[run_id].named()} · {note}")  # the Map page's figure (quality.map_trust)
            focus = workspace.focus_in(cached_run(run_id))
            near = [] if focus is None else nearest_others(run_id, focus, N_NEIGHBOURS)["row"].tolist()
            atlas_map(cached_layer(tuple(chosen), method, run_id), key=f"compare_atlas_{run_id}",
                      selected=None if ids is None else cached_rows(run_id, workspace.selection_version(), ids),
                      focus=focus, linked=near, contours=False, drag=st.session_state.get(DRAG_KEY, "lasso"),
                      height=420)


def draw_focus(chosen: list[str]) -> None:
    """The focused track (clicked on any map here or on the Map page) with its nearest neighbours in every run,
    side by side."""
    track_id = workspace.focus_track_id()
    if track_id is None:
        st.caption("Click a track on any map above: its nearest neighbours in every run are listed here side by side.")
        return
    for column, run_id in zip(st.columns(len(chosen)), chosen):
        with column:
            row = workspace.focus_in(cached_run(run_id))
            st.markdown(f"**{short_name(run_id)}**")
            if row is None:
                st.caption("This run does not hold the track.")
                continue
            near = nearest_others(run_id, row, N_NEIGHBOURS)
            neighbour_list(near)
            workspace.list_actions(cached_run(run_id), near["row"], key=f"compare_focus_{run_id}",
                                   what="the neighbours")


def draw_differences(comparison: Comparison) -> None:
    """The agreement matrix and per-label accuracy (a chart and a table)."""
    names = {r: short_name(r) for r in comparison.run_ids}
    st.caption(f"Computed on {comparison.describe_sample()} (matched by track id); neighbours are the "
               f"{comparison.k} nearest by cosine among those tracks.")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(agreement_figure(comparison.agreement.rename(index=names, columns=names)), width="stretch")
    with right:
        if comparison.per_label.empty:
            st.info("Per-label accuracy needs at least two labels among the shared tracks.")
        else:
            st.plotly_chart(per_label_figure(comparison.per_label.rename(columns=names), k=comparison.label_k),
                            width="stretch")
    if not comparison.per_label.empty:
        table = comparison.per_label.rename(columns=names)
        table.insert(0, "tracks", comparison.label_counts.reindex(table.index).fillna(comparison.label_counts.sum()))
        st.dataframe(table.round(3).astype({"tracks": int}), width="stretch")


def draw_changed(comparison: Comparison) -> None:
    """The tracks whose neighbours changed most between a pair of runs; one opens both runs' neighbours."""
    names = {r: short_name(r) for r in comparison.run_ids}
    pairs = list(itertools.combinations(comparison.run_ids, 2))
    a, b = st.selectbox("Pair of runs", pairs, format_func=lambda p: f"{names[p[0]]} vs {names[p[1]]}",
                        key="compare_pair") if len(pairs) > 1 else pairs[0]
    changed = comparison.most_changed(a, b, n=N_CHANGED)
    st.dataframe(changed.drop(columns=["position", "track_id"]).rename(columns={"common": f"in common (of {comparison.k})"}),
                 hide_index=True, width="stretch")
    tied = tie_note(comparison.pair_jaccard(a, b), changed["jaccard"])
    if tied:
        st.caption(tied)
    choice = st.selectbox("Open a track", range(len(changed)), key="compare_track",
                          format_func=lambda i: f"{changed['name'].iloc[i]} (Jaccard {changed['jaccard'].iloc[i]:.2f})")
    position = int(changed["position"].iloc[choice])
    for column, run_id in zip(st.columns(2), (a, b)):
        with column:
            st.markdown(f"**{names[run_id]}**: its {comparison.k} nearest shared tracks")
            rows, scores = comparison.shared_neighbours(run_id, position)  # the track itself first: the one opened
            neighbour_list(neighbours_table(comparison.run(run_id), rows[1:], scores[1:]))


def tie_note(scores: np.ndarray, listed) -> str:
    """When more tracks than are listed share the listed Jaccard values, say so (the order among them is the
    shared tracks' order, not a ranking)."""
    worst = float(listed.iloc[-1])
    n_tied = int((np.round(scores, 4) <= worst).sum())
    if n_tied <= len(listed):
        return ""
    same = "all have" if float(listed.iloc[0]) == worst else "the last ones share"
    return (f"{n_tied} tracks have a Jaccard of at most {worst:.2f} (the listed {len(listed)} {same} that value): "
            "these are the first in the shared tracks' order, not a ranking among them.")


def shown(value) -> str | float:
    """A table cell: a missing value as a dash (a reference run has no epochs or training settings)."""
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else value


nav.require_router(__file__)
st.title("Compare runs")
every = list_runs()
runs = [r for r in every if run_problem(runs_dir() / r) is None]  # a broken run is listed on Runs, with why
if len(every) > len(runs):
    st.caption(f"{len(every) - len(runs)} run(s) that cannot be opened are left out (the Runs page says why).")
if len(runs) < 2:
    st.info("Comparing needs at least two runs. Train another (`python -m core train --dataset NAME ...`) "
            "or build another demo run on the Runs page.")
    st.stop()
current = active_run_id()
default = [current] if current in runs else []
default += [r for r in runs if r != current][:2 - len(default)]
chosen = st.multiselect("Runs", runs, default=default, max_selections=4, key="compare_runs", format_func=run_label)
if len(chosen) < 2:
    st.warning("Choose at least two runs.")
    st.stop()

summary = [run_summary(r) for r in chosen]
st.dataframe([{"run": run_label(s["run_id"], s["alias"] or ""), "kind": s["kind"], "dataset": s["dataset"], "tracks": s["tracks"],
               "epochs": str(shown(s["epochs"] if s["kind"] != "reference" else None)),  # text: one type a column
               "train (min)": str(shown(s["train_minutes"] if s["kind"] != "reference" else None)),
               **{name: score_pair(s[a], s[b]) for name, (a, b) in SCORES.items()}}
              for s in summary], hide_index=True, width="stretch", column_config=SCORES_WIDTHS)
left, right = st.columns([3, 2])
with left:
    losses = {run_id: open_run(run_id).metrics.get("loss") or [] for run_id in chosen}
    st.plotly_chart(loss_figure(losses, height=320), width="stretch")
with right:
    st.markdown("**Settings that differ**")
    diff = cached_differences(tuple(chosen))
    if diff.empty:
        st.caption("The runs have identical settings (they differ only in their data or seed-free randomness).")
    else:
        table = diff.map(lambda v: str(shown(v))).rename(columns=short_name)
        per_run = max(48, 180 // len(table.columns))  # the column is 2/5 of the page: about 320 px at 1280
        st.dataframe(table, width="stretch", column_config={"_index": st.column_config.Column(width=120),
                                                            **{c: st.column_config.Column(width=per_run) for c in table.columns}})

st.subheader("How the spaces differ")
method = projection_picker("compare_projection")
try:
    comparison = cached_comparison(tuple(chosen), method)
except CompareError as error:
    comparison = None
    st.error(f"{error}. The maps below are drawn as they are, not aligned.")
if comparison is not None:
    draw_differences(comparison)
st.caption("Maps aligned onto the first run's (rotation, scale and shift fitted on the shared tracks). Click a "
           "track or draw a lasso on one map: the same tracks are shown on every map, and on the Map page.")
take_events(chosen)
draw_maps(chosen, method, comparison)
st.subheader("The focused track's neighbours in each run")
draw_focus(chosen)
if comparison is not None:
    st.subheader("Tracks whose neighbours changed most")
    draw_changed(comparison)
