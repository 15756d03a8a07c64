"""What an embedding map shows, as plain data: the library's points on one projection and a focus (a selected
track or an outside query) with the neighbours it links to. ``ui/figures.py`` draws them.

Every point carries its row in ``run.tracks``, so whatever the drawing layer does with them, a point maps
straight back to a track.
"""
from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from core.data.tracks import display_names
from core.runs.folder import Run
from core.search.projection import METHODS

UNLABELLED = "unlabelled"


def map_points(run: Run, method: str) -> pd.DataFrame:
    """The run's tracks as points on one precomputed projection (nothing is recomputed).

    Parameters
    ----------
    run : Run
    method : {"pca", "tsne", "umap"}

    Returns
    -------
    pd.DataFrame [shape=(n_tracks, 7)]
        ``row`` (row of ``run.tracks``), ``x``, ``y``, ``label`` (:data:`UNLABELLED` when unknown),
        ``name`` (:func:`core.data.tracks.display_name`), ``tags`` (the track's top 3 musicnn tags as text, "" without
        tags) and ``hover`` (HTML for the tooltip: name, artist, file, label, top tags).
    """
    from core.analysis.tags import run_tags, top_tag_text

    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    tracks, coords = run.tracks, run.projections
    label = tracks["label"].astype("string").fillna(UNLABELLED).astype(str)
    name = display_names(tracks).astype(str)
    artist = tracks["artist"].astype("string").fillna("unknown").astype(str)
    # os.path, not Path(): ten times faster over a million tracks
    file = pd.Series([os.path.basename(p) for p in tracks["path"].astype(str)], index=tracks.index)
    hover = ("<b>" + name + "</b><br>artist: " + artist + "<br>file: " + file + "<br>label: " + label)
    tags = run_tags(run)
    tag_text = (pd.Series("", index=tracks.index, dtype=object) if tags is None
                else top_tag_text(tags, n=3).set_axis(tracks.index))
    if tags is not None:
        hover = hover + np.where(tag_text.to_numpy() != "", "<br>tags: " + tag_text, "")
    return pd.DataFrame({"row": np.arange(len(tracks)), "x": coords[f"{method}_x"].to_numpy(np.float32),
                         "y": coords[f"{method}_y"].to_numpy(np.float32), "label": label.to_numpy(),
                         "name": name.to_numpy(), "tags": tag_text.to_numpy(), "hover": hover.to_numpy()})


COLOUR_LABEL = "label"


def colour_options(run: Run) -> list[str]:
    """What a run's map can be coloured by: ``"label"``, ``"cluster:<method>"`` for each clustering method with
    saved results, ``"collection:<name>"`` for each collection of the run's dataset (its members against the
    rest), and ``"tag:<tag>"`` for each musicnn tag when the run has tags (a continuous scale).

    One list, built here, so another colouring (e.g. a collection) is one more ``kind:key`` entry and one more
    branch in :func:`colour_points`.
    """
    from core.analysis.clusters import METHODS, cluster_inputs_done
    from core.analysis.collections import collection_names
    from core.analysis.tags import TAGS, run_tags

    options = [COLOUR_LABEL]
    options += [f"cluster:{m}" for m in METHODS if cluster_inputs_done(Path(run.path) / "clusters", m)]
    options += [f"collection:{name}" for name in collection_names(run)]  # members vs the rest
    if run_tags(run) is not None:
        options += [f"tag:{t}" for t in TAGS]
    return options


def _dataset_folder(run: Run) -> Path | None:
    """The folder of the run's dataset under the datasets folder; None for a run without one."""
    from core.base.paths import datasets_dir

    dataset = run.config.get("dataset")
    return datasets_dir() / dataset if dataset and "/" not in dataset else None


def tag_sources(run: Run) -> list[Path]:
    """The files the run's musicnn tags come from, existing or not (the dataset's tag table and musicnn caches):
    :func:`map_points` (whose hovers carry the top tags) is stale once one of them changes."""
    from core.analysis.tags import TAGS_FILE, musicnn_caches

    folder = _dataset_folder(run)
    return [] if folder is None else [folder / TAGS_FILE, *musicnn_caches(folder)]


def colour_sources(run: Run) -> list[Path]:
    """The files :func:`colour_options` reads, existing or not (saved cluster results, the dataset's tag table
    and musicnn caches, its collections): a cache of the options is stale once one of them changes."""
    from core.analysis.collections import COLLECTIONS_FILE

    folder = _dataset_folder(run)
    return [*sorted((Path(run.path) / "clusters").glob("*/summary.json")), *tag_sources(run),
            *([] if folder is None else [folder / COLLECTIONS_FILE])]


