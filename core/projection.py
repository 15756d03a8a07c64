"""2-D maps of an embedding (PCA, t-SNE, UMAP) and placement of a new point on each.

Only arrays are stored (``projection.npz``), never pickled estimators. PCA places a new point exactly; for
t-SNE and UMAP a new point goes to the inverse-distance-weighted mean position of its nearest library tracks
(Shepard interpolation). That is the neighbour-weighted initialisation openTSNE's and umap-learn's own
``transform`` start from, without their refinement step (which would need the pickled estimators); it puts a
copy of a library track exactly on that track.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .index import cosine_topk

METHODS = ("pca", "tsne", "umap")
# neighbours and inverse-distance power used to place a new point on the t-SNE and UMAP maps
PLACE_K = 10
PLACE_POWER = 2.0


def fit_pca(x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Two principal axes (scikit-learn's PCA, exact SVD), kept as plain arrays so nothing is pickled.

    Each axis's sign is fixed (its largest coefficient positive), so reruns and library versions draw the same
    picture. A single track has no axes: both are zero and everything sits at the origin.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]

    Returns
    -------
    coords : np.ndarray [shape=(n, 2), dtype=float32]
    arrays : dict
        ``pca_mean`` [shape=(d,)] and ``pca_components`` [shape=(2, d)], float32: what :func:`place` needs.
    """
    from sklearn.decomposition import PCA

    mean, comps = x.mean(axis=0), np.zeros((2, x.shape[1]), dtype=x.dtype)
    n_axes = min(2, *x.shape) if len(x) > 1 else 0
    if n_axes:
        pca = PCA(n_components=n_axes, svd_solver="full").fit(x)
        mean, comps[:n_axes] = pca.mean_, pca.components_
    comps = comps * np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])[:, None]
    return ((x - mean) @ comps.T).astype(np.float32), {"pca_mean": mean.astype(np.float32),
                                                       "pca_components": comps.astype(np.float32)}


def fit_tsne(x: np.ndarray, *, seed: int) -> np.ndarray:
    from openTSNE import TSNE

    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
    return np.asarray(TSNE(n_components=2, perplexity=perplexity, metric="cosine", random_state=seed,
                           n_jobs=2, verbose=False).fit(x.astype(np.float64)), dtype=np.float32)


def fit_umap(x: np.ndarray, *, seed: int) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=int(min(15, len(x) - 1)), min_dist=0.1, metric="cosine",
                        random_state=seed, init="spectral" if len(x) > 10 else "random")
    return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def fit_projections(embeddings: np.ndarray, *, track_ids, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """PCA, t-SNE and UMAP coordinates of every track.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    track_ids : sequence of str [shape=(n,)]
    seed : int

    Returns
    -------
    coords : pd.DataFrame
        ``track_id, pca_x, pca_y, tsne_x, tsne_y, umap_x, umap_y``.
    arrays : dict of str -> np.ndarray
        What :func:`place` needs (saved as ``projection.npz``).
    """
    pca, arrays = fit_pca(embeddings)
    coords = {"pca": pca}
    if len(embeddings) >= 8:
        coords["tsne"] = fit_tsne(embeddings, seed=seed)
        coords["umap"] = fit_umap(embeddings, seed=seed)
    else:  # too few points for neighbour graphs: t-SNE and UMAP fall back to the PCA picture
        coords["tsne"] = coords["umap"] = pca
    frame = pd.DataFrame({"track_id": list(track_ids)})
    for method in METHODS:
        frame[f"{method}_x"], frame[f"{method}_y"] = coords[method][:, 0], coords[method][:, 1]
    return frame, arrays


def place(queries: np.ndarray, *, library: np.ndarray, coords: pd.DataFrame, arrays: dict) -> dict[str, np.ndarray]:
    """Map coordinates of new embeddings on each projection.

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
    library : np.ndarray [shape=(n, d)]
        The run's embeddings (rows match ``coords``).
    coords : pd.DataFrame
        The run's projections.
    arrays : dict
        From :func:`fit_projections`.

    Returns
    -------
    dict of method -> np.ndarray [shape=(m, 2)]
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    out = {"pca": (queries - arrays["pca_mean"]) @ arrays["pca_components"].T}
    idx, sims = cosine_topk(library, queries, k=PLACE_K)
    w = 1.0 / (np.clip(1.0 - sims, 0.0, None) + 1e-9) ** PLACE_POWER
    w /= w.sum(axis=1, keepdims=True)
    for method in ("tsne", "umap"):
        xy = coords[[f"{method}_x", f"{method}_y"]].to_numpy(np.float32)
        out[method] = np.einsum("mk,mkd->md", w, xy[idx])
    return {m: v.astype(np.float32) for m, v in out.items()}
