"""k-means clusters of tracks, on audio features, on embeddings or on both, with k chosen by silhouette.

Results, under ``<run>/clusters/<input>/`` (or ``artifacts/datasets/NAME/clusters/<input>/``)::

    summary.json          input, chosen k, its silhouette, agreement with the labels (ARI, NMI), config
    curves.parquet        k, inertia (the elbow curve), silhouette
    assignments.parquet   track_id, label, cluster, pca_x, pca_y (a 2-D PCA of the clustered matrix)
    label_mix.parquet     cluster, label, count, share (of the cluster)
    feature_profile.parquet  cluster, feature, cluster_mean, overall_mean, z (difference in overall sd)

The profile always uses the audio features when the source has them (even for clusters found on embeddings):
they are what a person can read.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from .config import doc
from .errors import ClusterError
from .feature_table import INPUTS, InputName, Source
from .index import l2_normalise, standardise
from .io import atomic_write_json, atomic_write_parquet, write_folder
from .progress import Progress, or_silent, silent

NO_LABEL = "(no label)"


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """One clustering job."""

    input: tuple[InputName, ...] = doc((), "features, embeddings and/or both; empty = every input the source has")
    k_min: int = doc(2, "smallest k tried")
    k_max: int = doc(12, "largest k tried (capped at tracks - 1); 12 covers a few genres with sub-styles")
    n_init: int = doc(10, "k-means restarts per k; the best inertia wins")
    seed: int = doc(0, "seeds k-means and the PCA")


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


def kmeans_curves(x: np.ndarray, *, k_min: int = 2, k_max: int = 12, n_init: int = 10, seed: int = 0,
                  progress: Progress = silent) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """k-means for every k in ``[k_min, k_max]``: the elbow (inertia) and silhouette curves.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    k_min, k_max : int
        ``k_max`` is capped at ``n - 1`` (silhouette needs at least one cluster with two members).
    progress : core.progress.Progress
        Told after each k, with its ``silhouette`` and ``inertia``.

    Returns
    -------
    curves : pd.DataFrame
        ``k, inertia, silhouette`` (one row per k).
    labels : dict of int -> np.ndarray [shape=(n,), dtype=int]
        Cluster of each row for each k.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    k_max = min(k_max, len(x) - 1)
    if k_max < max(2, k_min):
        raise ClusterError(f"{len(x)} tracks are too few to try k from {k_min} to {k_max}")
    rows, labels = [], {}
    ks = list(range(max(2, k_min), k_max + 1))
    for i, k in enumerate(ks):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
        labels[k] = km.labels_.astype(int)
        silhouette = silhouette_score(x, km.labels_) if len(set(km.labels_)) > 1 else -1.0
        rows.append({"k": k, "inertia": float(km.inertia_), "silhouette": float(silhouette)})
        progress(i + 1, len(ks), f"k={k}", silhouette=rows[-1]["silhouette"], inertia=rows[-1]["inertia"])
    return pd.DataFrame(rows), labels


def best_k(curves: pd.DataFrame) -> int:
    """The k with the highest silhouette (ties: the smaller k)."""
    return int(curves.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]["k"])


def label_mix(clusters: np.ndarray, labels) -> pd.DataFrame:
    """``cluster, label, count, share`` (share of the cluster); unlabelled tracks count as ``(no label)``."""
    frame = pd.DataFrame({"cluster": clusters, "label": pd.Series(labels, dtype=object).fillna(NO_LABEL).to_numpy()})
    mix = frame.groupby(["cluster", "label"]).size().rename("count").reset_index()
    mix["share"] = mix["count"] / mix.groupby("cluster")["count"].transform("sum")
    return mix.sort_values(["cluster", "count"], ascending=[True, False], ignore_index=True)


def feature_profile(clusters: np.ndarray, features: pd.DataFrame) -> pd.DataFrame:
    """Mean of each feature per cluster against the overall mean.

    Parameters
    ----------
    clusters : np.ndarray [shape=(n,)]
    features : pd.DataFrame [shape=(n, n_features)]

    Returns
    -------
    pd.DataFrame
        ``cluster, feature, cluster_mean, overall_mean, z`` with ``z = (cluster_mean - overall_mean) / overall_sd``
        (0 for a constant feature).
    """
    overall_mean, overall_sd = features.mean(), features.std(ddof=0)
    means = features.groupby(np.asarray(clusters)).mean()
    z = (means - overall_mean) / overall_sd.where(overall_sd > 0, np.inf)
    long = means.stack().rename("cluster_mean").to_frame().join(z.stack().rename("z"))
    long.index.names = ["cluster", "feature"]
    long = long.reset_index()
    long["overall_mean"] = long["feature"].map(overall_mean)
    return long[["cluster", "feature", "cluster_mean", "overall_mean", "z"]]


def profile_matrix(profile: pd.DataFrame, *, n: int = 20) -> pd.DataFrame:
    """z of each cluster x the ``n`` features that separate the clusters most (largest |z| anywhere).

    Returns
    -------
    pd.DataFrame [shape=(k, min(n, n_features))]
        Index: cluster; columns: features, most distinctive first.
    """
    wide = profile.pivot(index="cluster", columns="feature", values="z")
    order = wide.abs().max().sort_values(ascending=False).index[:n]
    return wide[order]


