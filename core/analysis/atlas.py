"""What the atlas draws beside the points, as plain data: cluster names at their centres, linked histograms'
bins per track, and the map's own quality.

- :func:`cluster_labels`: one label per cluster of a stored clustering, at the median of its tracks on a map,
  named from the audio (its characteristic musicnn tags by lift, as the cluster cards give them, and the one of
  tempo, key or loudness that sets it apart most).
- :func:`map_histograms`: each track's bin (uint8 codes, :data:`MISSING` where unknown) of tempo, duration,
  cluster, label and a musicnn tag's likelihood; vectorised, a million tracks in about a second.
- :func:`projection_quality` (from :mod:`core.analysis.quality`): the trustworthiness of a run's map, cached in
  the run folder.

Neighbour agreement between two runs per track is in :mod:`core.analysis.agreement`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis.cluster_methods import NO_LABEL, NOISE
from core.analysis.clusters import METHODS as CLUSTER_METHODS
from core.analysis.clusters import cluster_cards, cluster_name, default_input, id_array, load_clusters, result_path
from core.analysis.maps import UNLABELLED
from core.analysis.quality import QUALITY_FOLDER, projection_quality  # noqa: F401 (the atlas's quality caption)
from core.base.errors import ClusterError
from core.runs.folder import Run
from core.search.projection import METHODS

SEPARATOR = " · "


_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # core.audio.features' chroma columns


def _loudness_text(rms: float, z: float) -> str:
    db = 20.0 * np.log10(max(float(rms), 1e-6))  # mean RMS of full-scale audio in dBFS
    return f"{'loud' if z > 0 else 'quiet'} {db:.0f} dB"


def characteristic_feature(profile: pd.DataFrame) -> Optional[dict]:
    """The one of tempo, key and loudness that sets a cluster apart most (largest |z|).

    Parameters
    ----------
    profile : pd.DataFrame
        One cluster's rows of a ``feature_profile.parquet``: ``feature, cluster_mean, z``.

    Returns
    -------
    dict or None
        ``feature`` ("tempo", "key" or "loudness"), ``text`` ("140 BPM", "key D", "loud -12 dB") and ``z``; None
        when the profile has none of them. Key is the pitch class whose chroma is strongest in the cluster, with
        that chroma's z (a tonal centre, not a mode).
    """
    rows = profile.dropna(subset=["z", "cluster_mean"]).set_index("feature")
    found = []
    if "tempo_bpm" in rows.index:
        found.append(("tempo", f"{rows.at['tempo_bpm', 'cluster_mean']:.0f} BPM", rows.at["tempo_bpm", "z"]))
    if "rms_mean" in rows.index:
        z = rows.at["rms_mean", "z"]
        found.append(("loudness", _loudness_text(rows.at["rms_mean", "cluster_mean"], z), z))
    chroma = rows.reindex([f"chroma_{n}_mean" for n in _NOTES]).dropna()
    if len(chroma):
        strongest = chroma["cluster_mean"].idxmax()
        found.append(("key", f"key {strongest[len('chroma_'):-len('_mean')]}", chroma.at[strongest, "z"]))
    if not found:
        return None
    feature, text, z = max(found, key=lambda f: abs(f[2]))
    return {"feature": feature, "text": text, "z": float(z)}


def _label_mix_text(labels: dict, size: int) -> str:
    """``"80% rock"``: the cluster's most common label and its share ("" when its tracks have no labels)."""
    named = {k: v for k, v in labels.items() if k != NO_LABEL}
    if not named or size == 0:
        return ""
    top = max(named, key=named.get)
    return f"{named[top] / size:.0%} {top}"


