"""Every chart of the dashboard: pure functions from data to a plotly figure, all in one template.

Nothing here reads widgets or session state; pages pick the data and pass it in. Map library traces are
WebGL (``go.Scattergl``) so maps of a hundred thousand tracks stay fluid, and every library point carries its
track row as ``customdata`` (see :func:`ui.state.selected_rows`). Larger maps are a density layer (a heatmap of
a server-side 2-D histogram, :func:`core.analysis.maps.density`) under a sample of points.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.analysis import DENSITY_SAMPLE, POINT_LIMIT, UNLABELLED, Density, Focus, FocusKind, Window, labels_in_order, map_view

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
UNLABELLED_COLOUR = "#a3a3a3"
# groups of no colour of their own (core.analysis.clusters.cluster_name; core.analysis.collections.THE_REST)
GREY_GROUPS = ("noise", "not clustered", "the rest")
PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Alphabet
# The focus (a selected track or a query) and its links are near-black: no label colour is (label colours
# include reds, so a red query would vanish among red neighbours).
FOCUS_COLOUR = "#111111"
MARKER_BY_KIND = {FocusKind.TRACK: ("star-open", "selected"), FocusKind.QUERY: ("diamond-open", "query")}
# One look for every chart: tight margins (a title or a legend on top gets a little more room).
MARGIN = {"l": 10, "r": 10, "t": 30, "b": 10}
TEMPLATE = go.layout.Template(layout={"margin": MARGIN, "hovermode": "closest"})
TITLE_TOP = 40


def styled(fig: go.Figure, *, height: int, top: int = MARGIN["t"], **layout) -> go.Figure:
    """``fig`` in :data:`TEMPLATE` at ``height`` pixels, ``top`` pixels above the plot.

    The margin is set on the figure itself too: plotly express sets its own, which would win over a template's.
    """
    return fig.update_layout(template=TEMPLATE, height=height, margin={**MARGIN, "t": top}, **layout)


# ----------------------------------------------------------------------------------------------- maps


def label_colours(labels: Iterable[str]) -> dict[str, str]:
    """A stable colour per label (sorted order); :data:`core.analysis.maps.UNLABELLED` is always grey."""
    named = sorted({str(v) for v in labels} - {UNLABELLED} - set(GREY_GROUPS))
    colours = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(named)}
    colours.update(dict.fromkeys((UNLABELLED, *GREY_GROUPS), UNLABELLED_COLOUR))
    return colours


def value_traces(points: pd.DataFrame, *, title: str, labels: Sequence[str] | None = None,
                 dim: bool = False) -> list[go.Scattergl]:
    """One WebGL trace of every point coloured by its ``value`` on a continuous scale (NaN grey), with a colour
    bar; ``customdata`` = track row, as :func:`library_traces`.

    Parameters
    ----------
    points : pd.DataFrame [shape=(n, 7+)]
        :func:`core.analysis.maps.colour_points` with a ``value`` column (e.g. a tag's likelihood).
    labels : sequence of str or None
        Keep only points of these labels (None: all).
    """
    if labels is not None:
        points = points[points["label"].isin(list(labels))]
    size = 6 if len(points) < 2000 else 4 if len(points) < 20_000 else 3
    values = points["value"].to_numpy(np.float64)
    known = ~np.isnan(values)
    common = {"mode": "markers", "hovertemplate": "%{hovertext}<extra></extra>"}
    return [go.Scattergl(x=points["x"].to_numpy()[~known], y=points["y"].to_numpy()[~known], name="no value",
                         customdata=points["row"].to_numpy()[~known], showlegend=False,
                         hovertext=points["hover"].to_numpy()[~known].astype(str),
                         marker={"size": size, "color": UNLABELLED_COLOUR, "opacity": 0.5}, **common),
            go.Scattergl(x=points["x"].to_numpy()[known], y=points["y"].to_numpy()[known], name=title,
                         customdata=points["row"].to_numpy()[known], showlegend=False,
                         hovertext=points["hover"].to_numpy()[known].astype(str),
                         marker={"size": size, "color": values[known], "colorscale": "Viridis", "showscale": True,
                                 "colorbar": {"title": {"text": title}, "thickness": 12},
                                 "opacity": 0.35 if dim else 0.85, "line": {"width": 0}}, **common)]


def library_traces(points: pd.DataFrame, *, colours: Mapping[str, str],
                   labels: Sequence[str] | None = None, dim: bool = False) -> list[go.Scattergl]:
    """One WebGL trace per label (named labels first, unlabelled last), ``customdata`` = track row.

    Parameters
    ----------
    points : pd.DataFrame [shape=(n, 6)]
        From :func:`core.analysis.maps.map_points`.
    colours : mapping of label -> colour
    labels : sequence of str or None
        Keep only these labels (None: all).
    dim : bool
        Fade the points behind a highlighted focus.
    """
    shown = [lab for lab in labels_in_order(points) if labels is None or lab in labels]
    groups = dict(tuple(points.groupby("label", sort=False)))
    size = 6 if len(points) < 2000 else 4 if len(points) < 20_000 else 3
    return [go.Scattergl(
        x=groups[lab]["x"].to_numpy(), y=groups[lab]["y"].to_numpy(), mode="markers", name=lab,
        customdata=groups[lab]["row"].to_numpy(), hovertext=groups[lab]["hover"].to_numpy().astype(str),
        hovertemplate="%{hovertext}<extra></extra>",
        marker={"size": size, "color": colours[lab], "opacity": 0.35 if dim else 0.85, "line": {"width": 0}},
    ) for lab in shown]


def link_trace(origin: Sequence[float], targets: np.ndarray, *, colour: str, name: str) -> go.Scattergl:
    """Straight lines from ``origin`` [shape=(2,)] to each of ``targets`` [shape=(k, 2)] (one trace)."""
    targets = np.asarray(targets, dtype=float).reshape(-1, 2)
    xs = np.column_stack([np.full(len(targets), origin[0]), targets[:, 0], np.full(len(targets), np.nan)]).ravel()
    ys = np.column_stack([np.full(len(targets), origin[1]), targets[:, 1], np.full(len(targets), np.nan)]).ravel()
    return go.Scattergl(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", showlegend=False,
                        line={"color": colour, "width": 1.5})


def focus_traces(points: pd.DataFrame, focus: Focus, *, colours: Mapping[str, str]) -> list[go.Scattergl]:
    """Lines from the focus to its neighbours, outlined neighbours (filled by label) and a large focus marker.

    Parameters
    ----------
    points : pd.DataFrame
        From :func:`core.analysis.maps.map_points`, indexed by row.
    focus : Focus
    colours : mapping of label -> colour
    """
    near = points.loc[focus.linked_rows]
    symbol, name = MARKER_BY_KIND[focus.kind]
    return [
        link_trace(focus.origin, near[["x", "y"]].to_numpy(), colour=FOCUS_COLOUR, name="links"),
        go.Scattergl(x=near["x"].to_numpy(), y=near["y"].to_numpy(), mode="markers", name="neighbours",
                     customdata=near["row"].to_numpy(), hovertext=near["hover"].to_numpy(),
                     hovertemplate="%{hovertext}<extra>neighbour</extra>",
                     marker={"size": 12, "color": [colours[lab] for lab in near["label"]], "opacity": 1.0,
                             "line": {"width": 2, "color": FOCUS_COLOUR}}),
        # open symbols: in a tight cluster the neighbours stay visible through the focus marker
        go.Scattergl(x=[focus.origin[0]], y=[focus.origin[1]], mode="markers", name=name,
                     hovertext=[focus.name], hovertemplate="<b>%{hovertext}</b><extra></extra>",
                     marker={"size": 20, "color": FOCUS_COLOUR, "symbol": symbol,
                             "line": {"width": 3, "color": FOCUS_COLOUR}}),
    ]


def density_trace(grid: Density) -> go.Heatmap:
    """Track counts per cell on a log scale (empty cells transparent), under the points; no hover."""
    z = np.where(grid.counts > 0, np.log10(np.maximum(grid.counts, 1)) + 1.0, np.nan)
    return go.Heatmap(x=grid.x_centres, y=grid.y_centres, z=z, name="density", colorscale="Greys", zmin=0,
                      showscale=False, hoverinfo="skip", opacity=0.9)


def map_figure(points: pd.DataFrame, *, method: str, labels: Sequence[str] | None = None,
               focus: Focus | None = None, height: int = 620, legend_title: str = "label",
               density: Density | None = None, window: Window | None = None,
               library: pd.DataFrame | None = None) -> go.Figure:
    """The map: library points by label (over a density layer when given), plus an optional focus linked to
    its neighbours.

    Parameters
    ----------
    points : pd.DataFrame [shape=(n, 6)]
        From :func:`core.analysis.maps.map_points` (``label`` may hold any grouping, e.g. clusters).
    method : str
        Projection name, for the axis titles.
    labels : sequence of str or None
        Labels to show (None: all).
    focus : Focus or None
        From :func:`core.analysis.maps.track_focus` or :func:`core.analysis.maps.query_focus`.
    height : int
        Pixels.
    legend_title : str
    density : Density or None
        From :func:`core.analysis.maps.density`; drawn under the points, and dragging then draws a box (a new window).
    window : Window or None
        The axes' ranges (None: plotly's autorange).
    library : pd.DataFrame or None
        Every point of the map when ``points`` is a part of it (a filter, a window, a sample): label colours and
        the focus's neighbours come from it, so they stay the same whatever is drawn. None: ``points``.

    More than :data:`core.analysis.maps.POINT_LIMIT` points without a ``density`` are drawn as :func:`core.analysis.maps.map_view`
    draws them (a density under a sample), so no caller sends a million points to the browser.
    """
    library = points if library is None else library
    if density is None and len(points) > POINT_LIMIT:
        view = map_view(points, labels=labels, window=window, limit=POINT_LIMIT, sample=DENSITY_SAMPLE)
        points, density = view.points, view.density
    colours = label_colours(library["label"].unique())
    fig = go.Figure([] if density is None else [density_trace(density)])
    if "value" in points.columns:  # a continuous colour (core.analysis.maps.colour_points), e.g. a tag's likelihood
        fig.add_traces(value_traces(points, title=legend_title, labels=labels, dim=focus is not None))
    else:
        fig.add_traces(library_traces(points, colours=colours, labels=labels, dim=focus is not None))
    if focus is not None:
        fig.add_traces(focus_traces(library.set_index("row", drop=False), focus, colours=colours))
    title = METHOD_NAMES.get(method, method)
    axes = [{"title": {"text": f"{title} {i}"}, "showticklabels": False, "zeroline": False} for i in (1, 2)]
    if window is not None:
        axes[0]["range"], axes[1]["range"] = [window.x0, window.x1], [window.y0, window.y1]
    return styled(fig, height=height, dragmode="pan" if density is None else "select",
                  uirevision=f"{method}{window}", legend={"title": {"text": legend_title}, "itemsizing": "constant"},
                  xaxis=axes[0], yaxis=axes[1])


# ------------------------------------------------------------------------------------------------ runs


def run_colours(run_ids: Sequence[str]) -> dict[str, str]:
    """One colour per run, by its place in ``run_ids``: every chart of a page gives a run the same colour."""
    return {run_id: PALETTE[i % len(PALETTE)] for i, run_id in enumerate(run_ids)}


def loss_figure(losses: Mapping[str, Sequence[float]], *, height: int = 260,
                colours: Optional[Mapping[str, str]] = None) -> go.Figure:
    """Training loss per epoch, one line per run (``{name: [loss, ...]}``, coloured by ``colours`` or
    :func:`run_colours` of their order); several runs get a legend on top."""
    several, colours = len(losses) > 1, colours or run_colours(list(losses))
    fig = go.Figure([go.Scatter(x=np.arange(1, len(values) + 1), y=list(values), name=name,
                                mode="lines" if several else "lines+markers", marker={"size": 4, "color": colours[name]},
                                line={"color": colours[name]})
                     for name, values in losses.items()])
    legend = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0}
    return styled(fig, height=height, top=60 if several else MARGIN["t"], title="Training loss", xaxis_title="epoch",
                  yaxis_title="total loss", showlegend=several, legend=legend)  # contrastive + distillation + match head


# ----------------------------------------------------------------------------------------- classifiers


def confusion_figure(classes: Sequence[str], values: np.ndarray, *, normalised: bool) -> go.Figure:
    """Confusion matrix heatmap, ``values`` [shape=(n_classes, n_classes)] (rows true, columns predicted)."""
    fig = px.imshow(values, x=list(classes), y=list(classes), text_auto=".2f" if normalised else "d",
                    color_continuous_scale="Blues", zmin=0, aspect="auto",
                    labels={"x": "predicted", "y": "true", "color": ""})
    return styled(fig, height=420)


def importance_figure(top: pd.DataFrame, *, by: str) -> go.Figure:
    """Horizontal bars of ``top[by]`` per ``feature`` (largest on top; permutation importances with error bars)."""
    top = top.iloc[::-1]
    error = top["permutation_std"] if by == "permutation_mean" else None
    fig = px.bar(top, x=by, y="feature", orientation="h", error_x=error,
                 labels={by: "accuracy drop when shuffled" if by == "permutation_mean" else "share of importance"})
    return styled(fig, height=max(300, 22 * len(top) + 80))


# -------------------------------------------------------------------------------------------- clusters


def cluster_curves_figure(curves: pd.DataFrame, *, k: int) -> go.Figure:
    """Elbow (inertia) and silhouette against k side by side, the chosen ``k`` marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Elbow: inertia", "Silhouette (higher is better)"))
    fig.add_trace(go.Scatter(x=curves["k"], y=curves["inertia"], mode="lines+markers", name="inertia"), 1, 1)
    fig.add_trace(go.Scatter(x=curves["k"], y=curves["silhouette"], mode="lines+markers", name="silhouette"), 1, 2)
    for col in (1, 2):
        fig.add_vline(x=k, line_dash="dash", line_color="#d62728", row=1, col=col)
        fig.update_xaxes(title_text="k", dtick=1, row=1, col=col)
    return styled(fig, height=330, top=TITLE_TOP, showlegend=False)


