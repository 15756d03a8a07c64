"""A page with only the atlas map on synthetic points, for tests/test_browser_atlas.py (and by hand).

Three well separated clusters (seeded, so the rows of each are known), ``ATLAS_N`` points (default 100,000),
two linked histograms (cluster and height, the y of a point in ten bins), ``ATLAS_LIVE_LIMIT`` the points above
which a pan or zoom moves the last image. Every new event is written as JSON to
``ATLAS_OUT`` (kind, rows, ranges, drag, seq) and kept in the session, the way a page keeps the selection.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import streamlit as st

from ui.atlas import Histogram, MapLabel, atlas_map, atlas_points

CENTRES = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 15.0]])
NAMES = ("left", "right", "top")
HEIGHT_BINS = 10


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions [shape=(n, 2)] and cluster [shape=(n,)] of three unit-spread clusters 20 units apart."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, len(CENTRES), n)
    return CENTRES[cluster] + rng.normal(scale=1.0, size=(n, 2)), cluster


def height_bins(xy: np.ndarray) -> np.ndarray:
    low, high = xy[:, 1].min(), xy[:, 1].max()
    return np.clip(((xy[:, 1] - low) / (high - low) * HEIGHT_BINS).astype(int), 0, HEIGHT_BINS - 1)


@st.cache_resource
def atlas_data(n: int):
    xy, cluster = synthetic(n)
    points = atlas_points(xy[:, 0], xy[:, 1], cluster, palette=("#1f77b4", "#2ca02c", "#9467bd"), legend=NAMES,
                          names=[f"track {i}" for i in range(n)], key=f"synthetic-{n}")
    histograms = (Histogram("cluster", cluster.astype(np.uint8).tobytes(), NAMES),
                  Histogram("height", height_bins(xy).astype(np.uint8).tobytes(), tuple(f"h{k}" for k in range(HEIGHT_BINS))))
    labels = tuple(MapLabel(float(x), float(y), f"cluster {name}", int((cluster == k).sum()))
                   for k, (name, (x, y)) in enumerate(zip(NAMES, CENTRES)))
    return points, histograms, labels


def main() -> None:
    st.set_page_config(page_title="atlas test", layout="wide")
    points, histograms, labels = atlas_data(int(os.environ.get("ATLAS_N", "100000")))
    state = st.session_state
    # ATLAS_LIVE_LIMIT: above it a pan or zoom moves the last image (default 200,000; the test lowers it)
    options = {"live_limit": int(os.environ["ATLAS_LIVE_LIMIT"])} if os.environ.get("ATLAS_LIVE_LIMIT") else {}
    event = atlas_map(points, key="atlas", selected=state.get("selected"), focus=state.get("focus"),
                      linked=state.get("linked", ()), ranges=state.get("ranges"), drag=state.get("drag", "lasso"),
                      labels=labels, histograms=histograms, query=(0.0, 7.0), trail=[(-8.0, 3.0), (-4.0, 5.0)], height=560,
                      render_options=options)
    if event is not None and event.seq != state.get("seq"):
        state.seq = event.seq
        state.drag, state.ranges = event.drag, event.ranges
        if event.kind in ("select", "clear"):
            state.selected = event.rows
        if event.kind == "click":
            state.focus = int(event.rows[0])
            state.linked = [int(r) for r in np.arange(int(event.rows[0]) + 1, int(event.rows[0]) + 6) % points.n]
        if os.environ.get("ATLAS_OUT"):
            out = Path(os.environ["ATLAS_OUT"])
            record = {"kind": event.kind, "rows": event.rows.tolist(), "ranges": event.ranges, "drag": event.drag, "seq": event.seq}
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(out)
        st.rerun()
    st.write(f"{points.n} points; last event: {state.get('seq', 'none')}")


if __name__ == "__main__":  # streamlit run (and AppTest) run it as __main__; the browser test imports synthetic
    main()
