"""Map: the run's tracks on a precomputed PCA / t-SNE / UMAP map; click a track to hear it and its neighbours."""
from __future__ import annotations

import streamlit as st

from core.maps import labels_in_order, track_focus
from ui import nav
from ui.figures import map_figure
from ui.state import cached_points, cached_similar, selected_rows
from ui.widgets import neighbour_list, play, projection_picker, require_run, track_heading

CHART_KEY = "map_chart"
SELECTION_KEY = "map_selection"  # {"run": run_id, "row": int}: survives reruns and page changes
LAST_EVENT_KEY = "map_last_event"


def current_row(run_id: str) -> int | None:
    chosen = st.session_state.get(SELECTION_KEY) or {}
    return chosen.get("row") if chosen.get("run") == run_id else None


def select(run_id: str, row: int | None) -> None:
    st.session_state[SELECTION_KEY] = {"run": run_id, "row": row}


def take_chart_click(run_id: str) -> None:
    """A new click on the map (the chart's state from the last interaction) selects that track."""
    rows = tuple(selected_rows(st.session_state.get(CHART_KEY)))
    if rows and rows != st.session_state.get(LAST_EVENT_KEY):
        select(run_id, rows[0])
    st.session_state[LAST_EVENT_KEY] = rows


def track_picker(run_id: str, names, row: int | None) -> None:
    key = f"map_pick_{run_id}"
    st.session_state[key] = row  # follows map clicks
    st.selectbox("Track", range(len(names)), format_func=names.__getitem__, index=None, key=key,
                 placeholder="Click a point on the map, or type here to search",
                 on_change=lambda: select(run_id, st.session_state[key]))


def track_panel(run, row: int, k: int):
    """The selected track with a player and links, and its neighbours (itself first) with players; returns them."""
    item = run.tracks.iloc[row]
    track_heading(item)
    play(item["path"])
    neighbours = cached_similar(run.run_id, row, k + 1)
    st.markdown(f"**{k} nearest neighbours** by cosine similarity of the embeddings")
    neighbour_list(neighbours, skip_row=row)
    return neighbours


nav.require_router(__file__)
run = require_run()
take_chart_click(run.run_id)
row = current_row(run.run_id)

st.title("Map")
controls = st.columns([2, 4, 2])
with controls[0]:
    method = projection_picker("map_projection")
points = cached_points(run.run_id, method)
all_labels = labels_in_order(points)
with controls[1]:
    shown = st.multiselect("Labels", all_labels, default=all_labels, key=f"map_labels_{run.run_id}",
                           placeholder="No label chosen: showing none")
with controls[2]:
    k = st.slider("Neighbours (k)", 1, 20, 5, key="map_k")
track_picker(run.run_id, points["name"].to_numpy(), row)

chart, panel = st.columns([3, 2])
with panel:
    if row is None:
        st.info("Click a point on the map to hear that track and see its nearest neighbours.")
        neighbours = None
    else:
        neighbours = track_panel(run, row, k)
with chart:
    focus = None if neighbours is None else track_focus(points, row, neighbours)
    st.plotly_chart(map_figure(points, method=method, labels=shown, focus=focus), key=CHART_KEY,
                    on_select="rerun", selection_mode="points", width="stretch",
                    config={"scrollZoom": True, "displaylogo": False})
    st.caption(f"{len(points):,} tracks of run `{run.run_id}`; maps were computed when the run was trained. "
               "Scroll to zoom, drag to pan, click a point to select it.")
