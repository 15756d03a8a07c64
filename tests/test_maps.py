"""core.analysis.maps (what a map shows, from a run) and core.data.uploads (checks before decoding an upload)."""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis.maps import (
    DENSITY_BINS,
    UNLABELLED,
    FocusKind,
    Window,
    density,
    labels_in_order,
    map_points,
    map_view,
    query_focus,
    track_focus,
)
from core.base.errors import AudioDecodeError
from core.data.uploads import check_upload, named_buffer
from core.runs.folder import load_run
from core.service.query import recommend_file, similar_tracks


def fake_run(n: int = 6) -> types.SimpleNamespace:
    """Just what map_points reads: tracks (two labels and unlabelled rows, some tags) and projections."""
    tracks = pd.DataFrame({
        "track_id": [f"t{i}" for i in range(n)], "path": [f"/music/{i:02d} song.mp3" for i in range(n)],
        "label": pd.array(["rock", "jazz", None, "rock", None, "jazz"][:n], dtype="string"),
        "duration_s": 30.0,
        "artist": pd.array(["Ann", None, None, "Bo", None, None][:n], dtype="string"),
        "title": pd.array(["Blue", "Green", None, None, None, None][:n], dtype="string"),
    })
    coords = pd.DataFrame({"track_id": tracks["track_id"]})
    for j, method in enumerate(("pca", "tsne", "umap")):
        coords[f"{method}_x"] = np.arange(n, dtype=np.float32) + 10 * j
        coords[f"{method}_y"] = -np.arange(n, dtype=np.float32)
    return types.SimpleNamespace(run_id="fake", path=Path("/nonexistent"), config={}, tracks=tracks, projections=coords)


def test_point_names_prefer_tags_then_the_file_name():
    assert map_points(fake_run(), "pca")["name"].tolist() == ["Ann - Blue", "Green", "02 song", "03 song", "04 song",
                                                             "05 song"]
    assert labels_in_order(map_points(fake_run(), "pca")) == ["jazz", "rock", UNLABELLED]


@pytest.mark.parametrize("method,offset", [("pca", 0), ("tsne", 10), ("umap", 20)])
def test_map_points_reads_the_stored_projection(method, offset):
    points = map_points(fake_run(), method)
    assert points["row"].tolist() == list(range(6))
    assert points["x"].tolist() == [float(i + offset) for i in range(6)]
    assert points["label"].tolist() == ["rock", "jazz", UNLABELLED, "rock", UNLABELLED, "jazz"]
    hover = points["hover"][0]
    assert "Ann - Blue" in hover and "artist: Ann" in hover and "file: 00 song.mp3" in hover and "label: rock" in hover
    assert "artist: unknown" in points["hover"][2]


def test_map_points_rejects_an_unknown_projection():
    with pytest.raises(ValueError, match="unknown projection 'tsme'"):
        map_points(fake_run(), "tsme")


def test_a_selected_track_is_linked_to_its_neighbours_but_not_to_itself():
    points = map_points(fake_run(), "pca")
    focus = track_focus(points, 2, pd.DataFrame({"row": [2, 0, 5]}))  # itself first, as similar_tracks gives it
    assert focus.origin == (2.0, -2.0) and focus.own_row == 2 and focus.kind is FocusKind.TRACK
    assert focus.rows == (2, 0, 5) and focus.linked_rows == [0, 5] and focus.name == "02 song"


def test_a_query_focus_sits_at_its_placed_position():
    focus = query_focus({"tsne": np.array([1.5, -0.5], np.float32)}, "tsne", pd.DataFrame({"row": [1, 3]}),
                        name="clip.wav")
    assert focus.origin == (1.5, -0.5) and focus.kind is FocusKind.QUERY and focus.own_row is None
    assert focus.linked_rows == [1, 3] and focus.name == "clip.wav"


def test_a_library_track_queried_by_its_file_lands_on_itself(tiny_run_id, tiny_library):
    run = load_run(tiny_run_id)
    row = 3
    result = recommend_file(run, run.tracks["path"][row], k=4)
    assert result.neighbours["row"].iloc[0] == row
    for method in ("pca", "tsne", "umap"):
        points = map_points(run, method)
        focus = query_focus(result.positions, method, result.neighbours, name="q")
        np.testing.assert_allclose(focus.origin, points.loc[row, ["x", "y"]].to_numpy(float), atol=0.05)
    neighbours = similar_tracks(run, row, k=4)
    assert len(track_focus(map_points(run, "umap"), row, neighbours).linked_rows) == 3


