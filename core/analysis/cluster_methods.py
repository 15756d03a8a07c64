"""The clustering algorithms and what is measured on their clusters, on a plain matrix (no sources, no files):
k-means curves and the best k by silhouette, UMAP + HDBSCAN density clusters, distances to the centres, label
mixes, feature profiles, agreement with labels and a 2-D PCA. :mod:`core.analysis.clusters` runs them on a
source's inputs and stores the results.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.base.errors import ClusterError
from core.base.progress import Progress, silent

NO_LABEL = "(no label)"


NOISE = -1  # HDBSCAN's cluster of tracks that belong to no dense group


def kmeans_curves(x: np.ndarray, *, k_min: int = 2, k_max: int = 12, n_init: int = 10, seed: int = 0,
                  progress: Progress = silent) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """k-means for every k in ``[k_min, k_max]``: the elbow (inertia) and silhouette curves.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    k_min, k_max : int
        ``k_max`` is capped at ``n - 1`` (silhouette needs at least one cluster with two members).
    progress : core.base.progress.Progress
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


def umap_reduce(x: np.ndarray, *, dims: int = 10, seed: int = 0) -> np.ndarray:
    """A UMAP reduction for density clustering: ``min_dist=0`` packs neighbours tightly, so dense groups stay
    dense; np.ndarray [shape=(n, min(dims, n - 2))]."""
    import umap

    dims = max(2, min(dims, len(x) - 2))
    reducer = umap.UMAP(n_components=dims, n_neighbors=int(min(15, len(x) - 1)), min_dist=0.0, random_state=seed,
                        n_jobs=1)
    return reducer.fit_transform(x).astype(np.float64)


def hdbscan_clusters(x: np.ndarray, *, min_cluster_size: int = 8) -> np.ndarray:
    """HDBSCAN clusters of the rows of ``x`` (:data:`NOISE` for rows in no dense group).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=int]
        0 .. k-1, or -1 for noise; clusters numbered by size, largest first.
    """
    from sklearn.cluster import HDBSCAN

    if len(x) < 3:
        raise ClusterError(f"{len(x)} tracks are too few for density clusters")
    size = int(max(2, min(min_cluster_size, len(x) - 1)))
    found = HDBSCAN(min_cluster_size=size, copy=True).fit(x).labels_.astype(int)
    ids, counts = np.unique(found[found != NOISE], return_counts=True)
    order = {int(c): i for i, c in enumerate(ids[np.argsort(-counts, kind="stable")])}
    return np.array([order.get(int(c), NOISE) for c in found], dtype=int)


def centre_distances(x: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Distance of each row to its cluster's mean row in ``x`` (NaN for noise), np.ndarray [shape=(n,)]."""
    out = np.full(len(x), np.nan)
    for c in np.unique(clusters[clusters != NOISE]):
        members = clusters == c
        out[members] = np.linalg.norm(x[members] - x[members].mean(axis=0), axis=1)
    return out


def noise_share(clusters: np.ndarray) -> float:
    return float(np.mean(np.asarray(clusters) == NOISE)) if len(clusters) else 0.0


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


MIN_MATCH_JACCARD = 0.3  # a cluster keeps an earlier number only when it shares this much of its tracks (Jaccard)


def match_numbers(previous_ids, previous: np.ndarray, ids, clusters: np.ndarray, *,
                  min_jaccard: float = MIN_MATCH_JACCARD) -> tuple[np.ndarray, dict]:
    """Renumber ``clusters`` so that each keeps the number of the earlier cluster it overlaps most.

    Clusters are paired by the Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`) on their
    Jaccard overlap of track ids; a pair below ``min_jaccard`` is no match. A matched cluster takes its partner's
    number; an unmatched one the smallest number no kept cluster holds (largest cluster first). Noise stays noise.

    Parameters
    ----------
    previous_ids : sequence of str [shape=(m,)]
    previous : np.ndarray [shape=(m,), dtype=int]
        The earlier result's clusters of ``previous_ids``.
    ids : sequence of str [shape=(n,)]
    clusters : np.ndarray [shape=(n,), dtype=int]
        The new clusters of ``ids``.

    Returns
    -------
    renumbered : np.ndarray [shape=(n,), dtype=int]
    numbering : dict
        ``kept`` (numbers that mean the same group as before, with the ``jaccard`` of each), ``new`` (numbers
        given to clusters that match none) and ``freed`` (earlier numbers no cluster matched).
    """
    from scipy.optimize import linear_sum_assignment

    clusters = np.asarray(clusters, dtype=int)
    old = pd.Series(np.asarray(previous, dtype=int), index=pd.Index(pd.Series(previous_ids).astype(str)))
    old = old[old != NOISE]
    old = old[~old.index.duplicated()]
    new_ids, new_size = np.unique(clusters[clusters != NOISE], return_counts=True)
    old_ids = np.unique(old.to_numpy())
    before = old.reindex(pd.Series(ids).astype(str)).to_numpy()  # NaN: the track was not (or noise) before
    both = ~np.isnan(before) & (clusters != NOISE)
    inter = pd.crosstab(clusters[both], before[both].astype(int)).reindex(index=new_ids, columns=old_ids,
                                                                          fill_value=0).to_numpy(np.float64)
    old_size = old.value_counts().reindex(old_ids).to_numpy(np.float64)
    jaccard = inter / np.maximum(new_size[:, None].astype(np.float64) + old_size[None, :] - inter, 1.0)
    pairs = [(i, j) for i, j in zip(*linear_sum_assignment(-jaccard)) if jaccard[i, j] >= min_jaccard]
    number = {int(new_ids[i]): int(old_ids[j]) for i, j in pairs}
    taken, fresh = set(number.values()), []
    for i in np.argsort(-new_size, kind="stable"):
        if int(new_ids[i]) not in number:
            number[int(new_ids[i])] = free = min(set(range(len(new_ids) + len(taken) + 1)) - taken)
            taken.add(free)
            fresh.append(free)
    table = np.full(int(clusters.max(initial=0)) + 2, NOISE)  # cluster + 1 -> its number (noise -1 -> 0)
    table[new_ids + 1] = [number[int(c)] for c in new_ids]
    kept = {int(old_ids[j]): round(float(jaccard[i, j]), 4) for i, j in pairs}
    numbering = {"kept": sorted(kept), "jaccard": {str(c): v for c, v in sorted(kept.items())},
                 "new": sorted(fresh), "freed": sorted(set(old_ids.tolist()) - set(kept))}
    return table[clusters + 1], numbering
