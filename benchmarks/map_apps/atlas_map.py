"""The atlas map of a run alone, for :mod:`benchmarks.bench_map` when the app's Map page does not draw it.

Every track of the run's UMAP map as a point (:func:`ui.atlas.atlas_points`, built once per server), coloured by
label, with a linked label histogram and density contours; a lasso or box selection is written as
"Selection: N tracks", as the Map page writes it.

    TIMBRE_ARTIFACTS=... PYTHONPATH=. streamlit run benchmarks/map_apps/atlas_map.py
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.analysis.maps import labels_in_order
from ui.atlas import Histogram, atlas_map, atlas_points
from ui.figures import label_colours
from ui.state import active_run_id, cached_points


@st.cache_resource(show_spinner=False, max_entries=2)
def cached_atlas(run_id: str):
    """The run's points for the atlas and a label histogram (codes, names, palette), built once per server."""
    points = cached_points(run_id, "umap")
    labels = labels_in_order(points)
    codes = points["label"].map({label: k for k, label in enumerate(labels)}).to_numpy(np.uint8)
    colours = label_colours(labels)
    atlas = atlas_points(points["x"].to_numpy(), points["y"].to_numpy(), codes, palette=[colours[lab] for lab in labels],
                         legend=labels, names=points["name"].tolist(), key=f"{run_id}:umap:label")
    return atlas, Histogram("label", codes.tobytes(), tuple(labels))


st.set_page_config(page_title="Atlas map (benchmark)", layout="wide")
run_id = active_run_id()
if run_id is None:
    st.error("No run in TIMBRE_ARTIFACTS.")
    st.stop()
atlas, histogram = cached_atlas(run_id)
state = st.session_state
event = atlas_map(atlas, key="atlas", selected=state.get("selected"), histograms=(histogram,),
                  drag=state.get("drag", "lasso"), height=640)
if event is not None and event.seq != state.get("seq"):
    state.seq, state.drag = event.seq, event.drag
    if event.kind in ("select", "clear"):
        state.selected = event.rows
rows = state.get("selected")
st.markdown(f"Selection: {len(rows)} tracks" if rows is not None and len(rows) else "No selection")