def test_check_upload_refuses_empty_and_oversized_files():
    check_upload("ok.wav", 5 * 2**20, max_mb=200)
    with pytest.raises(AudioDecodeError, match=r"empty.mp3: file is empty \(0 bytes\)"):
        check_upload("empty.mp3", 0)
    with pytest.raises(AudioDecodeError, match=r"big.flac: too large: 300.0 MB, the limit is 200 MB"):
        check_upload("big.flac", 300 * 2**20, max_mb=200)


def test_named_buffer_carries_the_file_name():
    buffer = named_buffer(b"abc", "song.ogg")
    assert buffer.name == "song.ogg" and buffer.read() == b"abc"


def grid_points(n_side: int = 10) -> pd.DataFrame:
    """Points on the integer grid 0..n_side-1 squared, label "a" left of x=5 and "b" from it."""
    x, y = np.meshgrid(np.arange(n_side, dtype=np.float32), np.arange(n_side, dtype=np.float32))
    x, y = x.ravel(), y.ravel()
    return pd.DataFrame({"row": np.arange(len(x)), "x": x, "y": y, "label": np.where(x < 5, "a", "b"),
                         "name": "", "hover": ""})


def test_map_view_draws_points_up_to_the_limit_and_a_density_above_it():
    points = grid_points()
    assert map_view(points, limit=100).density is None and len(map_view(points, limit=100).points) == 100
    view = map_view(points, limit=40, sample=10)
    assert view.n_selected == 100 and len(view.points) == 10 and view.density.counts.sum() == 100
    assert view.density.counts.shape == (DENSITY_BINS, DENSITY_BINS)
    # a window and a filter narrow the selection: few enough tracks are points again, exactly those
    window = Window.around(6, 2, 3, 0)
    view = map_view(points, window=window, labels=["b"], limit=40)
    assert view.density is None and view.n_selected == len(view.points) == 2 * 4
    assert set(view.points["x"]) == {5, 6} and set(view.points["y"]) == {0, 1, 2, 3}


def test_density_counts_land_in_their_cells():
    points = pd.DataFrame({"x": [0.1, 0.2, 0.9, 5.0], "y": [0.1, 0.15, 0.9, 5.0]})
    grid = density(points, window=Window(0, 1, 0, 1), bins=2)
    assert grid.counts.tolist() == [[2, 0], [0, 1]]  # the point outside the window is not counted
    assert grid.x_centres.tolist() == [0.25, 0.75]


def test_colour_options_and_points_follow_what_the_run_has(tiny_run_id):
    from core.analysis.clusters import ClusterConfig, run_clusters
    from core.analysis.maps import colour_options, colour_points, colour_title
    from core.analysis.sources import source_from_run
    from core.analysis.tags import TAGS
    from core.base.errors import TagError
    from tests.test_tags import fake_dataset

    run = load_run(tiny_run_id)  # trained with distillation: musicnn's cache, so its tags, are there already
    assert colour_options(run) == ["label"] + [f"tag:{t}" for t in TAGS]
    with pytest.raises(ValueError, match="cannot be coloured by 'cluster:hdbscan'"):
        colour_points(run, map_points(run, "pca"), "cluster:hdbscan")
    rng = np.random.default_rng(0)
    grams = {t: rng.uniform(0, 0.5, (2, 50)).astype(np.float32) for t in run.tracks["track_id"]}
    fake_dataset("tiny", grams, max_patches=2)
    run_clusters(source_from_run(tiny_run_id), cfg=ClusterConfig(input=("embeddings",), k_max=4, n_init=2))
    run = load_run(tiny_run_id)
    points = map_points(run, "pca")
    assert colour_options(run) == ["label", "cluster:kmeans"] + [f"tag:{t}" for t in TAGS]
    assert "<br>tags: " in points["hover"][0] and points["tags"][0].count(",") == 2
    by_tag = colour_points(run, points, "tag:Mellow")
    expected = np.array([grams[t][:, TAGS.index("Mellow")].mean() for t in run.tracks["track_id"]])
    np.testing.assert_allclose(by_tag["value"], expected, rtol=1e-5)
    assert "<b>Mellow: " in by_tag["hover"][0] and by_tag["label"].tolist() == points["label"].tolist()
    by_cluster = colour_points(run, points, "cluster:kmeans")
    assert set(by_cluster["label"]) <= {f"cluster {i}" for i in range(1, 5)} and "cluster (k-means): " in by_cluster["hover"][0]
    assert colour_title("cluster:hdbscan") == "cluster (HDBSCAN)" and colour_title("tag:rock") == "tag: rock"
    with pytest.raises(TagError, match="no musicnn tag named 'piano'"):
        colour_points(run, points, "tag:piano")
