"""Embedding maps as plotly figures: the library coloured by label, a focus point and lines to its neighbours.

Every library point carries its row in ``run.tracks`` as ``customdata``, so a selection event from the
browser maps straight back to a track (:func:`selected_rows`), whatever traces are drawn or hidden. Library
traces are WebGL (``go.Scattergl``) so that maps of tens of thousands of tracks stay fluid.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from .projection import METHODS
from .runs import Run

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
UNLABELLED = "unlabelled"
UNLABELLED_COLOUR = "#a3a3a3"
PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Alphabet
# The focus (a selected track or a query) and its links are near-black: no label colour is (label colours
# include reds, so a red query would vanish among red neighbours).
FOCUS_COLOUR = "#111111"


def track_names(tracks: pd.DataFrame) -> pd.Series:
    """A readable name per track: "artist - title" from tags, else the file name without extension."""
    stems = tracks["path"].map(lambda p: Path(str(p)).stem)
    title = tracks["title"].astype("string")
    artist = tracks["artist"].astype("string")
    tagged = (artist + " - " + title).fillna(title)
    return tagged.fillna(stems).astype(str).rename("name")


def map_points(run: Run, method: str) -> pd.DataFrame:
    """The run's tracks as points on one precomputed projection (nothing is recomputed).

    Parameters
    ----------
    run : Run
    method : {"pca", "tsne", "umap"}

    Returns
    -------
    pd.DataFrame [shape=(n_tracks, 6)]
        ``row`` (row of ``run.tracks``), ``x``, ``y``, ``label`` (:data:`UNLABELLED` when unknown),
        ``name`` and ``hover`` (HTML for the tooltip: title, artist, file, label).
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    tracks, coords = run.tracks, run.projections
    label = tracks["label"].astype("string").fillna(UNLABELLED).astype(str)
    name = track_names(tracks)
    artist = tracks["artist"].astype("string").fillna("unknown").astype(str)
    file = tracks["path"].map(lambda p: Path(str(p)).name)
    hover = ("<b>" + name + "</b><br>artist: " + artist + "<br>file: " + file + "<br>label: " + label)
    return pd.DataFrame({"row": np.arange(len(tracks)), "x": coords[f"{method}_x"].to_numpy(np.float32),
                         "y": coords[f"{method}_y"].to_numpy(np.float32), "label": label.to_numpy(),
                         "name": name.to_numpy(), "hover": hover.to_numpy()})


def label_colours(labels: Iterable[str]) -> dict[str, str]:
    """A stable colour per label (sorted order); :data:`UNLABELLED` is always grey."""
    named = sorted({str(v) for v in labels} - {UNLABELLED})
    colours = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(named)}
    colours[UNLABELLED] = UNLABELLED_COLOUR
    return colours