def cluster_labels(run: Run, clustering: str = "kmeans", method: str = "umap", *, input: Optional[str] = None,
                   n_tags: int = 2) -> list[dict]:
    """A label per cluster of a stored clustering, for the map: where it goes and what it says.

    Parameters
    ----------
    run : Run
    clustering : {"kmeans", "hdbscan"}
        Which stored clustering (:func:`core.analysis.clusters.run_clusters` results in ``run.path/clusters``).
    method : {"pca", "tsne", "umap"}
        The projection the labels are placed on.
    input : str or None
        The clustered input; None: embeddings when clustered on them, else the first input with results.
    n_tags : int
        Characteristic tags in each name.

    Returns
    -------
    list of dict
        Largest cluster first, noise left out: ``cluster`` (its stored number), ``name`` (``"cluster 3"``), ``x``,
        ``y`` (median of its tracks on ``method``: an outlier does not drag it), ``size``, ``text`` (``"rock ·
        guitar · 140 BPM"``: the tags by lift, then :func:`characteristic_feature`; without tags the feature and
        the label mix, ``"140 BPM · 80% rock"``; the plain name when nothing is known), ``tags`` ([(tag, lift)]),
        ``feature`` (:func:`characteristic_feature` or None), ``labels`` (label -> count).

    Raises
    ------
    ClusterError
        The run has no ``clustering`` results.
    ValueError
        An unknown projection.
    """
    from core.analysis.tags import run_tags

    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    folder = Path(run.path) / "clusters"
    input = default_input(folder, clustering, input)
    if input is None:
        raise ClusterError(f"run {run.run_id} has no {clustering} clusters yet (the Clusters page or "
                           f"`python -m core cluster --run {run.run_id} --method {clustering}` makes them)")
    result = load_clusters(folder, input, clustering)
    tracks = run.tracks["track_id"].astype(str)
    cards = cluster_cards(result, track_ids=tracks, tags=run_tags(run), n_tags=n_tags, n_features=0, n_central=0)
    centres = _centres(run, result["assignments"], method)
    profile = result["feature_profile"]
    labels = []
    for card in cards:
        c = card["cluster"]
        if c == NOISE or c not in centres.index:
            continue
        feature = characteristic_feature(profile[profile["cluster"] == c]) if profile is not None else None
        words = [t for t, _ in card["tags"]]
        words += [feature["text"]] if feature else []
        if not card["tags"]:
            words += [_label_mix_text(card["labels"], card["size"])]
        words = [w for w in words if w]
        labels.append({"cluster": c, "name": cluster_name(c), "x": float(centres.at[c, "x"]),
                       "y": float(centres.at[c, "y"]), "size": card["size"],
                       "text": SEPARATOR.join(words) if words else cluster_name(c), "tags": card["tags"],
                       "feature": feature, "labels": card["labels"]})
    return labels


_INDEX_CACHE: dict[tuple, tuple[pd.Index, np.ndarray]] = {}


def _run_index(run: Run) -> tuple[pd.Index, np.ndarray]:
    """The run's track ids as a hashed index (a repeated id counts once, as compare does) and the run row of each
    entry; built once per version of ``tracks.parquet``: at a million tracks the hashing costs about a second."""
    stat = (Path(run.path) / "tracks.parquet").stat()
    key = (str(run.path), stat.st_mtime_ns, stat.st_size)
    if key not in _INDEX_CACHE:
        ids = id_array(run.tracks["track_id"])
        first = np.flatnonzero(~pd.Index(ids).duplicated(keep="first"))
        _INDEX_CACHE.clear()  # one run at a time is enough: pages cache their own results
        _INDEX_CACHE[key] = (pd.Index(ids[first]), first)
    return _INDEX_CACHE[key]


def _track_rows(run: Run, track_ids) -> np.ndarray:
    """Row in ``run.tracks`` of each of ``track_ids`` (-1 where the run lacks it), np.ndarray [shape=(m,)]."""
    index, first = _run_index(run)
    found = index.get_indexer(id_array(track_ids))
    return np.where(found >= 0, first[np.maximum(found, 0)], -1) if len(first) else found


def _aligned(run: Run, track_ids, values: np.ndarray) -> np.ndarray:
    """``values`` of ``track_ids`` (a table's rows) moved onto the run's rows, NaN where the table lacks a track,
    np.ndarray [shape=(n_tracks,), dtype=float64]."""
    rows = _track_rows(run, track_ids)
    out = np.full(len(run.tracks), np.nan)
    out[rows[rows >= 0]] = np.asarray(values, dtype=np.float64)[rows >= 0]
    return out


