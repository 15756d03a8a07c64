"""The Map page on a 100,000-track synthetic run: every track drawn as a WebGL point with hover,
quickly once cached; above the point limit a density layer under a sample, and a box drawn on it or a label
filter brings the points back; a large run's track picker searches."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from benchmarks.scale_maps import synthetic_library, write_synthetic_run
from core.search.projection import fit_pca
from tests.pagetest import charts, decode, open_page, traces

N = 100_000
RUN_ID = "synthetic-100k"


@pytest.fixture(scope="module")
def big_run(module_artifacts) -> str:
    """A 100k-track run written directly: clustered embeddings, their PCA, and t-SNE / UMAP stand-ins (the
    PCA picture, spread apart) so nothing slow is fitted."""
    x, tracks = synthetic_library(N, seed=3)
    pca, arrays = fit_pca(x)
    arrays["fit_rows"] = np.arange(N)
    coords = pd.DataFrame({"track_id": tracks["track_id"]})
    for scale, method in enumerate(("pca", "tsne", "umap"), start=1):
        coords[f"{method}_x"], coords[f"{method}_y"] = pca[:, 0] * scale, pca[:, 1] * scale
    write_synthetic_run(module_artifacts / "runs", RUN_ID, embeddings=x, tracks=tracks, coords=coords, arrays=arrays)
    return RUN_ID


def library_traces(spec: dict) -> list[dict]:
    return [t for t in spec["data"] if t["type"] == "scattergl" and t.get("customdata") is not None]


def send_event(at, event: dict):
    """What the browser sends when the chart is clicked or a box is drawn (AppTest cannot do either)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    states = WidgetStates()
    states.CopyFrom(at._tree.get_widget_states())
    widget = states.widgets.add()
    widget.id = at.get("plotly_chart")[0].proto.id
    widget.string_value = json.dumps({"selection": {"points": [], "point_indices": [], "box": [], "lasso": [],
                                                    **event}})
    at._run(states)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_100k_tracks_are_all_drawn_as_points_with_hover_within_2_s_once_cached(big_run):
    at = open_page("pages/map.py", active_run_id=big_run, timeout=300)
    reruns = []
    for _ in range(2):  # the faster of two: the machine is shared, a single rerun can catch a busy moment
        start = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - start)
    rerun = min(reruns)
    assert not at.exception
    spec = charts(at)[0]
    drawn = library_traces(spec)
    rows = np.concatenate([t["customdata"] for t in drawn])
    assert len(rows) == N and len(np.unique(rows)) == N
    assert all(t["hovertemplate"] == "%{hovertext}<extra></extra>" and len(t["hovertext"]) == len(t["x"])
               for t in drawn)
    assert not [t for t in spec["data"] if t["type"] == "heatmap"]
    assert rerun < 2.0, rerun
    print(f"Map page rerun with {N:,} tracks, cached: {rerun:.2f} s")


def test_above_the_point_limit_a_density_layer_and_a_box_or_a_filter_brings_points_back(big_run, monkeypatch):
    monkeypatch.setattr("core.analysis.maps.POINT_LIMIT", 30_000)  # the page reads it on every run
    monkeypatch.setattr("core.analysis.maps.DENSITY_SAMPLE", 5_000)
    at = open_page("pages/map.py", active_run_id=big_run, timeout=300)
    spec = charts(at)[0]
    heat = [t for t in spec["data"] if t["type"] == "heatmap"]
    assert len(heat) == 1 and np.nansum(decode(heat[0]["z"]).astype(float)) > 0
    assert sum(len(t["x"]) for t in library_traces(spec)) == 5_000
    assert spec["layout"]["dragmode"] == "select"
    # a box around a corner of the map: every track inside it, and only those, become points
    from core.runs.folder import load_run

    umap = load_run(big_run).projections[["umap_x", "umap_y"]].to_numpy()
    x0, y0 = np.quantile(umap, 0.5, axis=0)
    x1, y1 = umap.max(axis=0)
    inside = np.flatnonzero((umap[:, 0] >= x0) & (umap[:, 0] <= x1) & (umap[:, 1] >= y0) & (umap[:, 1] <= y1))
    assert 0 < len(inside) <= 30_000
    send_event(at, {"box": [{"xref": "x", "yref": "y", "x": [float(x1), float(x0)], "y": [float(y0), float(y1)]}]})
    spec = charts(at)[0]
    assert not [t for t in spec["data"] if t["type"] == "heatmap"]
    assert np.array_equal(np.sort(np.concatenate([t["customdata"] for t in library_traces(spec)])), inside)
    assert spec["layout"]["xaxis"]["range"] == pytest.approx([x0, x1])
    at.run()  # the window stays until "Show the whole map"
    assert not [t for t in charts(at)[0]["data"] if t["type"] == "heatmap"]
    at.button(key="map_reset").click().run()
    assert [t for t in charts(at)[0]["data"] if t["type"] == "heatmap"]
    # the browser redraws the whole map without the box (AppTest would otherwise replay the box drawn above on a
    # later run, as a new event: the page would take it as a second box)
    send_event(at, {})
    # a label filter that leaves fewer tracks than the limit draws them all
    labels = load_run(big_run).tracks["label"]
    few = labels.value_counts().index[:2].tolist()
    at.multiselect(key=f"map_labels_{big_run}").set_value(few).run()
    spec = charts(at)[0]
    assert not [t for t in spec["data"] if t["type"] == "heatmap"]
    assert sum(len(t["x"]) for t in library_traces(spec)) == int(labels.isin(few).sum())


def test_a_large_runs_track_picker_searches_and_a_pick_is_drawn(big_run):
    at = open_page("pages/map.py", active_run_id=big_run, timeout=300)
    picker = at.selectbox(key=f"map_pick_{big_run}")
    assert list(picker.options) == []  # nothing sent before a search
    at.text_input(key=f"map_search_{big_run}").set_value("t4242").run()
    picker = at.selectbox(key=f"map_pick_{big_run}")
    assert picker.options[0] == "artist 113 - t4242" and len(picker.options) <= 50  # the exact title first
    picker.set_value(4242).run()  # the option is the row; its name is what is shown
    assert at.session_state["map_selection"] == {"run": big_run, "row": 4242}
    selected = traces(charts(at)[0])["selected"]
    from core.runs.folder import load_run

    assert selected["x"][0] == pytest.approx(load_run(big_run).projections["umap_x"][4242])