def label_mix_figure(mix: pd.DataFrame) -> go.Figure:
    """Stacked bars: tracks per ``cluster`` coloured by ``label`` (``count``, ``share`` columns)."""
    fig = px.bar(mix, x="cluster", y="count", color="label", title="Size and label make-up",
                 hover_data={"share": ":.0%"}, color_discrete_map=label_colours(mix["label"].unique()))
    return styled(fig, height=420, top=TITLE_TOP)


def profile_figure(profile: pd.DataFrame) -> go.Figure:
    """Cluster means in standard deviations from the overall mean, ``profile`` [shape=(n_clusters, n_features)]."""
    fig = px.imshow(profile.T, x=list(profile.index), y=list(profile.columns), zmin=-2, zmax=2,
                    color_continuous_scale="RdBu_r", aspect="auto", labels={"color": "z", "x": "", "y": ""},
                    title="Cluster mean vs overall mean (in sd)")
    return styled(fig, height=max(420, 60 + 20 * len(profile.columns)), top=TITLE_TOP)


def cluster_scatter_figure(frame: pd.DataFrame) -> go.Figure:
    """Tracks on the first two principal components (``pca_x``, ``pca_y``) coloured by ``cluster``."""
    fig = px.scatter(frame, x="pca_x", y="pca_y", color="cluster", hover_name="track_id", hover_data=["label"],
                     labels={"pca_x": "PCA 1", "pca_y": "PCA 2"})
    return styled(fig, height=560, legend={"title": {"text": "cluster"}})