def _centres(run: Run, assignments: pd.DataFrame, method: str) -> pd.DataFrame:
    """Median ``x``, ``y`` of each cluster's tracks on ``method`` (index: cluster)."""
    rows = _track_rows(run, assignments["track_id"])
    found = rows >= 0
    xy = run.projections[[f"{method}_x", f"{method}_y"]].to_numpy(np.float64)[rows[found]]
    frame = pd.DataFrame({"cluster": assignments["cluster"].to_numpy()[found], "x": xy[:, 0], "y": xy[:, 1]})
    return frame.groupby("cluster")[["x", "y"]].median()


# --- histograms -------------------------------------------------------------------------------------------------

MISSING = 255  # the code of a track whose value is unknown; so at most 255 bins


TEMPO_EDGES = tuple(range(60, 201, 10))  # BPM: below 60, ten-BPM bins, 200 and above


DURATION_EDGES = (30, 60, 120, 180, 240, 300, 420, 600)  # seconds: clips, songs, long pieces


TAG_EDGES = tuple(np.round(np.arange(0.1, 1.0, 0.1), 1))  # likelihood in tenths


def _edge_bins(edges, text) -> list[str]:
    """Bin names for values cut at ``edges``: below the first, between each pair, from the last on."""
    return ([f"<{text(edges[0])}"] + [f"{text(a)}-{text(b)}" for a, b in zip(edges, edges[1:])]
            + [f"≥{text(edges[-1])}"])


def _duration_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min"


def binned_codes(values, edges) -> np.ndarray:
    """Each value's bin among the cuts ``edges`` (ascending): 0 below the first, ``len(edges)`` from the last on,
    :data:`MISSING` for NaN, np.ndarray [shape=(n,), dtype=uint8]."""
    values = np.asarray(values, dtype=np.float64)
    codes = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right").astype(np.uint8)
    codes[np.isnan(values)] = MISSING
    return codes


def category_codes(values, order) -> np.ndarray:
    """Each value's position in ``order`` (at most 255 entries), :data:`MISSING` where it is not in it,
    np.ndarray [shape=(n,), dtype=uint8]."""
    if len(order) > MISSING:
        raise ValueError(f"{len(order)} categories do not fit uint8 codes (at most {MISSING})")
    codes = pd.Categorical(values, categories=list(order)).codes
    return np.where(codes < 0, MISSING, codes).astype(np.uint8)


def _label_histogram(labels: pd.Series) -> dict:
    """Labels as bins: named ones by name, then :data:`UNLABELLED`; above 254 labels the rarest share one bin
    ``"other"``. One factorisation of the column (a million strings hashed once), then integer work."""
    codes, names = pd.factorize(labels.astype(object).to_numpy(), use_na_sentinel=True)
    names = [str(n) for n in names]
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    unlabelled = [i for i, n in enumerate(names) if n == UNLABELLED]
    named = [i for i in range(len(names)) if names[i] != UNLABELLED]
    bins, slot = sorted(names[i] for i in named), np.full(len(names) + 1, MISSING, dtype=np.int64)
    if len(named) > MISSING - 1:  # the 253 most common keep a bin, the others share "other"
        kept = set(sorted(named, key=lambda i: -counts[i])[:MISSING - 2])
        bins = sorted(names[i] for i in kept) + ["other"]
        slot[[i for i in named if i not in kept]] = len(bins) - 1
        named = list(kept)
    slot[named] = [bins.index(names[i]) for i in named]
    if unlabelled or (codes < 0).any():
        bins.append(UNLABELLED)
        slot[unlabelled + [len(names)]] = len(bins) - 1  # index -1 (a missing label) reads the last slot
    return {"name": "label", "codes": slot[codes].astype(np.uint8), "bins": bins}