def library_traces(points: pd.DataFrame, *, colours: Mapping[str, str],
                   labels: Sequence[str] | None = None, dim: bool = False) -> list[go.Scattergl]:
    """One WebGL trace per label (named labels first, unlabelled last), ``customdata`` = track row.

    ``labels`` keeps only those labels (None: all); ``dim`` fades the points behind a highlighted focus.
    """
    present = sorted(set(points["label"]) - {UNLABELLED}) + ([UNLABELLED] if (points["label"] == UNLABELLED).any() else [])
    shown = [lab for lab in present if labels is None or lab in labels]
    groups = dict(tuple(points.groupby("label", sort=False)))
    size = 6 if len(points) < 2000 else 4
    return [go.Scattergl(
        x=groups[lab]["x"].to_numpy(), y=groups[lab]["y"].to_numpy(), mode="markers", name=lab,
        customdata=groups[lab]["row"].to_numpy(), hovertext=groups[lab]["hover"].to_numpy(),
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


def focus_traces(points: pd.DataFrame, origin: Sequence[float], neighbour_rows: Sequence[int], *,
                 kind: str, name: str, own_row: int | None = None,
                 colours: Mapping[str, str] | None = None) -> list[go.Scattergl]:
    """Lines from a focus point to its neighbours, outlined neighbours and a large marker on the focus.

    Parameters
    ----------
    points : pd.DataFrame
        From :func:`map_points` (indexed by row).
    origin : sequence of float [shape=(2,)]
        Where the focus sits on this map.
    neighbour_rows : sequence of int [shape=(k,)]
        Library rows to link.
    kind : {"track", "query"}
        A selected library track (star) or an outside query (diamond).
    name : str
        Hover text of the focus marker.
    own_row : int or None
        The focus track's own row, left out of the links (a track is its own nearest neighbour).
    colours : mapping or None
        Label colours: neighbours are filled with their label's colour (None: :func:`label_colours`).
    """
    near = points.loc[[int(r) for r in neighbour_rows if r != own_row]]
    colours = colours or label_colours(points["label"])
    traces = [link_trace(origin, near[["x", "y"]].to_numpy(), colour=FOCUS_COLOUR, name="links")]
    traces.append(go.Scattergl(
        x=near["x"].to_numpy(), y=near["y"].to_numpy(), mode="markers", name="neighbours",
        customdata=near["row"].to_numpy(), hovertext=near["hover"].to_numpy(),
        hovertemplate="%{hovertext}<extra>neighbour</extra>",
        marker={"size": 12, "color": [colours[lab] for lab in near["label"]], "opacity": 1.0,
                "line": {"width": 2, "color": FOCUS_COLOUR}}))
    traces.append(go.Scattergl(
        x=[origin[0]], y=[origin[1]], mode="markers", name="query" if kind == "query" else "selected",
        hovertext=[name], hovertemplate="<b>%{hovertext}</b><extra></extra>",
        # open symbols: in a tight cluster the neighbours stay visible through the focus marker
        marker={"size": 20, "color": FOCUS_COLOUR, "symbol": "star-open" if kind == "track" else "diamond-open",
                "line": {"width": 3, "color": FOCUS_COLOUR}}))
    return traces


def track_focus(points: pd.DataFrame, row: int, neighbours: pd.DataFrame) -> dict:
    """Focus for :func:`map_figure`: library track ``row`` linked to the rows of ``neighbours`` (``row`` column)."""
    point = points.iloc[int(row)]
    return {"origin": (float(point["x"]), float(point["y"])), "rows": neighbours["row"].astype(int).tolist(),
            "kind": "track", "name": str(point["name"]), "own_row": int(row)}


def query_focus(positions: Mapping[str, np.ndarray], method: str, neighbours: pd.DataFrame, *, name: str) -> dict:
    """Focus for :func:`map_figure`: an outside query placed at ``positions[method]`` [shape=(2,)]."""
    x, y = np.asarray(positions[method], dtype=float).reshape(2)
    return {"origin": (float(x), float(y)), "rows": neighbours["row"].astype(int).tolist(), "kind": "query",
            "name": name, "own_row": None}


def map_figure(points: pd.DataFrame, *, method: str, labels: Sequence[str] | None = None,
               focus: dict | None = None, height: int = 620) -> go.Figure:
    """The map: library points by label, plus an optional focus with links to its neighbours.

    Parameters
    ----------
    points : pd.DataFrame
        From :func:`map_points`.
    method : str
        Projection name, for the axis titles.
    labels : sequence of str or None
        Labels to show (None: all).
    focus : dict or None
        ``{"origin": (x, y), "rows": [...], "kind": "track" | "query", "name": str, "own_row": int | None}``
        (see :func:`focus_traces`).
    height : int
        Pixels.
    """
    colours = label_colours(points["label"])
    fig = go.Figure(library_traces(points, colours=colours, labels=labels, dim=focus is not None))
    if focus is not None:
        fig.add_traces(focus_traces(points.set_index("row", drop=False), focus["origin"], focus["rows"],
                                    kind=focus["kind"], name=focus["name"], own_row=focus.get("own_row"),
                                    colours=colours))
    title = METHOD_NAMES.get(method, method)
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode="pan", hovermode="closest",
        uirevision=method, legend={"title": {"text": "label"}, "itemsizing": "constant"},
        xaxis={"title": {"text": f"{title} 1"}, "showticklabels": False, "zeroline": False},
        yaxis={"title": {"text": f"{title} 2"}, "showticklabels": False, "zeroline": False},
    )
    return fig


def selected_rows(selection: Mapping | None) -> list[int]:
    """Track rows picked in a ``st.plotly_chart`` selection event (points without a row are ignored).

    Parameters
    ----------
    selection : mapping or None
        The chart's state: ``{"selection": {"points": [{"customdata": row, ...}, ...]}}``.

    Returns
    -------
    list of int
        In the order the points were reported, without repeats.
    """
    points = ((selection or {}).get("selection") or {}).get("points") or []
    rows: list[int] = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is None or isinstance(data, bool):
            continue
        try:
            row = int(data)
        except (TypeError, ValueError):
            continue
        if row not in rows:
            rows.append(row)
    return rows
