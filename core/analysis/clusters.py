"""Clusters of tracks, on audio features, on embeddings or on both: k-means with k chosen by silhouette, or
density clusters (HDBSCAN, noise allowed) on a UMAP reduction of the matrix.

Results, under ``<run>/clusters/<method>-<input>/`` (``kmeans-embeddings``, ``hdbscan-features``, ...; or under
``artifacts/datasets/NAME/clusters/``; k-means results written as ``clusters/<input>/`` before are still read, and
replaced by the new name when k-means runs again)::

    summary.json          method, input, number of clusters k, silhouette, noise share, agreement with the labels
                          (ARI, NMI), config
    curves.parquet        k-means only: k, inertia (the elbow curve), silhouette
    assignments.parquet   track_id, label, cluster (-1 = noise), centre_distance (to the cluster's mean in the
                          clustered space; NaN for noise), pca_x, pca_y (a 2-D PCA of the clustered matrix)
    label_mix.parquet     cluster, label, count, share (of the cluster)
    feature_profile.parquet  cluster, feature, cluster_mean, overall_mean, z (difference in overall sd)

The profile always uses the audio features when the source has them (even for clusters found on embeddings):
they are what a person can read. The algorithms themselves, on a plain matrix, are in
:mod:`core.analysis.cluster_methods`; this module runs them on a source, stores the results and reads them back.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis.cluster_methods import (
    NOISE,
    best_k,
    centre_distances,
    feature_profile,
    hdbscan_clusters,
    kmeans_curves,
    label_agreement,
    label_mix,
    match_numbers,
    noise_share,
    pca_2d,
    umap_reduce,
)
from core.analysis.config import INPUTS, METHODS, ClusterConfig, InputName
from core.analysis.sources import Source
from core.base.errors import ClusterError
from core.base.io import atomic_write_json, atomic_write_parquet, write_folder
from core.base.progress import Progress, or_silent, silent
from core.search.exact import l2_normalise, standardise

UMAP_MIN_TRACKS = 10  # fewer tracks are clustered on the matrix itself: UMAP's spectral start needs more points


METHOD_NAMES = {"kmeans": "k-means (k by silhouette)", "hdbscan": "HDBSCAN (density, noise allowed)"}


def scaled_matrix(source: Source, input: InputName) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a complete ``input``, scaled for Euclidean k-means.

    Features are z-scored; embeddings L2-normalised (cosine geometry, as the maps and k-NN use); for ``both``
    each block is z-scored and divided by the square root of its width, so each block weighs the same.

    Returns
    -------
    rows : np.ndarray [shape=(n,), dtype=int]
        Positions in ``source.tracks``.
    x : np.ndarray [shape=(n, d), dtype=float64]
    """
    matrix = source.matrix(input)
    rows = np.flatnonzero(matrix.notna().all(axis=1).to_numpy())
    if len(rows) < 3:
        raise ClusterError(f"{source.title}: only {len(rows)} track(s) have {input} values; clustering needs 3")
    x = matrix.to_numpy(np.float64)[rows]
    if input == "features":
        return rows, standardise(x, dtype=np.float64)
    if input == "embeddings":
        return rows, l2_normalise(x, dtype=np.float64)
    n_feat = source.features.shape[1]
    blocks = [standardise(x[:, :n_feat], dtype=np.float64) / np.sqrt(n_feat),
              standardise(x[:, n_feat:], dtype=np.float64) / np.sqrt(x.shape[1] - n_feat)]
    return rows, np.hstack(blocks)


@dataclasses.dataclass
class ClusterReport:
    results_dir: Path
    summaries: list[dict]
    seconds: float


def clusters_dir(source: Source) -> Path:
    return source.path / "clusters"


def result_name(method: str, input: str) -> str:
    """Folder of one method's results on one input under ``clusters/``: ``<method>-<input>``."""
    if method not in METHODS:
        raise ClusterError(f"no clustering method {method!r} (methods: {', '.join(METHODS)})")
    return f"{method}-{input}"


def result_path(folder: str | Path, method: str, input: str) -> Path:
    """Where one method's results on one input are read from: ``folder/<method>-<input>``, or for k-means the
    ``folder/<input>`` of results written before both methods were named alike, when only that one exists."""
    path = Path(folder) / result_name(method, input)
    legacy = Path(folder) / input
    if method == "kmeans" and not (path / "summary.json").exists() and (legacy / "summary.json").exists():
        return legacy
    return path


