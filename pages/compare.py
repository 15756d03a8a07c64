"""Compare: runs side by side (evaluation, the settings that differ, loss curves) and how their spaces differ
(neighbour agreement, most-changed tracks, per-label k-NN accuracy, trustworthy, aligned and linked maps)."""
from __future__ import annotations

import functools
import itertools

import streamlit as st

from core.analysis.compare import Comparison, aligned_maps, compare_runs
from core.base.errors import CompareError
from core.base.paths import runs_dir
from core.runs.folder import config_differences, list_runs, run_problem, run_summary
from ui import nav
from ui.figures import agreement_figure, highlight_trace, loss_figure, map_figure, per_label_figure
from ui.state import active_run_id, cached_points, cached_run, selected_rows
from ui.widgets import neighbour_list, open_run, projection_picker

SCORES = {"knn5_acc": "5-NN acc", "mfcc_knn5_acc": "MFCC 5-NN acc", "p_at_5": "P@5", "mfcc_p_at_5": "MFCC P@5",
          "recording_top1": "recording top-1", "recording_top5": "recording top-5"}
LINKED_KEY = "compare_linked"  # {"run": run id it was drawn on, "track_ids": [...]}: highlighted on every map
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
    """Run ids start with the date and time; the rest (dataset-suffix) is enough to tell runs apart."""
    return run_id.split("-", 2)[-1] if run_id.count("-") >= 2 else run_id


def link_selection(run_id: str, chart_key: str) -> None:
    """A point clicked or a lasso / box drawn on ``run_id``'s map becomes the selection every map highlights
    (by track id); an emptied selection clears it."""
    rows = selected_rows(st.session_state.get(chart_key))
    if not rows:
        st.session_state.pop(LINKED_KEY, None)
        return
    ids = cached_run(run_id).tracks["track_id"].to_numpy()[rows]
    st.session_state[LINKED_KEY] = {"run": run_id, "track_ids": [str(t) for t in ids]}


def linked_rows(run_id: str) -> list[int]:
    """This run's rows of the linked selection's tracks (tracks it lacks are left out)."""
    linked = st.session_state.get(LINKED_KEY)
    if not linked:
        return []
    ids = cached_run(run_id).tracks["track_id"].astype(str)
    return ids.index[ids.isin(linked["track_ids"])].tolist()


def draw_maps(chosen: list[str], method: str, comparison: Comparison | None) -> None:
    """One map per run, aligned onto the first by Procrustes when the runs compare, each with its
    trustworthiness; the linked selection ringed on all of them."""
    coords, disparity = cached_aligned(tuple(chosen), method) if comparison else ({}, {})
    linked = st.session_state.get(LINKED_KEY)
    if linked:
        left, right = st.columns([4, 1])
        left.caption(f"**{len(linked['track_ids'])} track(s) selected** on `{short_name(linked['run'])}`'s map, "
                     "ringed on every map.")
        right.button("Clear selection", key="compare_clear", on_click=lambda: st.session_state.pop(LINKED_KEY, None))
    for column, run_id in zip(st.columns(len(chosen)), chosen):
        points = cached_points(run_id, method)
        if run_id in coords:
            points = points.assign(x=coords[run_id][:, 0], y=coords[run_id][:, 1])
        with column:
            st.caption(f"`{run_id}`")
            if comparison:
                note = "the reference frame" if run_id == chosen[0] else f"aligned, disparity {disparity[run_id]:.2f}"
                st.caption(f"{comparison.trust[run_id].describe()} · {note}")
            fig = map_figure(points, method=method, height=420)
            rows = linked_rows(run_id)
            if rows:
                fig.add_trace(highlight_trace(points, rows))
            chart_key = f"compare_map_{run_id}"
            st.plotly_chart(fig.update_layout(dragmode="lasso"), width="stretch", key=chart_key,
                            on_select=functools.partial(link_selection, run_id, chart_key),
                            selection_mode=("points", "box", "lasso"))


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
    choice = st.selectbox("Open a track", range(len(changed)), key="compare_track",
                          format_func=lambda i: f"{changed['name'].iloc[i]} (Jaccard {changed['jaccard'].iloc[i]:.2f})")
    position = int(changed["position"].iloc[choice])
    for column, run_id in zip(st.columns(2), (a, b)):
        with column:
            st.markdown(f"**{names[run_id]}**: its {comparison.k} nearest shared tracks")
            near = comparison.shared_neighbours(run_id, position)
            neighbour_list(near, skip_row=int(near["row"].iloc[0]))


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
chosen = st.multiselect("Runs", runs, default=default, max_selections=4, key="compare_runs")
if len(chosen) < 2:
    st.warning("Choose at least two runs.")
    st.stop()

summary = [run_summary(r) for r in chosen]
st.dataframe([{"run": s["run_id"], "kind": s["kind"], "dataset": s["dataset"], "tracks": s["tracks"], "epochs": s["epochs"],
               "train (min)": s["train_minutes"], **{name: s[key] for key, name in SCORES.items()}}
              for s in summary], hide_index=True, width="stretch")
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
        st.dataframe(diff.astype(str).rename(columns=short_name), width="stretch")

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
           "track or draw a lasso on one map: the same tracks are ringed on every map.")
draw_maps(chosen, method, comparison)
if comparison is not None:
    st.subheader("Tracks whose neighbours changed most")
    draw_changed(comparison)
