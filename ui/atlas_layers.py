"""A run as the atlas map's layers (:mod:`ui.atlas`): its points coloured by an option, the cluster names, the
linked histograms, colour by neighbour agreement with another run. Built once per server from ``core`` data and
cached as resources (never copied per rerun: a million-track layer is ~5 MB of bytes)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import (
    COLOUR_LABEL,
    UNLABELLED,
    agreement_runs,
    cluster_labels,
    colouring,
    labels_in_order,
    map_histograms,
    projection_quality,
    stored_agreement,
    track_agreement,
)
from core.base import TimbreError
from core.data import display_names
from core.runs import list_runs, run_label
from ui.atlas import NAMES_LIMIT, AtlasPoints, Histogram, MapLabel, atlas_points
from ui.figures import label_colours
from ui.state import cached_run

AGREEMENT = "agreement:"  # a colour option: neighbour agreement with another run (``agreement:<run id>``)
# A continuous scale (viridis' stops): low values dark purple, high yellow.
SCALE = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
# Up to this many tracks in each run the agreement is computed in the page (one similarity matrix: about a
# second); above, it is a background job (11 s at 10k, 8.5 min at 100k on 2 busy cores) and the page reads its result.
AGREEMENT_IN_PAGE_MAX = 5_000


def track_labels(run) -> pd.Series:
    """Each track's label as text (:data:`core.analysis.UNLABELLED` where it has none)."""
    return run.tracks["label"].astype("string").fillna(UNLABELLED).astype(str)


def hover_names(run) -> list[str] | None:
    """Hover text per track (name · label · top musicnn tags), or None above :data:`ui.atlas.NAMES_LIMIT`."""
    from core.analysis import run_tags, top_tag_text

    tracks = run.tracks
    if len(tracks) > NAMES_LIMIT:
        return None
    text = display_names(tracks).astype(str) + " · " + track_labels(run)
    tags = run_tags(run)
    if tags is not None:
        top = top_tag_text(tags, n=3).set_axis(tracks.index)
        text = text + np.where(top.to_numpy() != "", " · " + top, "")
    return text.tolist()


