"""ui.figures (every chart, data in, plotly figure out) and ui.state's selection-event parsing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.analysis.maps import UNLABELLED, map_points, query_focus, track_focus
from tests.test_maps import fake_run
from ui.figures import (
    TEMPLATE,
    UNLABELLED_COLOUR,
    cluster_curves_figure,
    cluster_scatter_figure,
    confusion_figure,
    correlation_figure,
    feature_scatter_figure,
    importance_figure,
    label_colours,
    label_mix_figure,
    loss_figure,
    map_figure,
    profile_figure,
    violin_figure,
)
from ui.state import selected_rows


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
    fig = map_figure(points, method="pca", focus=track_focus(points, 2, neighbours))
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


def test_loss_figure_one_run_has_markers_several_have_a_legend():
    one = loss_figure({"a": [3.0, 2.0, 1.5]})
    assert len(one.data) == 1 and one.data[0].mode == "lines+markers" and one.layout.showlegend is False
    assert one.data[0].x.tolist() == [1, 2, 3] and one.data[0].y == (3.0, 2.0, 1.5)
    two = loss_figure({"a": [3.0, 2.0], "b": [4.0, 3.0, 2.5]}, height=320)
    assert [t.name for t in two.data] == ["a", "b"] and two.layout.showlegend is True
    assert two.layout.height == 320 and two.layout.legend.orientation == "h"


def test_every_chart_uses_the_one_template():
    points = map_points(fake_run(), "pca")
    frame = pd.DataFrame({"label": ["x", "x", "y", "y"], "name": list("abcd"), "f1": [1.0, 2, 3, 4],
                          "f2": [2.0, 1, 4, 3]})
    importances = pd.DataFrame({"feature": ["f1", "f2"], "permutation_mean": [0.2, 0.1], "permutation_std": [0.01, 0.02]})
    curves = pd.DataFrame({"k": [2, 3, 4], "inertia": [9.0, 5, 4], "silhouette": [0.3, 0.5, 0.4]})
    mix = pd.DataFrame({"cluster": ["cluster 1", "cluster 2"], "label": ["x", "y"], "count": [2, 2], "share": [1.0, 1.0]})
    profile = pd.DataFrame({"f1": [1.0, -1.0], "f2": [0.5, -0.5]}, index=["cluster 1", "cluster 2"])
    assignments = pd.DataFrame({"track_id": list("abcd"), "label": ["x", "x", "y", "y"],
                                "cluster": ["cluster 1"] * 2 + ["cluster 2"] * 2, "pca_x": [0.0, 1, 2, 3],
                                "pca_y": [1.0, 0, 1, 0]})
    figures = [map_figure(points, method="pca"), loss_figure({"a": [1.0]}),
               confusion_figure(["x", "y"], np.array([[2, 0], [1, 1]]), normalised=False),
               importance_figure(importances, by="permutation_mean"), cluster_curves_figure(curves, k=3),
               label_mix_figure(mix), profile_figure(profile), cluster_scatter_figure(assignments),
               correlation_figure(frame[["f1", "f2"]].corr(), method="pearson"),
               violin_figure(frame, feature="f1"), feature_scatter_figure(frame, x="f1", y="f2")]
    for fig in figures:
        assert fig.layout.template.layout.margin == TEMPLATE.layout.margin
        margin = fig.layout.margin
        assert (margin.l, margin.r, margin.b) == (10, 10, 10) and margin.t in (30, 40, 60)


def test_chart_contents_follow_their_data():
    confusion = confusion_figure(["x", "y"], np.array([[0.75, 0.25], [0.0, 1.0]]), normalised=True)
    assert confusion.data[0].type == "heatmap" and list(confusion.data[0].x) == ["x", "y"]
    assert confusion.data[0].texttemplate == "%{z:.2f}"
    importances = pd.DataFrame({"feature": ["big", "small"], "model_importance": [0.7, 0.3]})
    bars = importance_figure(importances, by="model_importance")
    assert list(bars.data[0].y) == ["small", "big"] and bars.data[0].error_x.array is None  # largest on top
    curves = cluster_curves_figure(pd.DataFrame({"k": [2, 3], "inertia": [2.0, 1.0], "silhouette": [0.1, 0.2]}), k=3)
    assert [t.name for t in curves.data] == ["inertia", "silhouette"]
    assert [shape.x0 for shape in curves.layout.shapes] == [3, 3]  # the chosen k marked on both


def test_a_density_map_draws_a_heatmap_under_its_points_and_drags_a_box():
    from core.analysis.maps import Window, map_view

    rng = np.random.default_rng(0)
    n = 500
    points = pd.DataFrame({"row": np.arange(n), "x": rng.normal(size=n), "y": rng.normal(size=n),
                           "label": rng.choice(["a", "b"], n), "name": "", "hover": ""})
    view = map_view(points, limit=100, sample=50)
    fig = map_figure(view.points, method="umap", density=view.density, library=points)
    assert [t.type for t in fig.data][0] == "heatmap" and fig.layout.dragmode == "select"
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(z[view.density.counts == 0]).all() and (z[view.density.counts > 0] >= 1).all()
    assert sum(len(t.x) for t in fig.data[1:]) == 50
    colours = label_colours(["a", "b"])
    assert {t.marker.color for t in fig.data[1:]} == {colours["a"], colours["b"]}
    zoomed = map_figure(points, method="umap", window=Window(0, 1, -1, 0))
    assert list(zoomed.layout.xaxis.range) == [0, 1] and list(zoomed.layout.yaxis.range) == [-1, 0]


def test_a_map_of_more_points_than_the_limit_is_a_density_whoever_draws_it(monkeypatch):
    """Pages that pass every point (Recommend, Compare) get the density view too."""
    monkeypatch.setattr("ui.figures.POINT_LIMIT", 100)  # the limits as ui.figures took them from core.analysis
    monkeypatch.setattr("ui.figures.DENSITY_SAMPLE", 30)
    points = map_points(fake_run(6), "umap")
    many = pd.concat([points] * 50, ignore_index=True).assign(row=np.arange(300))
    fig = map_figure(many, method="umap", focus=track_focus(many, 2, many.iloc[[2, 250]]))
    assert fig.data[0].type == "heatmap" and fig.data[0].z is not None
    library = [t for t in fig.data[1:] if t.name not in ("links", "neighbours", "selected")]
    assert sum(len(t.x) for t in library) == 30
    assert list(next(t for t in fig.data if t.name == "neighbours").customdata) == [250]


def test_a_tag_colours_points_on_a_continuous_scale_also_over_a_density():
    from core.analysis.maps import map_view

    rng = np.random.default_rng(0)
    n = 500
    points = pd.DataFrame({"row": np.arange(n), "x": rng.normal(size=n), "y": rng.normal(size=n),
                           "label": rng.choice(["a", "b"], n), "name": "", "hover": "",
                           "value": np.where(np.arange(n) % 10 == 0, np.nan, rng.uniform(size=n))})
    fig = map_figure(points, method="umap", legend_title="tag: rock", labels=["a"])
    missing, scale = fig.data
    assert scale.marker.colorbar.title.text == "tag: rock" and scale.marker.showscale
    shown = points[points["label"] == "a"]
    assert sorted([*missing.customdata, *scale.customdata]) == shown["row"].tolist()  # the label filter holds
    assert np.isnan(shown.set_index("row").loc[list(missing.customdata), "value"]).all()
    np.testing.assert_allclose(scale.marker.color, shown.set_index("row").loc[list(scale.customdata), "value"])
    view = map_view(points, limit=100, sample=50)
    dense = map_figure(view.points, method="umap", density=view.density, library=points, legend_title="tag: rock")
    assert dense.data[0].type == "heatmap" and sum(len(t.x) for t in dense.data[1:]) == 50


def test_noise_and_unclustered_tracks_are_grey():
    colours = label_colours(["cluster 1", "cluster 2", "noise", "not clustered"])
    assert colours["noise"] == colours["not clustered"] == UNLABELLED_COLOUR
    assert UNLABELLED_COLOUR not in (colours["cluster 1"], colours["cluster 2"])


def test_a_label_has_the_maps_colour_on_the_features_and_clusters_charts():
    from ui.figures import feature_scatter_figure, label_colours, label_mix_figure, violin_figure

    frame = pd.DataFrame({"label": ["rock", "jazz", "rock", "pop"], "name": list("abcd"), "tempo": [1.0, 2, 3, 4],
                          "rms": [0.1, 0.2, 0.3, 0.4]})
    expected = label_colours(["jazz", "pop", "rock"])  # as the Map colours the run's labels
    for fig in (violin_figure(frame, feature="tempo"), feature_scatter_figure(frame, x="tempo", y="rms")):
        assert {t.name: t.marker.color for t in fig.data} == {k: expected[k] for k in ("rock", "jazz", "pop")}
    mix = pd.DataFrame({"cluster": ["1", "1", "2"], "label": ["pop", "rock", "jazz"], "count": [2, 1, 3],
                        "share": [0.6, 0.4, 1.0]})  # the clusters hold every label of the run
    assert {t.name: t.marker.color for t in label_mix_figure(mix).data} == {k: expected[k] for k in ("jazz", "pop", "rock")}
