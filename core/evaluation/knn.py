"""Leave-one-out k-NN genre accuracy of an embedding, beside the MFCC baseline on the same tracks."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import pandas as pd

from core.audio.features import mfcc_stats
from core.base.progress import Progress
from core.evaluation.recording import RecordingEvalConfig, recording_evaluation
from core.search.exact import cosine_topk, standardise


def mfcc_baseline(mels: list[np.ndarray]) -> np.ndarray:
    """Standardised MFCC means and standard deviations per track, np.ndarray [shape=(n, 40)]."""
    return standardise(np.stack([mfcc_stats(np.asarray(m, dtype=np.float32)) for m in mels]))


def evaluate(embeddings: np.ndarray, mels: list[np.ndarray], labels) -> dict:
    """k-NN evaluation (k=5) of the learned embeddings and, computed the same way, of the MFCC baseline."""
    return {"knn_eval": knn_evaluation(embeddings, labels, k=5),
            "baseline_mfcc_knn_eval": knn_evaluation(mfcc_baseline(mels), labels, k=5)}


def evaluate_embeddings(embeddings: np.ndarray, *, tracks, mels: list[np.ndarray], sr: int,
                        score: Callable[[list[np.ndarray]], np.ndarray], seed: int = 0,
                        progress: Optional[Progress] = None) -> dict:
    """Everything ``metrics.json`` reports about a library's embeddings: 5-NN genre scores beside the MFCC
    baseline, and query by recording (:mod:`core.evaluation.recording`; absent when no track's audio can be read).

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    tracks : pd.DataFrame
        The run's track table (``label``, ``path``), rows as ``embeddings``.
    mels : list of np.ndarray [shape=(n_mels, t_i)]
    sr : int
        Rate of the audio ``score`` takes.
    score : callable(list of np.ndarray [shape=(n_samples,)]) -> np.ndarray [shape=(q, n_tracks)]
        Ranks the library for query audio as the run will (:meth:`core.search.passages.Matcher.scores`).
    """
    out = evaluate(embeddings, mels, tracks["label"].tolist())
    recording = recording_evaluation(tracks["path"].astype(str).tolist(), sr=sr, score=score,
                                     cfg=RecordingEvalConfig(seed=seed), progress=progress)
    if recording is not None:
        out["recording_eval"] = recording
    return out


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