# -------------------------------------------------------------------------------------------- features


def correlation_figure(corr: pd.DataFrame, *, method: str) -> go.Figure:
    """Feature-by-feature correlation heatmap, ``corr`` [shape=(n, n)] in [-1, 1]."""
    fig = px.imshow(corr, zmin=-1, zmax=1, color_continuous_scale="RdBu_r", aspect="auto", labels={"color": method})
    return styled(fig, height=min(1000, 220 + 14 * len(corr)))


def violin_figure(frame: pd.DataFrame, *, feature: str) -> go.Figure:
    """One feature's distribution per ``label`` (violin, box and every track, hover: ``name``)."""
    fig = px.violin(frame, x="label", y=feature, color="label", box=True, points="all", hover_name="name",
                    color_discrete_map=label_colours(frame["label"].unique()))  # the Map's colours
    return styled(fig, height=450, showlegend=False)


def feature_scatter_figure(frame: pd.DataFrame, *, x: str, y: str) -> go.Figure:
    """Two features against each other, coloured by ``label`` (hover: ``name``)."""
    fig = px.scatter(frame, x=x, y=y, color="label", hover_name="name", opacity=0.85,
                     color_discrete_map=label_colours(frame["label"].unique()))  # the Map's colours
    return styled(fig, height=500)


