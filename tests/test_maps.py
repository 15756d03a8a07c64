"""core.maps (figure data from a run) and core.uploads (checks before decoding an upload)."""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from core.errors import AudioDecodeError
from core.maps import (UNLABELLED, UNLABELLED_COLOUR, label_colours, map_figure, map_points, query_focus,
                       selected_rows, track_focus, track_names)
from core.query import recommend_file, similar_tracks
from core.runs import load_run
from core.uploads import check_upload, named_buffer


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
    return types.SimpleNamespace(tracks=tracks, projections=coords)


def test_track_names_prefer_tags_then_the_file_name():
    assert track_names(fake_run().tracks).tolist() == ["Ann - Blue", "Green", "02 song", "03 song", "04 song",
                                                      "05 song"]


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


def test_label_colours_are_stable_and_unlabelled_is_grey():
    first = label_colours(["rock", "jazz", UNLABELLED])
    assert first == label_colours([UNLABELLED, "jazz", "rock", "rock"])
    assert first[UNLABELLED] == UNLABELLED_COLOUR and first["jazz"] != first["rock"]
    many = label_colours([f"g{i:02d}" for i in range(40)])
    assert len(set(many.values())) == 41  # 40 distinct colours and grey


def test_map_figure_has_a_webgl_trace_per_label_with_rows_as_customdata():
    points = map_points(fake_run(), "umap")
    fig = map_figure(points, method="umap")
    assert [t.name for t in fig.data] == ["jazz", "rock", UNLABELLED]  # named labels sorted, unlabelled last
    assert all(t.type == "scattergl" for t in fig.data)
    assert sorted(np.concatenate([t.customdata for t in fig.data]).tolist()) == list(range(6))
    assert fig.data[2].marker.color == UNLABELLED_COLOUR
    assert fig.layout.xaxis.title.text == "UMAP 1"
    only = map_figure(points, method="umap", labels=["rock"])
    assert [t.name for t in only.data] == ["rock"] and only.data[0].customdata.tolist() == [0, 3]


def test_a_selected_track_is_linked_to_its_neighbours_but_not_to_itself():
    points = map_points(fake_run(), "pca")
    neighbours = pd.DataFrame({"row": [2, 0, 5]})  # the track itself first, as similar_tracks gives it
    focus = track_focus(points, 2, neighbours)
    assert focus["origin"] == (2.0, -2.0) and focus["own_row"] == 2 and focus["kind"] == "track"
    fig = map_figure(points, method="pca", focus=focus)
    drawn = {t.name: t for t in fig.data}
    assert drawn["neighbours"].customdata.tolist() == [0, 5]
    colours = label_colours(points["label"])
    assert list(drawn["neighbours"].marker.color) == [colours["rock"], colours["jazz"]]  # filled by label
    links_x = np.asarray(drawn["links"].x, dtype=float)
    assert links_x.tolist()[:2] == [2.0, 0.0] and np.isnan(links_x).sum() == 2
    assert drawn["selected"].marker.symbol == "star-open" and drawn["selected"].x == (2.0,)
    assert drawn["jazz"].marker.opacity < 0.5  # the library fades behind the highlight


def test_a_query_is_a_diamond_at_its_placed_position():
    points = map_points(fake_run(), "tsne")
    focus = query_focus({"tsne": np.array([1.5, -0.5], np.float32)}, "tsne", pd.DataFrame({"row": [1, 3]}),
                        name="clip.wav")
    drawn = {t.name: t for t in map_figure(points, method="tsne", focus=focus).data}
    assert drawn["query"].x == (1.5,) and drawn["query"].marker.symbol == "diamond-open"
    assert drawn["query"].hovertext == ("clip.wav",)
    assert drawn["neighbours"].customdata.tolist() == [1, 3]


@pytest.mark.parametrize("selection,rows", [
    (None, []),
    ({"selection": {"points": []}}, []),
    ({"selection": {"points": [{"customdata": 4}]}}, [4]),
    ({"selection": {"points": [{"customdata": [7, "x"]}, {"customdata": 7}, {"customdata": 2.0}]}}, [7, 2]),
    ({"selection": {"points": [{"x": 1.0}, {"customdata": None}, {"customdata": "n/a"}]}}, []),
])
def test_selected_rows_reads_customdata_of_selection_events(selection, rows):
    assert selected_rows(selection) == rows


def test_figures_of_a_real_run_place_a_library_track_on_itself(tiny_run_id, tiny_library):
    run = load_run(tiny_run_id)
    row = 3
    result = recommend_file(run, run.tracks["path"][row], k=4)
    assert result.neighbours["row"].iloc[0] == row
    for method in ("pca", "tsne", "umap"):
        points = map_points(run, method)
        focus = query_focus(result.positions, method, result.neighbours, name="q")
        np.testing.assert_allclose(focus["origin"], points.loc[row, ["x", "y"]].to_numpy(float), atol=0.05)
    neighbours = similar_tracks(run, row, k=4)
    fig = map_figure(map_points(run, "umap"), method="umap", focus=track_focus(map_points(run, "umap"), row, neighbours))
    assert len({t.name: t for t in fig.data}["neighbours"].customdata) == 3


def test_check_upload_refuses_empty_and_oversized_files():
    check_upload("ok.wav", 5 * 2**20, max_mb=200)
    with pytest.raises(AudioDecodeError, match=r"empty.mp3: file is empty \(0 bytes\)"):
        check_upload("empty.mp3", 0)
    with pytest.raises(AudioDecodeError, match=r"big.flac: too large: 300.0 MB, the limit is 200 MB"):
        check_upload("big.flac", 300 * 2**20, max_mb=200)


def test_named_buffer_carries_the_file_name():
    buffer = named_buffer(b"abc", "song.ogg")
    assert buffer.name == "song.ogg" and buffer.read() == b"abc"
