"""What an embedding map shows, as plain data: the library's points on one projection and a focus (a selected
track or an outside query) with the neighbours it links to. ``ui/figures.py`` draws them.

Every point carries its row in ``run.tracks``, so whatever the drawing layer does with them, a point maps
straight back to a track.
"""
from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .projection import METHODS
from .runs import Run
from .tracks import display_names

UNLABELLED = "unlabelled"


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
        ``name`` (:func:`core.tracks.display_name`) and ``hover`` (HTML for the tooltip: name, artist, file, label).
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    tracks, coords = run.tracks, run.projections
    label = tracks["label"].astype("string").fillna(UNLABELLED).astype(str)
    name = display_names(tracks).astype(str)
    artist = tracks["artist"].astype("string").fillna("unknown").astype(str)
    file = tracks["path"].map(lambda p: Path(str(p)).name)
    hover = ("<b>" + name + "</b><br>artist: " + artist + "<br>file: " + file + "<br>label: " + label)
    return pd.DataFrame({"row": np.arange(len(tracks)), "x": coords[f"{method}_x"].to_numpy(np.float32),
                         "y": coords[f"{method}_y"].to_numpy(np.float32), "label": label.to_numpy(),
                         "name": name.to_numpy(), "hover": hover.to_numpy()})


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
