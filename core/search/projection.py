"""2-D maps of an embedding (PCA, t-SNE, UMAP) and placement of a new point on each.

Only arrays are stored (``projection.npz``), never pickled estimators. PCA places a new point exactly; for
t-SNE and UMAP a new point goes to the inverse-distance-weighted mean position of its nearest library tracks
(Shepard interpolation), taken over the half of them that lie nearest their weighted medoid on the map
(:func:`robust_positions`): a map may put a point's neighbours on two islands, and a plain mean then lands in the
empty space between them. That is the neighbour-weighted initialisation openTSNE's and umap-learn's own
``transform`` start from, made robust, without their refinement step (which would need the pickled estimators,
and measured worse and slower: see the README's benchmarks); it puts a copy of a library track exactly on that
track.

Large libraries: PCA is fitted on every track; t-SNE and UMAP on a seeded sample of :data:`FIT_SAMPLE` tracks,
and every other track is placed on those maps the way a query is (:func:`place_rows`). Below the sample size
every track is fitted, as before.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from core.base.constants import MAP_METHODS
from core.search.exact import cosine_topk

METHODS = MAP_METHODS


# neighbours and inverse-distance power used to place a new point on the t-SNE and UMAP maps
PLACE_K = 10


PLACE_POWER = 2.0


# of the PLACE_K neighbours, the mean is taken over the PLACE_KEEP nearest their weighted medoid on the map
# (benchmarks.bench_atlas, 20k tracks, 5k fitted: neighbourhood preservation 0.39 / 0.25 -> 0.44 / 0.32 for t-SNE
# / UMAP, and 100k tracks, 50k fitted: 0.11 / 0.06 -> 0.18 / 0.10; keeping 3 to 6 scores within 0.01; the
# medoid alone 0.41 / 0.31 on the 20k maps)
PLACE_KEEP = 5


# t-SNE and UMAP are fitted on at most this many tracks (the rest are placed): both scale worse than linearly
# and 50k points keep a fit within minutes on two cores, while placement of the rest is one k-NN search.
FIT_SAMPLE = 50_000


# queries per block of the placement search (a block's similarity matrix is block x sample floats)
PLACE_BLOCK = 2048


# Placing more queries than this at once searches the library through an IVF index (core.search.ann) instead of
# exactly: 100k placements among a 50k sample took 15 s instead of 120 s, and a missed neighbour barely moves a
# weighted mean.
PLACE_ANN_QUERIES = 20_000


MAP_FIT_FILE = "projection.npz"


@dataclasses.dataclass(frozen=True)
class MapFit:
    """What a run's maps were fitted with: all that places a new point, beside the library's own positions.
    Stored as plain arrays (``projection.npz``), never as a pickled estimator.

    Attributes
    ----------
    pca_mean : np.ndarray [shape=(d,), dtype=float32]
    pca_components : np.ndarray [shape=(2, d), dtype=float32]
        The two principal axes (zero where the library has none).
    fit_rows : np.ndarray [shape=(m,), dtype=int64] or None
        The rows t-SNE and UMAP were fitted on (every other track was placed); None where not recorded.
    """

    pca_mean: np.ndarray
    pca_components: np.ndarray
    fit_rows: np.ndarray | None = None

    def pca(self, x: np.ndarray) -> np.ndarray:
        """Where ``x`` [shape=(m, d)] lies on the PCA map, np.ndarray [shape=(m, 2), dtype=float32]."""
        return ((np.asarray(x, dtype=np.float32) - self.pca_mean) @ self.pca_components.T).astype(np.float32)

    def fitted_on(self, rows) -> "MapFit":
        """This fit with :attr:`fit_rows` set to ``rows``."""
        return dataclasses.replace(self, fit_rows=np.asarray(rows, dtype=np.int64))

    def save(self, folder: Path) -> None:
        """Write ``folder / projection.npz`` (no ``fit_rows`` array when None)."""
        arrays = {"pca_mean": self.pca_mean, "pca_components": self.pca_components}
        np.savez(Path(folder) / MAP_FIT_FILE, **arrays, **({} if self.fit_rows is None else {"fit_rows": self.fit_rows}))

    @classmethod
    def load(cls, folder: Path) -> "MapFit":
        """Read ``folder / projection.npz``."""
        with np.load(Path(folder) / MAP_FIT_FILE, allow_pickle=False) as z:
            return cls(pca_mean=z["pca_mean"], pca_components=z["pca_components"],
                       fit_rows=z["fit_rows"] if "fit_rows" in z.files else None)


def fit_pca(x: np.ndarray) -> tuple[np.ndarray, MapFit]:
    """Two principal axes (scikit-learn's PCA, exact SVD), kept as plain arrays so nothing is pickled.

    Each axis's sign is fixed (its largest coefficient positive), so reruns and library versions draw the same
    picture. A single track has no axes: both are zero and everything sits at the origin.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]

    Returns
    -------
    coords : np.ndarray [shape=(n, 2), dtype=float32]
    fit : MapFit
        The axes (no :attr:`MapFit.fit_rows`): what :func:`place` needs for the PCA map.
    """
    from sklearn.decomposition import PCA

    mean, comps = x.mean(axis=0), np.zeros((2, x.shape[1]), dtype=x.dtype)
    n_axes = min(2, *x.shape) if len(x) > 1 else 0
    if n_axes:
        pca = PCA(n_components=n_axes, svd_solver="full").fit(x)
        mean, comps[:n_axes] = pca.mean_, pca.components_
    comps = comps * np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])[:, None]
    fit = MapFit(pca_mean=mean.astype(np.float32), pca_components=comps.astype(np.float32))
    return fit.pca(x), fit


TSNE_THREADS_FROM = 5000  # fitted tracks from which t-SNE takes a second thread (fewer: its sync costs more)


def fit_tsne(x: np.ndarray, *, seed: int) -> np.ndarray:
    from openTSNE import TSNE

    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
    # openTSNE's threads meet at every one of its ~750 gradient steps: on a busy 2-core machine (load 8) two
    # threads took 60 s for 48 tracks against 0.5 s with one, 48 s against 30 s for 2,000
    n_jobs = 1 if len(x) < TSNE_THREADS_FROM else 2
    return np.asarray(TSNE(n_components=2, perplexity=perplexity, metric="cosine", random_state=seed,
                           n_jobs=n_jobs, verbose=False).fit(x.astype(np.float64)), dtype=np.float32)


def fit_umap(x: np.ndarray, *, seed: int) -> np.ndarray:
    import umap

    # a seed makes UMAP single-threaded anyway: saying n_jobs=1 keeps its "overridden" warning off the terminal
    reducer = umap.UMAP(n_components=2, n_neighbors=int(min(15, len(x) - 1)), min_dist=0.1, metric="cosine",
                        random_state=seed, init="spectral" if len(x) > 10 else "random", n_jobs=1)
    return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def fit_sample(n: int, *, sample: int = FIT_SAMPLE, seed: int = 0) -> np.ndarray:
    """Rows t-SNE and UMAP are fitted on: all ``n`` up to ``sample``, else ``sample`` seeded rows.

    Returns
    -------
    np.ndarray [shape=(min(n, sample),), dtype=int64]
        Ascending.
    """
    if n <= sample:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False)).astype(np.int64)


def fit_projections(embeddings: np.ndarray, *, track_ids, seed: int = 0,
                    sample: int = FIT_SAMPLE) -> tuple[pd.DataFrame, MapFit]:
    """PCA, t-SNE and UMAP coordinates of every track.

    PCA is fitted on every track; t-SNE and UMAP on :func:`fit_sample` rows, the others placed by
    :func:`place_rows` (with ``n <= sample`` every track is fitted).

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    track_ids : sequence of str [shape=(n,)]
    seed : int
    sample : int
        Most tracks t-SNE and UMAP are fitted on.

    Returns
    -------
    coords : pd.DataFrame
        ``track_id, pca_x, pca_y, tsne_x, tsne_y, umap_x, umap_y``.
    fit : MapFit
        What :func:`place` needs (saved as ``projection.npz``), with the rows t-SNE and UMAP were fitted on.
    """
    pca, fit = fit_pca(embeddings)
    rows = fit_sample(len(embeddings), sample=sample, seed=seed)
    coords = {"pca": pca}
    if len(rows) >= 8:
        fitted = embeddings[rows]
        coords["tsne"] = fit_tsne(fitted, seed=seed)
        coords["umap"] = fit_umap(fitted, seed=seed)
    else:  # too few points for neighbour graphs: t-SNE and UMAP fall back to the PCA picture
        coords["tsne"] = coords["umap"] = pca[rows]
    if len(rows) < len(embeddings):
        coords.update(place_rows(embeddings, rows=rows, fitted={m: coords[m] for m in ("tsne", "umap")}))
    frame = pd.DataFrame({"track_id": list(track_ids)})
    for method in METHODS:
        frame[f"{method}_x"], frame[f"{method}_y"] = coords[method][:, 0], coords[method][:, 1]
    return frame, fit.fitted_on(rows)


def place(queries: np.ndarray, *, library: np.ndarray, coords: pd.DataFrame, fit: MapFit,
          index=None) -> dict[str, np.ndarray]:
    """Map coordinates of new embeddings on each projection.

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
    library : np.ndarray [shape=(n, d)]
        The run's embeddings (rows match ``coords``).
    coords : pd.DataFrame
        The run's projections.
    fit : MapFit
        From :func:`fit_projections` (a run's :attr:`core.runs.folder.Run.map_fit`).
    index : core.search.ann.AnnIndex or None
        The run's search index (``Run.index``): the neighbours are searched through it, not exactly.

    Returns
    -------
    dict of method -> np.ndarray [shape=(m, 2)]
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    out = {"pca": fit.pca(queries)}
    out.update(interpolate(queries, library=library, index=index, maps={
        m: coords[[f"{m}_x", f"{m}_y"]].to_numpy(np.float32) for m in ("tsne", "umap")}))
    return {m: v.astype(np.float32) for m, v in out.items()}


def interpolate(queries: np.ndarray, *, library: np.ndarray, maps: dict[str, np.ndarray],
                index=None) -> dict[str, np.ndarray]:
    """Shepard interpolation made robust: each query at the inverse-distance-weighted mean map position of its
    :data:`PLACE_K` most cosine-similar library rows, over the :data:`PLACE_KEEP` of them nearest their weighted
    medoid on that map (:func:`robust_positions`; searched in blocks of :data:`PLACE_BLOCK` queries, through
    an IVF index above :data:`PLACE_ANN_QUERIES` queries).

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
    library : np.ndarray [shape=(n, d)]
    maps : dict of method -> np.ndarray [shape=(n, 2)]
        Library positions on each map.
    index : core.search.ann.AnnIndex or None
        An index of ``library`` to search through (a run's own); default as above.

    Returns
    -------
    dict of method -> np.ndarray [shape=(m, 2), dtype=float32]
    """
    from core.search.ann import build_index, search

    if index is None and len(queries) > PLACE_ANN_QUERIES:
        index = build_index(library)
    out = {m: np.empty((len(queries), 2), dtype=np.float32) for m in maps}
    for start in range(0, len(queries), PLACE_BLOCK):
        block = slice(start, start + PLACE_BLOCK)
        idx, sims = search(library, queries[block], k=PLACE_K, index=index)
        w = 1.0 / (np.clip(1.0 - sims, 0.0, None) + 1e-9) ** PLACE_POWER
        for method, xy in maps.items():
            out[method][block] = robust_positions(np.asarray(xy, dtype=np.float32)[idx], w)
    return out


def robust_positions(positions: np.ndarray, weights: np.ndarray, *, keep: int = PLACE_KEEP) -> np.ndarray:
    """The weighted mean of each query's neighbours on a map, over the ``keep`` of them nearest their weighted
    medoid (the neighbour whose weighted sum of map distances to the others is smallest).

    Parameters
    ----------
    positions : np.ndarray [shape=(m, k, 2)]
        Map positions of each query's ``k`` neighbours.
    weights : np.ndarray [shape=(m, k)]
        Positive; need not sum to 1.

    Returns
    -------
    np.ndarray [shape=(m, 2), dtype=float32]
    """
    p = positions.astype(np.float64)
    w = weights / weights.sum(axis=1, keepdims=True)
    keep = min(keep, p.shape[1])
    spread = np.linalg.norm(p[:, :, None, :] - p[:, None, :, :], axis=3)  # [m, k, k] map distances
    medoid = p[np.arange(len(p)), (spread * w[:, None, :]).sum(axis=2).argmin(axis=1)]
    near = np.argpartition(np.linalg.norm(p - medoid[:, None, :], axis=2), keep - 1, axis=1)[:, :keep]
    kept_w = np.take_along_axis(w, near, axis=1)
    kept_p = np.take_along_axis(p, near[:, :, None], axis=1)
    return (np.einsum("mk,mkd->md", kept_w, kept_p) / kept_w.sum(axis=1, keepdims=True)).astype(np.float32)


def place_rows(embeddings: np.ndarray, *, rows: np.ndarray, fitted: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every track on maps fitted on ``rows`` only: fitted rows keep their position, the others are placed by
    :func:`interpolate` among the fitted rows.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    rows : np.ndarray [shape=(m,), dtype=int]
    fitted : dict of method -> np.ndarray [shape=(m, 2)]
        Positions of ``rows`` on each map.

    Returns
    -------
    dict of method -> np.ndarray [shape=(n, 2), dtype=float32]
    """
    rest = np.setdiff1d(np.arange(len(embeddings)), rows)
    placed = interpolate(embeddings[rest], library=embeddings[rows], maps=fitted)
    out = {}
    for method, xy in fitted.items():
        out[method] = np.empty((len(embeddings), 2), dtype=np.float32)
        out[method][rows], out[method][rest] = xy, placed[method]
    return out


def neighbourhood_preservation(queries: np.ndarray, library: np.ndarray, *, query_xy: np.ndarray,
                               library_xy: np.ndarray, k: int = 10) -> float:
    """How well a map keeps neighbourhoods: the mean share of each query's ``k`` most cosine-similar library
    rows (in embedding space) that are also among its ``k`` nearest library rows on the map (Euclidean).

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
    library : np.ndarray [shape=(n, d)]
    query_xy : np.ndarray [shape=(m, 2)]
    library_xy : np.ndarray [shape=(n, 2)]
    k : int

    Returns
    -------
    float
        In [0, 1]; 1 when every neighbourhood is kept. A random map scores about ``k / n``.
    """
    from sklearn.neighbors import NearestNeighbors

    true, _ = cosine_topk(library, queries, k=k)
    _, drawn = NearestNeighbors(n_neighbors=k).fit(library_xy).kneighbors(query_xy)
    hits = [len(np.intersect1d(a, b)) for a, b in zip(true, drawn)]
    return float(np.mean(hits) / k)