def _cluster_histogram(run: Run, clustering: str) -> Optional[dict]:
    folder = Path(run.path) / "clusters"
    input = default_input(folder, clustering)
    if input is None:
        return None
    assignments = pd.read_parquet(result_path(folder, clustering, input) / "assignments.parquet",
                                  columns=["track_id", "cluster"])
    numbers = sorted(set(assignments["cluster"].astype(int)) - {NOISE})[:MISSING - 1]
    order = numbers + ([NOISE] if (assignments["cluster"] == NOISE).any() else [])
    per_track = np.full(len(run.tracks), MISSING, dtype=np.uint8)  # not clustered: missing
    rows = _track_rows(run, assignments["track_id"])
    codes = category_codes(assignments["cluster"].astype(int).to_numpy(), order)
    per_track[rows[rows >= 0]] = codes[rows >= 0]
    return {"name": "cluster", "codes": per_track, "bins": [cluster_name(c) for c in order]}


def _dataset_path(run: Run) -> Optional[Path]:
    """The folder of the run's dataset (existing or not); None for a run without a valid dataset name."""
    from core.base.errors import DatasetError
    from core.data.dataset import dataset_dir

    try:
        return dataset_dir(run.config.get("dataset") or "")
    except DatasetError:
        return None


def dataset_feature(run: Run, column: str) -> Optional[np.ndarray]:
    """One audio feature of every track of the run, from its dataset's feature table (only that column is read),
    np.ndarray [shape=(n_tracks,), dtype=float64] with NaN where a track has none; None when the dataset or the
    column is missing."""
    import pyarrow.parquet as pq

    folder = _dataset_path(run)
    path = folder / "features.parquet" if folder is not None else None
    if path is None or not path.exists() or column not in pq.read_schema(path).names:
        return None
    table = pq.read_table(path, columns=["track_id", column])
    return _aligned(run, table.column("track_id").to_numpy(), table.column(column).to_numpy(zero_copy_only=False))


def _dataset_tags(run: Run) -> Optional[pd.DataFrame]:
    """The run's dataset's musicnn tag table as :func:`core.analysis.tags.dataset_tags` keeps it (read once per
    version), not aligned to the run: one column is aligned at a time."""
    from core.analysis.tags import dataset_tags

    folder = _dataset_path(run)
    return dataset_tags(folder) if folder is not None and folder.exists() else None


def map_histograms(run: Run, *, tag: Optional[str] = None, clustering: Optional[str] = None) -> list[dict]:
    """Each track's bin in the histograms beside the map.

    Parameters
    ----------
    run : Run
    tag : str or None
        A musicnn tag (any case) whose likelihood gets a histogram too; left out when the run has no tags.
    clustering : {"kmeans", "hdbscan"} or None
        The clustering binned; None: the first with stored results.

    Returns
    -------
    list of dict
        In this order, each present only when the run has the data: ``tempo`` (BPM, from the dataset's audio
        features), ``duration``, ``cluster``, ``label``, ``tag:<tag>``. Each has ``name``, ``codes``
        (np.ndarray [shape=(n_tracks,), dtype=uint8], row i = ``run.tracks`` row i; bin i of ``bins``, or
        :data:`MISSING` where unknown) and ``bins`` (list of str).

    Raises
    ------
    core.base.errors.TagError
        ``tag`` is not a musicnn tag.
    """
    from core.analysis.tags import resolve_tag

    out = []
    tempo = dataset_feature(run, "tempo_bpm")
    if tempo is not None:
        out.append({"name": "tempo", "codes": binned_codes(tempo, TEMPO_EDGES),
                    "bins": [f"{b} BPM" for b in _edge_bins(TEMPO_EDGES, str)]})
    if "duration_s" in run.tracks:
        out.append({"name": "duration", "codes": binned_codes(pd.to_numeric(run.tracks["duration_s"], errors="coerce"),
                                                              DURATION_EDGES),
                    "bins": _edge_bins(DURATION_EDGES, _duration_text)})
    for method in [clustering] if clustering else CLUSTER_METHODS:
        found = _cluster_histogram(run, method)
        if found is not None:
            out.append(found)
            break
    out.append(_label_histogram(run.tracks["label"]))
    if tag is not None:
        name = resolve_tag(tag)
        table = _dataset_tags(run)
        if table is not None:
            values = _aligned(run, table["track_id"], table[name].to_numpy(np.float64))
            out.append({"name": f"tag:{name}", "codes": binned_codes(values, TAG_EDGES),
                        "bins": _edge_bins(TAG_EDGES, lambda v: f"{v:.1f}")})
    return out