def _categorical(groups: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Codes, palette and legend of a grouping (labels in the legend's order; grey groups grey)."""
    order = labels_in_order(pd.DataFrame({"label": groups}))
    colours = label_colours(order)
    codes = pd.Categorical(groups, categories=order).codes
    return codes.astype(np.int64), tuple(colours[g] for g in order), tuple(order)


def _continuous(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """0..255 codes of ``values`` over their finite range (NaN -> 0; the page greys unknown values)."""
    finite = np.isfinite(values)
    low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 1.0)
    span = high - low if high > low else 1.0
    codes = np.where(finite, np.rint((np.nan_to_num(values, nan=low) - low) / span * 255), 0)
    return codes.astype(np.int64), low, high


@st.cache_resource(show_spinner="Preparing the map...", max_entries=12)
def cached_layer(run_id: str, method: str, option: str, stamp: str) -> tuple[AtlasPoints, np.ndarray]:
    """The run's points on ``method`` coloured by ``option`` and which tracks have no value for it (greyed),
    np.ndarray [shape=(n,), dtype=bool]; ``stamp`` changes when the colour sources do."""
    run = cached_run(run_id)
    coords = run.projections
    unknown = np.zeros(len(run.tracks), dtype=bool)
    if option.startswith(AGREEMENT):
        values = cached_agreement(run_id, option.removeprefix(AGREEMENT))
        codes, low, high = _continuous(values)
        unknown = ~np.isfinite(values)
        style = {"palette": SCALE, "legend": (f"{low:.2f} (neighbours differ)", f"{high:.2f} (same neighbours)"),
                 "continuous": True}
    else:
        found = colouring(run, option)
        if found.values is not None:
            codes, low, high = _continuous(found.values)
            unknown = ~np.isfinite(found.values)
            style = {"palette": SCALE, "legend": (f"{found.title} {low:.2f}", f"{found.title} {high:.2f}"),
                     "continuous": True}
        else:
            groups = found.groups if found.groups is not None else track_labels(run).to_numpy()
            codes, palette, legend = _categorical(groups)
            style = {"palette": palette, "legend": legend}
    points = atlas_points(coords[f"{method}_x"].to_numpy(), coords[f"{method}_y"].to_numpy(), codes,
                          names=hover_names(run), key=f"{run_id}/{method}/{option}/{stamp}", **style)
    return points, unknown


def label_layer(run_id: str, x: np.ndarray, y: np.ndarray, *, key: str, groups: np.ndarray | None = None) -> AtlasPoints:
    """The run's tracks at positions ``x``, ``y`` [shape=(n,)] (e.g. a map aligned onto another run's), coloured
    by label, or by ``groups`` [shape=(n,)] (e.g. the clusters of one result) when given."""
    run = cached_run(run_id)
    if groups is None:
        groups = track_labels(run).to_numpy()
    codes, palette, legend = _categorical(np.asarray(groups, dtype=object))
    return atlas_points(x, y, codes, palette=palette, legend=legend, names=hover_names(run), key=key)


def groups_of(points: AtlasPoints) -> list[str]:
    """The legend's groups of a categorical layer ([] for a continuous one): what the group filter offers."""
    return [] if points.continuous else list(points.legend)


def group_mask(points: AtlasPoints, shown: list[str]) -> np.ndarray | None:
    """True for the tracks whose group is not in ``shown`` (None when every group is shown)."""
    groups = groups_of(points)
    if not groups or set(shown) >= set(groups):
        return None
    keep = np.isin(np.arange(len(groups)), [groups.index(g) for g in shown if g in groups])
    return ~keep[np.frombuffer(points.codes, dtype=np.uint8)]


@st.cache_resource(show_spinner="Comparing neighbourhoods with the other run...", max_entries=8)
def cached_agreement(run_id: str, other_id: str) -> np.ndarray:
    """:func:`core.analysis.agreement.track_agreement` (cached in the run folder too)."""
    return track_agreement(cached_run(run_id), cached_run(other_id))


def agreement_ready(run_id: str, other_id: str) -> bool:
    """Whether the map can be coloured by agreement with ``other_id`` now: both runs small enough to compute it
    in the page (:data:`AGREEMENT_IN_PAGE_MAX`), or its background job's result stored for both runs as they are."""
    run, other = cached_run(run_id), cached_run(other_id)
    if max(len(run.tracks), len(other.tracks)) <= AGREEMENT_IN_PAGE_MAX:
        return True
    return stored_agreement(run, other) is not None


@st.cache_data(show_spinner=False, max_entries=16)
def cached_agreement_runs(run_id: str, runs: tuple[str, ...]) -> list[str]:
    """Runs sharing tracks with ``run_id`` (``runs``: the current list, so a new run is seen)."""
    return agreement_runs(cached_run(run_id))


def agreement_options(run_id: str) -> list[str]:
    """``agreement:<run id>`` colour options: every other run that shares tracks with this one."""
    return [AGREEMENT + other for other in cached_agreement_runs(run_id, tuple(list_runs()))]


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_labels(run_id: str, method: str, clustering: str, stamp: str, input: str | None = None) -> list[MapLabel]:
    """Cluster names at their centres (:func:`core.analysis.atlas.cluster_labels`, of the clustering of ``input``:
    None for its default); [] without that clustering."""
    try:
        found = cluster_labels(cached_run(run_id), clustering, method, input=input)
    except TimbreError:
        return []
    return [MapLabel(x=c["x"], y=c["y"], text=c["text"], weight=int(c["size"])) for c in found]


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_histograms(run_id: str, tag: str | None, clustering: str | None, stamp: str) -> list[Histogram]:
    """The linked histograms (:func:`core.analysis.atlas.map_histograms`) as the atlas takes them."""
    found = map_histograms(cached_run(run_id), tag=tag, clustering=clustering)
    return [Histogram(name=h["name"], codes=np.asarray(h["codes"], dtype=np.uint8).tobytes(), bins=tuple(h["bins"]))
            for h in found]


@st.cache_data(show_spinner="Measuring how far the map can be trusted...", max_entries=16)
def cached_quality(run_id: str, method: str) -> dict:
    """:func:`core.analysis.atlas.projection_quality` (a seeded sample; cached in the run folder)."""
    return projection_quality(cached_run(run_id), method)


def colour_name(option: str) -> str:
    """How a colour option reads (the agreement options besides :func:`core.analysis.maps.colour_title`)."""
    from core.analysis import colour_title

    if option.startswith(AGREEMENT):
        return f"neighbour agreement with {run_label(option.removeprefix(AGREEMENT))}"
    return colour_title(option) if option != COLOUR_LABEL else "label"
