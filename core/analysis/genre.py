"""The genre (label) of a query, from the run's best saved classifier (``<run>/classifiers/``).

The classifier was trained on audio features, embeddings or both (``core.analysis.classify``); the query's inputs are
computed by the same code the library's were: :func:`core.audio.features.audio_features` on the query's STFT and
log-mel (the run's :class:`~core.audio.features.MelParams`), and the run's model for the embedding.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Optional

import numpy as np

from core.audio.features import audio_features, log_mel_from_magnitude, stft_magnitude
from core.base.errors import ClassifyError, NeedsAudio
from core.runs.folder import Run


@dataclasses.dataclass(frozen=True)
class GenrePrediction:
    """The predicted label of one query and where it comes from.

    Attributes
    ----------
    label : str
        The most probable class.
    probabilities : dict of str -> float
        Every class with its probability, most probable first.
    model, model_title : str
        Which classifier (``"logreg"``, ``"Logistic regression"``).
    input : str
        What it was trained on: ``"features"``, ``"embeddings"`` or ``"both"``.
    cv_accuracy, cv_std, test_accuracy : float
        Its cross-validated accuracy (mean and spread over folds) and accuracy on the held-out test split.
    """

    label: str
    probabilities: dict[str, float]
    model: str
    model_title: str
    input: str
    cv_accuracy: float
    cv_std: float
    test_accuracy: float

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable classes as (label, probability) pairs."""
        return list(self.probabilities.items())[:n]


def classifiers_folder(run: Run) -> Path:
    return run.path / "classifiers"


@functools.lru_cache(maxsize=8)
def _best_in(folder: str, stamp: int):
    from core.analysis.classify import best_saved_classifier

    return best_saved_classifier(folder)


def best_classifier(run: Run):
    """The run's best saved classifier (``core.analysis.classify.best_saved_classifier``), or None.

    Loaded once and reused until the ``classifiers/`` folder changes (a new classifier job renames result
    folders into it, which changes its mtime).
    """
    folder = classifiers_folder(run)
    if not folder.is_dir():
        return None
    return _best_in(str(folder), folder.stat().st_mtime_ns)


def query_features(run: Run, y: np.ndarray) -> dict[str, float]:
    """Classic audio features of mono audio ``y`` [shape=(n,)] at the run's rate, exactly as ingest computes them."""
    params = run.mel_params
    magnitude = stft_magnitude(y, params=params)
    return audio_features(y=y, magnitude=magnitude, mel_db=log_mel_from_magnitude(magnitude, params=params),
                          params=params)


def embedding_values(embedding: np.ndarray) -> dict[str, float]:
    """An embedding [shape=(d,)] under the column names classifiers use (``emb_000``, ...)."""
    return {f"emb_{i:03d}": float(v) for i, v in enumerate(np.asarray(embedding).reshape(-1))}


def classifier_row(feature_names: list[str], values: dict[str, float]) -> np.ndarray:
    """``values`` in ``feature_names`` order, np.ndarray [shape=(1, len(feature_names)), dtype=float64]."""
    missing = [n for n in feature_names if n not in values]
    if missing:
        raise ClassifyError(f"the classifier needs {len(missing)} input(s) the query lacks: {', '.join(missing[:5])}")
    return np.array([[values[n] for n in feature_names]], dtype=np.float64)


def predict_genre(run: Run, *, y: Optional[np.ndarray] = None,
                  embedding: Optional[np.ndarray] = None) -> Optional[GenrePrediction]:
    """Genre probabilities of a query from the run's best saved classifier; None when the run has none.

    Parameters
    ----------
    run : Run
    y : np.ndarray [shape=(n,)] or None
        The query's mono audio at the run's sample rate (needed for a classifier on features).
    embedding : np.ndarray [shape=(embedding_dim,)] or None
        The query's embedding when already computed (else it is computed from ``y`` if needed).

    Raises
    ------
    NeedsAudio
        When the classifier takes audio features (or neither ``y`` nor ``embedding`` is given) and ``y`` is None.
    ClassifyError
        When the saved classifier expects inputs the query does not have.
    """
    best = best_classifier(run)
    if best is None:
        return None
    values: dict[str, float] = {}
    if best.input in ("features", "both"):
        if y is None:
            raise NeedsAudio(f"the run's best classifier uses audio features ({best.input}): pass the audio y")
        values.update(query_features(run, y))
    if best.input in ("embeddings", "both"):
        if embedding is None:
            if y is None:
                raise NeedsAudio("pass the audio y or its embedding")
            from core.search.passages import matcher_for  # torch: only a query by audio needs it

            embedding = matcher_for(run).embed([y], chunks=False)[0][0]
        values.update(embedding_values(embedding))
    proba = np.asarray(best.classifier.predict_proba(classifier_row(best.feature_names, values)))[0]
    order = np.argsort(-proba, kind="stable")
    probabilities = {str(best.classes[i]): float(proba[i]) for i in order}
    return GenrePrediction(label=str(best.classes[order[0]]), probabilities=probabilities, model=best.model,
                           model_title=best.title, input=best.input, cv_accuracy=float(best.cv_mean),
                           cv_std=float(best.cv_std), test_accuracy=float(best.test_accuracy))