def colour_title(option: str) -> str:
    """How an option of :func:`colour_options` reads on screen (``"cluster (HDBSCAN)"``, ``"tag: rock"``)."""
    from core.analysis.clusters import METHOD_NAMES

    kind, _, key = option.partition(":")
    if kind == "cluster":
        return f"cluster ({METHOD_NAMES.get(key, key).split(' (')[0]})"
    return f"{kind}: {key}" if key else kind


@dataclasses.dataclass(frozen=True)
class Colouring:
    """What a colour option gives every track of a run: ``groups`` (a grouping that replaces the label, e.g. a
    clustering) or ``values`` (a continuous scale, e.g. a tag's likelihood, NaN where unknown), and what the hover
    calls it (``title``).

    ``groups`` np.ndarray [shape=(n_tracks,), dtype=object] or None; ``values`` np.ndarray [shape=(n_tracks,),
    dtype=float64] or None; one of the two is set, neither for the label itself."""

    option: str
    title: str
    groups: np.ndarray | None = None
    values: np.ndarray | None = None


def colouring(run: Run, option: str) -> Colouring:
    """The colouring of every track of ``run`` by ``option`` (:func:`colour_options`): the one place each kind of
    option is read, for the Plotly maps (:func:`colour_points`) and the atlas alike.

    Raises
    ------
    ValueError
        An option :func:`colour_options` does not offer for this run.
    """
    from core.analysis.clusters import run_cluster_labels
    from core.analysis.collections import collection_groups
    from core.analysis.tags import resolve_tag, run_tags

    kind, _, key = option.partition(":")
    if option == COLOUR_LABEL:
        return Colouring(option, "label")
    if kind == "cluster":
        groups = run_cluster_labels(run, method=key)
        if groups is not None:
            return Colouring(option, colour_title(option), groups=groups.to_numpy())
    if kind == "collection":
        groups = collection_groups(run, key)
        if groups is not None:
            return Colouring(option, "collection", groups=groups)
    if kind == "tag":
        tags = run_tags(run)
        if tags is not None:
            tag = resolve_tag(key)
            return Colouring(option, tag, values=tags[tag].to_numpy(np.float64))
    raise ValueError(f"run {run.run_id} cannot be coloured by {option!r} (it offers: "
                     f"{', '.join(colour_options(run)[:6])}, ...)")


def colour_points(run: Run, points: pd.DataFrame, option: str) -> pd.DataFrame:
    """``points`` (:func:`map_points`) coloured by ``option`` (:func:`colour_options`, read by :func:`colouring`).

    A grouping (a clustering) replaces ``label``, so the legend and the label filter show the groups; a tag adds
    a continuous ``value`` column (its likelihood, NaN without tags). Either way the hover names the colour.
    """
    found = colouring(run, option)
    rows = points["row"].to_numpy()
    if found.groups is not None:
        groups = found.groups[rows]
        return points.assign(label=groups, hover=points["hover"] + "<br>" + found.title + ": " + groups)
    if found.values is not None:
        values = found.values[rows]
        text = pd.Series(values).map(lambda v: "-" if np.isnan(v) else f"{v:.2f}").to_numpy()
        return points.assign(value=values, hover=points["hover"] + f"<br><b>{found.title}: " + text + "</b>")
    return points


def labels_in_order(points: pd.DataFrame) -> list[str]:
    """The labels present, named ones sorted, :data:`UNLABELLED` last (the legend's and the filter's order)."""
    present = set(points["label"])
    return sorted(present - {UNLABELLED}) + ([UNLABELLED] if UNLABELLED in present else [])


class FocusKind(enum.Enum):
    """What a map is centred on."""

    TRACK = "track"  # a library track (drawn as a star)
    QUERY = "query"  # an upload or a recording placed on the map (a diamond)


@dataclasses.dataclass(frozen=True)
class Focus:
    """A point on a map linked to its neighbours.

    Attributes
    ----------
    origin : tuple of float [shape=(2,)]
        Where the focus sits on this map.
    rows : tuple of int [shape=(k,)]
        Library rows it is linked to.
    kind : FocusKind
    name : str
        Hover text of the focus marker.
    own_row : int or None
        The focus track's own row, left out of the links (a track is its own nearest neighbour).
    """

    origin: tuple[float, float]
    rows: tuple[int, ...]
    kind: FocusKind
    name: str
    own_row: int | None = None

    @property
    def linked_rows(self) -> list[int]:
        """:attr:`rows` without :attr:`own_row`."""
        return [r for r in self.rows if r != self.own_row]


