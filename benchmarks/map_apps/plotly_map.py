"""The Plotly map as the Map page drew it before the atlas, alone: the reference of :mod:`benchmarks.bench_map`.

The same calls as that page's map (:func:`core.analysis.maps.map_points` cached per server,
:func:`core.analysis.maps.map_view` with its point limit and density sample, :func:`ui.figures.map_figure`,
``st.plotly_chart`` with ``on_select="rerun"`` and the same selection modes), without the panels around it, so
the figures are those of the map itself. The drag mode comes from the address (``?drag=pan|lasso|select``);
a lasso or box selection is written as "Selection: N tracks".

    TIMBRE_ARTIFACTS=... PYTHONPATH=. streamlit run benchmarks/map_apps/plotly_map.py
"""
from __future__ import annotations

import streamlit as st

from core.analysis.maps import DENSITY_SAMPLE, POINT_LIMIT, map_view
from ui.figures import map_figure
from ui.state import active_run_id, cached_points, selected_rows

st.set_page_config(page_title="Plotly map (benchmark)", layout="wide")
run_id = active_run_id()
if run_id is None:
    st.error("No run in TIMBRE_ARTIFACTS.")
    st.stop()
points = cached_points(run_id, "umap")
view = map_view(points, limit=POINT_LIMIT, sample=DENSITY_SAMPLE)
density = view.density is not None
drag = st.query_params.get("drag", "pan")
event = st.plotly_chart(
    map_figure(view.points, method="umap", density=view.density, library=points).update_layout(dragmode=drag),
    key="map_chart", on_select="rerun", width="stretch", config={"scrollZoom": True, "displaylogo": False},
    selection_mode=("points", "box") if density else ("points", "box", "lasso"))
rows = selected_rows(event)
st.markdown(f"Selection: {len(rows)} tracks" if rows else "No selection")
st.caption(f"{len(view.points):,} of {len(points):,} tracks drawn as points" + (" over a density image" * density))