def _kmeans(x: np.ndarray, cfg: ClusterConfig, progress: Progress) -> tuple[np.ndarray, pd.DataFrame, dict]:
    curves, all_labels = kmeans_curves(x, k_min=cfg.k_min, k_max=cfg.k_max, n_init=cfg.n_init, seed=cfg.seed,
                                       progress=progress)
    k = best_k(curves)
    return all_labels[k], curves, {"silhouette": float(curves.loc[curves["k"] == k, "silhouette"].iloc[0])}


def _hdbscan(x: np.ndarray, cfg: ClusterConfig, progress: Progress) -> tuple[np.ndarray, None, dict]:
    from sklearn.metrics import silhouette_score

    reduce = cfg.reduce == "umap" and len(x) >= UMAP_MIN_TRACKS
    progress(0, 2, "UMAP" if reduce else "HDBSCAN")
    space = umap_reduce(x, dims=cfg.umap_dims, seed=cfg.seed) if reduce else x
    progress(1, 2, "HDBSCAN")
    clusters = hdbscan_clusters(space, min_cluster_size=cfg.min_cluster_size)
    kept = clusters != NOISE
    # silhouette of the clustered tracks in the input's own space, comparable with k-means'
    silhouette = (float(silhouette_score(x[kept], clusters[kept])) if len(set(clusters[kept])) > 1 else None)
    progress(2, 2, f"{len(set(clusters[kept]))} clusters", noise=noise_share(clusters))
    return clusters, None, {"silhouette": silhouette, "noise_share": noise_share(clusters), "space": space,
                            "reduced": reduce}


def keep_numbers(folder: Path, track_ids, clusters: np.ndarray) -> tuple[np.ndarray, dict]:
    """``clusters`` renumbered to match the result already stored in ``folder`` (:func:`match_numbers`), so a
    re-run keeps each cluster's number where its tracks are mostly the same; unchanged when there is none (or it
    cannot be read). The numbering dict adds ``previous``: when the earlier result was made (None: first run)."""
    try:
        before = pd.read_parquet(folder / "assignments.parquet", columns=["track_id", "cluster"])
        made = json.loads((folder / "summary.json").read_text()).get("created")
    except (OSError, ValueError, KeyError):  # no earlier result, or one too damaged to match against
        return clusters, {"previous": None, "kept": [], "jaccard": {}, "new": sorted(set(clusters.tolist()) - {NOISE}),
                          "freed": []}
    renumbered, numbering = match_numbers(before["track_id"], before["cluster"].to_numpy(), track_ids, clusters)
    return renumbered, {"previous": made, **numbering}


