"""Compare: runs side by side (evaluation, the settings that differ, loss curves and maps)."""
from __future__ import annotations

import streamlit as st

from core.runs import config_differences, list_runs, run_summary
from ui import nav
from ui.figures import loss_figure, map_figure
from ui.state import active_run_id, cached_points
from ui.widgets import open_run, projection_picker

SCORES = {"knn5_acc": "5-NN acc", "mfcc_knn5_acc": "MFCC 5-NN acc", "p_at_5": "P@5", "mfcc_p_at_5": "MFCC P@5",
          "recording_top1": "recording top-1", "recording_top5": "recording top-5"}


@st.cache_data(show_spinner=False)
def cached_differences(run_ids: tuple[str, ...]):
    return config_differences(list(run_ids))


nav.require_router(__file__)
st.title("Compare runs")
runs = list_runs()
if len(runs) < 2:
    st.info("Comparing needs at least two runs. Train another (`python -m core train --dataset NAME ...`) "
            "or build another demo run on the Runs page.")
    st.stop()
current = active_run_id()
default = [current] + [r for r in runs if r != current][:1]
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
        # run ids start with the date and time; the rest (dataset-suffix) is enough to tell columns apart
        short = {r: r.split("-", 2)[-1] if r.count("-") >= 2 else r for r in diff.columns}
        st.dataframe(diff.astype(str).rename(columns=short), width="stretch")

method = projection_picker("compare_projection")
for column, run_id in zip(st.columns(len(chosen)), chosen):
    with column:
        st.caption(f"`{run_id}`")
        st.plotly_chart(map_figure(cached_points(run_id, method), method=method, height=420),
                        width="stretch", key=f"compare_map_{run_id}")