def track_focus(points: pd.DataFrame, row: int, neighbours: pd.DataFrame) -> Focus:
    """Library track ``row`` linked to the rows of ``neighbours`` (its ``row`` column)."""
    point = points.iloc[int(row)]
    return Focus(origin=(float(point["x"]), float(point["y"])), rows=tuple(neighbours["row"].astype(int)),
                 kind=FocusKind.TRACK, name=str(point["name"]), own_row=int(row))


def query_focus(positions: Mapping[str, np.ndarray], method: str, neighbours: pd.DataFrame, *, name: str) -> Focus:
    """An outside query placed at ``positions[method]`` [shape=(2,)], linked to the rows of ``neighbours``."""
    x, y = np.asarray(positions[method], dtype=float).reshape(2)
    return Focus(origin=(float(x), float(y)), rows=tuple(neighbours["row"].astype(int)), kind=FocusKind.QUERY,
                 name=name)


# Most library points drawn one by one (WebGL, with hover); above it the map is drawn as a density.
POINT_LIMIT = 100_000


# Points drawn over a density map (a seeded sample, so hover and click still reach tracks).
DENSITY_SAMPLE = 20_000


DENSITY_BINS = 300


@dataclasses.dataclass(frozen=True)
class Window:
    """A rectangle of a map: ``x0 <= x <= x1`` and ``y0 <= y <= y1``."""

    x0: float
    x1: float
    y0: float
    y1: float

    @classmethod
    def around(cls, x0: float, x1: float, y0: float, y1: float) -> "Window":
        """The window spanned by two corners given in any order."""
        return cls(min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))

    def contains(self, points: pd.DataFrame) -> np.ndarray:
        """np.ndarray [shape=(n,), dtype=bool]: which of ``points`` (``x``, ``y`` columns) lie inside."""
        x, y = points["x"].to_numpy(), points["y"].to_numpy()
        return (x >= self.x0) & (x <= self.x1) & (y >= self.y0) & (y <= self.y1)


@dataclasses.dataclass(frozen=True)
class Density:
    """Track counts on a regular grid (a 2-D histogram) of a map.

    Attributes
    ----------
    counts : np.ndarray [shape=(bins_y, bins_x), dtype=int64]
        Row ``i`` is the ``i``-th band of ``y`` (heatmap order).
    x_centres : np.ndarray [shape=(bins_x,)]
    y_centres : np.ndarray [shape=(bins_y,)]
    """

    counts: np.ndarray
    x_centres: np.ndarray
    y_centres: np.ndarray


def density(points: pd.DataFrame, *, window: Window | None = None, bins: int = DENSITY_BINS) -> Density:
    """How many of ``points`` fall in each cell of a ``bins`` x ``bins`` grid over ``window`` (default: their
    extent)."""
    x, y = points["x"].to_numpy(np.float64), points["y"].to_numpy(np.float64)
    if window is None:
        window = Window(*(float(v) for v in (x.min(), x.max(), y.min(), y.max()))) if len(x) else Window(0, 1, 0, 1)
    span = [[window.x0, max(window.x1, window.x0 + 1e-9)], [window.y0, max(window.y1, window.y0 + 1e-9)]]
    counts, xe, ye = np.histogram2d(x, y, bins=bins, range=span)
    return Density(counts.T.astype(np.int64), (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2)


@dataclasses.dataclass(frozen=True)
class MapView:
    """What a map draws for a label filter and a window.

    Attributes
    ----------
    points : pd.DataFrame
        Rows of :func:`map_points` drawn as points: all selected ones, or a sample over the density.
    density : Density or None
        Set when more than ``limit`` points are selected.
    n_selected : int
        Points the label filter and the window select.
    """

    points: pd.DataFrame
    density: Density | None
    n_selected: int


def map_view(points: pd.DataFrame, *, labels=None, window: Window | None = None, limit: int = POINT_LIMIT,
             sample: int = DENSITY_SAMPLE, seed: int = 0) -> MapView:
    """The points of ``labels`` (None: all) inside ``window`` (None: everywhere): up to ``limit`` of them are
    drawn one by one; more become a :func:`density` with a seeded sample of ``sample`` points over it."""
    keep = np.ones(len(points), dtype=bool) if labels is None else points["label"].isin(list(labels)).to_numpy()
    if window is not None:
        keep = keep & window.contains(points)
    chosen = np.flatnonzero(keep)
    if len(chosen) <= limit:
        return MapView(points.iloc[chosen], None, len(chosen))
    shown = np.sort(np.random.default_rng(seed).choice(chosen, size=min(sample, limit), replace=False))
    return MapView(points.iloc[shown], density(points.iloc[chosen], window=window), len(chosen))