def cluster_input(source: Source, input: InputName, cfg: ClusterConfig, progress: Progress = silent) -> dict:
    """Cluster one input of ``source`` with ``cfg.method``, profile the clusters and write
    ``clusters/<result_name>/``; returns the summary."""
    rows, x = scaled_matrix(source, input)
    clusters, curves, found = (_kmeans if cfg.method == "kmeans" else _hdbscan)(x, cfg, progress)
    space, reduced = found.pop("space", x), found.pop("reduced", False)
    tracks = source.tracks.iloc[rows].reset_index(drop=True)
    clusters, numbering = keep_numbers(result_path(clusters_dir(source), cfg.method, input), tracks["track_id"],
                                       clusters)
    coords = pca_2d(x, seed=cfg.seed)
    assignments = pd.DataFrame({"track_id": tracks["track_id"].to_numpy(),
                                "label": tracks["label"].astype(object).to_numpy(), "cluster": clusters,
                                "centre_distance": centre_distances(space, clusters),
                                "pca_x": coords[:, 0], "pca_y": coords[:, 1]})
    profile = None
    if source.features is not None:
        feats = source.features.iloc[rows].reset_index(drop=True)
        complete = feats.notna().all(axis=1).to_numpy()
        profile = feature_profile(clusters[complete], feats[complete])
    summary = {"method": cfg.method, "input": input, "source": source.title,
               "k": int(len(set(clusters.tolist()) - {NOISE})), "noise_share": noise_share(clusters), **found,
               "sizes": {int(c): int(n) for c, n in zip(*np.unique(clusters, return_counts=True))},
               "n_tracks": len(rows), **label_agreement(clusters, assignments["label"]),
               "clustered_agreement": label_agreement(clusters[clusters != NOISE],
                                                      assignments["label"][clusters != NOISE].to_numpy()),
               "scaling": {"features": "z-score", "embeddings": "L2-normalised",
                           "both": "z-score per block / sqrt(block width)"}[input],
               "space": "UMAP reduction" if reduced else "scaled matrix", "numbering": numbering,
               "config": dataclasses.asdict(cfg), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def write(work: Path) -> None:
        if curves is not None:
            atomic_write_parquet(work / "curves.parquet", curves)
        atomic_write_parquet(work / "assignments.parquet", assignments)
        atomic_write_parquet(work / "label_mix.parquet", label_mix(clusters, assignments["label"]))
        if profile is not None:
            atomic_write_parquet(work / "feature_profile.parquet", profile)
        atomic_write_json(work / "summary.json", summary)

    write_folder(clusters_dir(source) / result_name(cfg.method, input), write)
    legacy = clusters_dir(source) / input  # the same k-means result under its old name: now replaced
    if cfg.method == "kmeans" and (legacy / "summary.json").exists():
        shutil.rmtree(legacy, ignore_errors=True)
    return summary


def run_clusters(source: Source, *, cfg: Optional[ClusterConfig] = None,
                 progress: Optional[Progress] = None) -> ClusterReport:
    """Cluster every requested input of ``source`` (default: every input it has).

    Parameters
    ----------
    source : Source
    cfg : ClusterConfig or None
        None: the defaults.
    progress : core.base.progress.Progress or None
        Told after each k of each input (message ``"<input>: k=<k>"``, with its ``silhouette`` and ``inertia``).
    """
    cfg = cfg or ClusterConfig()
    started = time.perf_counter()
    available = source.available_inputs()
    inputs = list(cfg.input) or available
    wrong = [i for i in inputs if i not in available]
    if wrong:
        raise ClusterError(f"{source.title} has no {', '.join(wrong)} input (it has: {', '.join(available) or 'none'}; "
                            f"inputs are {', '.join(INPUTS)})")
    n_k = max(0, cfg.k_max - max(2, cfg.k_min) + 1) if cfg.method == "kmeans" else 2
    tell, total = or_silent(progress), len(inputs) * n_k
    summaries = []
    for i, input in enumerate(inputs):
        def step(done: int, _: int, message: str = "", i=i, input=input, **values: float) -> None:
            tell(i * n_k + done, total, f"{input}: {message}", **values)

        summaries.append(cluster_input(source, input, cfg, step))
    tell(total, total, "done")
    return ClusterReport(results_dir=clusters_dir(source), summaries=summaries, seconds=time.perf_counter() - started)


def cluster_inputs_done(folder: str | Path, method: str = "kmeans") -> list[str]:
    """Inputs with complete ``method`` results under ``folder`` (a source's ``clusters/``), in the usual order."""
    return [i for i in INPUTS if (result_path(folder, method, i) / "summary.json").exists()]


def load_clusters(folder: str | Path, input: InputName, method: str = "kmeans") -> dict:
    """summary, curves (None for HDBSCAN), assignments, label_mix and feature_profile (None if absent) of one
    method's results on one input."""
    path = result_path(folder, method, input)
    if not (path / "summary.json").exists():
        raise ClusterError(f"no {method} cluster results for {input!r} in {folder}")
    profile, curves = path / "feature_profile.parquet", path / "curves.parquet"
    assignments = pd.read_parquet(path / "assignments.parquet")
    if "centre_distance" not in assignments:  # results written before centre distances were stored
        assignments["centre_distance"] = np.nan
    summary = json.loads((path / "summary.json").read_text())
    summary.setdefault("method", "kmeans")
    summary.setdefault("noise_share", 0.0)
    return {"summary": summary, "curves": pd.read_parquet(curves) if curves.exists() else None,
            "assignments": assignments,
            "label_mix": pd.read_parquet(path / "label_mix.parquet"),
            "feature_profile": pd.read_parquet(profile) if profile.exists() else None}


def cluster_name(cluster: int) -> str:
    """How a cluster is named on screen: ``"cluster 1"`` (numbered from 1) or ``"noise"``."""
    return "noise" if int(cluster) == NOISE else f"cluster {int(cluster) + 1}"


NOT_CLUSTERED = "not clustered"


def default_input(folder: str | Path, method: str = "kmeans", input: Optional[str] = None) -> str | None:
    """The input whose ``method`` results a map shows: ``input`` when it has them, else embeddings, else the first
    input with results; None when ``method`` has none in ``folder``."""
    done = cluster_inputs_done(folder, method)
    if not done:
        return None
    return input if input in done else ("embeddings" if "embeddings" in done else done[0])


def cluster_labels(folder: str | Path, track_ids, *, method: str = "kmeans",
                   input: Optional[str] = None) -> pd.Series | None:
    """Each track's cluster under one method's saved results, for colouring a map.

    Parameters
    ----------
    folder : str or Path
        A source's ``clusters/`` folder (a run's: ``run.path / "clusters"``).
    track_ids : sequence of str [shape=(n,)]
    method : "kmeans" or "hdbscan"
    input : str or None
        None: embeddings when clustered on them, else the first input with results.

    Returns
    -------
    pd.Series [shape=(n,), dtype=object] or None
        ``"cluster 1"``, ..., ``"noise"``, or ``"not clustered"`` for tracks the results do not cover; None
        when ``method`` has no results in ``folder``.
    """
    input = default_input(folder, method, input)
    if input is None:
        return None
    assignments = pd.read_parquet(result_path(folder, method, input) / "assignments.parquet",
                                  columns=["track_id", "cluster"])
    names = dict(zip(assignments["track_id"].astype(str), map(cluster_name, assignments["cluster"])))
    return pd.Series([names.get(str(t), NOT_CLUSTERED) for t in track_ids], dtype=object)


def run_cluster_labels(run, *, method: str = "kmeans", input: Optional[str] = None) -> pd.Series | None:
    """:func:`cluster_labels` of a run (:class:`core.runs.folder.Run`), aligned with ``run.tracks``."""
    return cluster_labels(Path(run.path) / "clusters", run.tracks["track_id"], method=method, input=input)


def id_array(values) -> np.ndarray:
    """Track ids as a numpy array of Python strings, np.ndarray [shape=(n,), dtype=object]: pandas' Arrow-backed
    strings hash several times slower (a million ids: seconds instead of a fraction of one)."""
    values = values.to_numpy(dtype=object) if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values, object)
    return values if all(isinstance(v, str) for v in values[:100]) else values.astype(str).astype(object)


