"""Exact cosine nearest neighbours (the search of every library up to :data:`core.search.ann.EXACT_MAX_TRACKS`)."""
from __future__ import annotations

import numpy as np


def l2_normalise(x: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit length, np.ndarray [shape=(n, d), dtype=dtype]."""
    x = np.asarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_topk(library: np.ndarray, queries: np.ndarray, *, k: int = 5, exclude_self: bool = False,
                normalised: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar library rows of each query, by cosine similarity.

    Parameters
    ----------
    library : np.ndarray [shape=(n, d)]
    queries : np.ndarray [shape=(m, d)]
    k : int
    exclude_self : bool
        Queries are the library itself (m == n): skip each row's own index (leave-one-out).
    normalised : bool
        The library rows are unit length already (float32): not copied to normalise them (at 1M x 128 the copy
        costs more than the search).

    Returns
    -------
    indices : np.ndarray [shape=(m, k), dtype=int64]
        Best first.
    scores : np.ndarray [shape=(m, k), dtype=float32]
        Cosine similarities, descending.
    """
    lib, q = (library if normalised else l2_normalise(library)), l2_normalise(queries)
    sims = q @ lib.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    k = min(k, lib.shape[0] - int(exclude_self))
    part = np.argpartition(-sims, kth=k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(sims, idx, axis=1).astype(np.float32)


def standardise(x: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """Z-score each column (constant columns become 0), computed in float64, returned as ``dtype``."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(dtype)