def label_agreement(clusters: np.ndarray, labels) -> dict:
    """Adjusted Rand index and normalised mutual information with the labels (labelled tracks only)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = pd.Series(labels, dtype=object)
    known = labels.notna().to_numpy()
    if known.sum() < 2 or labels[known].nunique() < 2:
        return {"ari": None, "nmi": None, "n_labelled": int(known.sum())}
    y = labels[known].astype(str).to_numpy()
    return {"ari": float(adjusted_rand_score(y, clusters[known])),
            "nmi": float(normalized_mutual_info_score(y, clusters[known])), "n_labelled": int(known.sum())}


def pca_2d(x: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """First two principal components, np.ndarray [shape=(n, 2)] (zero-padded when d < 2)."""
    from sklearn.decomposition import PCA

    n_comp = min(2, x.shape[1], len(x))
    out = np.zeros((len(x), 2))
    out[:, :n_comp] = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
    return out


@dataclasses.dataclass
class ClusterReport:
    results_dir: Path
    summaries: list[dict]
    seconds: float


def clusters_dir(source: Source) -> Path:
    return source.path / "clusters"


def cluster_input(source: Source, input: InputName, cfg: ClusterConfig, progress: Progress = silent) -> dict:
    """Cluster one input of ``source``, profile the clusters and write ``clusters/<input>/``; returns the summary."""
    rows, x = scaled_matrix(source, input)
    curves, all_labels = kmeans_curves(x, k_min=cfg.k_min, k_max=cfg.k_max, n_init=cfg.n_init, seed=cfg.seed,
                                       progress=progress)
    k = best_k(curves)
    clusters = all_labels[k]
    tracks = source.tracks.iloc[rows].reset_index(drop=True)
    coords = pca_2d(x, seed=cfg.seed)
    assignments = pd.DataFrame({"track_id": tracks["track_id"].to_numpy(),
                                "label": tracks["label"].astype(object).to_numpy(), "cluster": clusters,
                                "pca_x": coords[:, 0], "pca_y": coords[:, 1]})
    profile = None
    if source.features is not None:
        feats = source.features.iloc[rows].reset_index(drop=True)
        complete = feats.notna().all(axis=1).to_numpy()
        profile = feature_profile(clusters[complete], feats[complete])
    summary = {"input": input, "source": source.title, "k": k,
               "silhouette": float(curves.loc[curves["k"] == k, "silhouette"].iloc[0]),
               "sizes": {int(c): int(n) for c, n in zip(*np.unique(clusters, return_counts=True))},
               "n_tracks": len(rows), **label_agreement(clusters, assignments["label"]),
               "scaling": {"features": "z-score", "embeddings": "L2-normalised",
                           "both": "z-score per block / sqrt(block width)"}[input],
               "config": dataclasses.asdict(cfg), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def write(work: Path) -> None:
        atomic_write_parquet(work / "curves.parquet", curves)
        atomic_write_parquet(work / "assignments.parquet", assignments)
        atomic_write_parquet(work / "label_mix.parquet", label_mix(clusters, assignments["label"]))
        if profile is not None:
            atomic_write_parquet(work / "feature_profile.parquet", profile)
        atomic_write_json(work / "summary.json", summary)

    write_folder(clusters_dir(source) / input, write)
    return summary


def run_clusters(source: Source, *, cfg: Optional[ClusterConfig] = None,
                 progress: Optional[Progress] = None) -> ClusterReport:
    """Cluster every requested input of ``source`` (default: every input it has).

    Parameters
    ----------
    source : Source
    cfg : ClusterConfig or None
        None: the defaults.
    progress : core.progress.Progress or None
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
    n_k = max(0, cfg.k_max - max(2, cfg.k_min) + 1)
    tell, total = or_silent(progress), len(inputs) * n_k
    summaries = []
    for i, input in enumerate(inputs):
        def step(done: int, _: int, message: str = "", i=i, input=input, **values: float) -> None:
            tell(i * n_k + done, total, f"{input}: {message}", **values)

        summaries.append(cluster_input(source, input, cfg, step))
    tell(total, total, "done")
    return ClusterReport(results_dir=clusters_dir(source), summaries=summaries, seconds=time.perf_counter() - started)


def cluster_inputs_done(folder: str | Path) -> list[str]:
    """Inputs with complete cluster results under ``folder`` (a source's ``clusters/``), in the usual order."""
    return [i for i in INPUTS if (Path(folder) / i / "summary.json").exists()]


def load_clusters(folder: str | Path, input: InputName) -> dict:
    """summary, curves, assignments, label_mix and feature_profile (None if absent) of one input."""
    path = Path(folder) / input
    if not (path / "summary.json").exists():
        raise ClusterError(f"no cluster results for {input!r} in {folder}")
    profile = path / "feature_profile.parquet"
    return {"summary": json.loads((path / "summary.json").read_text()),
            "curves": pd.read_parquet(path / "curves.parquet"),
            "assignments": pd.read_parquet(path / "assignments.parquet"),
            "label_mix": pd.read_parquet(path / "label_mix.parquet"),
            "feature_profile": pd.read_parquet(profile) if profile.exists() else None}