def cluster_cards(result: dict, *, track_ids, tags: Optional[pd.DataFrame] = None, n_tags: int = 5,
                  n_features: int = 5, n_central: int = 3) -> list[dict]:
    """One card per cluster (largest first, noise last): what a person needs to decide whether to explore it.

    Parameters
    ----------
    result : dict
        :func:`load_clusters`.
    track_ids : sequence of str [shape=(n_tracks,)]
        The source's tracks, the row order of ``tags``.
    tags : pd.DataFrame [shape=(n_tracks, 50)] or None
        :func:`core.analysis.tags.run_tags`; None leaves the cards without tags.

    Returns
    -------
    list of dict
        ``cluster, name, size, share, labels`` (label -> count, most common first), ``tags`` ([(tag, lift)]; []
        without tags), ``features`` ([(feature, z)] by |z|; [] without a profile), ``central`` (track ids nearest
        the cluster's centre; [] for noise).
    """
    from core.analysis.tags import characteristic_tags

    assignments, profile = result["assignments"], result["feature_profile"]
    ids = id_array(track_ids)
    last = np.flatnonzero(~pd.Index(ids).duplicated(keep="last"))  # a repeated id: its last row, as a dict kept
    found = pd.Index(ids[last]).get_indexer(id_array(assignments["track_id"]))
    positions = np.where(found >= 0, last[np.maximum(found, 0)], -1) if len(last) else found
    clusters = assignments["cluster"].to_numpy()
    sizes = assignments["cluster"].value_counts()
    order = sorted(sizes.index, key=lambda c: (int(c) == NOISE, -sizes[c], int(c)))
    mix = result["label_mix"]
    has_tags = None if tags is None else tags.notna().to_numpy().any(axis=1)  # once, not per cluster
    cards = []
    for c in order:
        mine = positions[clusters == c]
        rows = mine[mine >= 0].astype(np.int64)
        tagged = has_tags is not None and has_tags[rows].any()
        z = (profile[profile["cluster"] == c].set_index("feature")["z"] if profile is not None
             else pd.Series(dtype=float))
        central = ([] if int(c) == NOISE or n_central == 0 else
                   assignments[clusters == c].sort_values("centre_distance", kind="stable")["track_id"].astype(str)
                   .head(n_central).tolist())
        cards.append({
            "cluster": int(c), "name": cluster_name(c), "size": int(sizes[c]),
            "share": float(sizes[c] / len(assignments)),
            "labels": {str(lab): int(n) for lab, n in mix[mix["cluster"] == c][["label", "count"]].itertuples(index=False)},
            "tags": characteristic_tags(tags, rows, n=n_tags) if tagged else [],
            "features": [(str(f), float(v)) for f, v in z.reindex(z.abs().sort_values(ascending=False).index)
                         .head(n_features).items()],
            "central": central})
    return cards
