"""Cosine nearest neighbours, and the leave-one-out k-NN evaluation of an embedding."""
from __future__ import annotations

import numpy as np
import pandas as pd


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


def knn_votes(x: np.ndarray, labels, *, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Leave-one-out k-NN votes by cosine similarity among the labelled rows of ``x``.

    Each labelled track's ``k`` nearest other labelled tracks vote; ties go to the label whose voters are more
    similar in total.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    labels : sequence of str or None [shape=(n,)]

    Returns
    -------
    tuple or None
        ``(rows, true, predicted, neighbour_labels)``: the labelled rows [shape=(r,)], their labels and the voted
        labels [shape=(r,), dtype=object], the neighbours' labels [shape=(r, k)]; None with fewer than two
        labels or at most ``k`` labelled rows.
    """
    labels = np.asarray([None if pd.isna(v) else str(v) for v in labels], dtype=object)
    keep = np.flatnonzero(labels != None)  # noqa: E711 (elementwise)
    if len(set(labels[keep])) < 2 or len(keep) <= k:
        return None
    y = labels[keep]
    idx, sims = cosine_topk(x[keep], x[keep], k=k, exclude_self=True)
    neighbour_labels = y[idx]
    predicted = np.empty(len(keep), dtype=object)
    for row in range(len(keep)):
        votes: dict[str, tuple[int, float]] = {}
        for lab, s in zip(neighbour_labels[row], sims[row]):
            n, total = votes.get(lab, (0, 0.0))
            votes[lab] = (n + 1, total + float(s))
        predicted[row] = max(votes, key=votes.get)
    return keep, y, predicted, neighbour_labels


def knn_evaluation(x: np.ndarray, labels, *, k: int = 5) -> dict | None:
    """Leave-one-out k-NN genre accuracy and precision@k by cosine similarity (:func:`knn_votes`).

    Only labelled rows take part; precision@k is the share of a track's ``k`` neighbours that share its label.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    labels : sequence of str or None [shape=(n,)]

    Returns
    -------
    dict or None
        ``{"knn_accuracy", "precision_at_k", "k", "n_tracks", "n_classes"}``; None with fewer than two labels.
    """
    votes = knn_votes(x, labels, k=k)
    if votes is None:
        return None
    keep, y, predicted, neighbour_labels = votes
    return {"knn_accuracy": float((predicted == y).mean()), "precision_at_k": float((neighbour_labels == y[:, None]).mean()),
            "k": k, "n_tracks": int(len(keep)), "n_classes": len(set(y))}


def standardise(x: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """Z-score each column (constant columns become 0), computed in float64, returned as ``dtype``."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(dtype)