# --------------------------------------------------------------------------------------------- compare


def highlight_trace(points: pd.DataFrame, rows: Sequence[int], *, name: str = "selected") -> go.Scattergl:
    """Rings round the points of ``rows`` (library rows of ``points``, from :func:`core.analysis.maps.map_points`): a
    selection linked from another map; ``customdata`` = track row, so a click on a ring selects its track."""
    near = points.set_index("row", drop=False).loc[list(rows)] if len(rows) else points.iloc[:0]
    return go.Scattergl(x=near["x"].to_numpy(), y=near["y"].to_numpy(), mode="markers", name=f"{name} ({len(near)})",
                        customdata=near["row"].to_numpy(), hovertext=near["hover"].to_numpy().astype(str),
                        hovertemplate="%{hovertext}<extra>selected</extra>",
                        marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"width": 2.5, "color": FOCUS_COLOUR}})


def agreement_figure(agreement: pd.DataFrame, *, height: int = 320) -> go.Figure:
    """Neighbour agreement between runs, ``agreement`` [shape=(r, r)] of mean Jaccard in [0, 1] (1: the same
    neighbours)."""
    fig = px.imshow(agreement, text_auto=".2f", zmin=0, zmax=1, color_continuous_scale="Blues", aspect="auto",
                    labels={"color": "Jaccard", "x": "", "y": ""}, title="Neighbour agreement (mean Jaccard)")
    return styled(fig, height=height, top=TITLE_TOP)


def per_label_figure(accuracy: pd.DataFrame, *, k: int = 5, height: int = 320,
                     colours: Optional[Mapping[str, str]] = None) -> go.Figure:
    """Grouped bars of leave-one-out k-NN accuracy per label (rows) and run (columns), ``accuracy`` in [0, 1];
    each run coloured by ``colours`` or :func:`run_colours` of the columns' order."""
    long = accuracy.rename_axis("label").reset_index().melt(id_vars="label", var_name="run", value_name="accuracy")
    fig = px.bar(long, x="label", y="accuracy", color="run", barmode="group", range_y=[0, 1],
                 title=f"{k}-NN accuracy per label", color_discrete_map=dict(colours or run_colours(list(accuracy))))
    legend = {"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0, "title": {"text": ""}}
    return styled(fig, height=height, top=TITLE_TOP, legend=legend, xaxis_title="", yaxis_title="accuracy")
