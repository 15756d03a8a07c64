"""Fitting and scoring: the IQR outlier rule, the grid search on the training part, cross-validation, and the
test-split metrics."""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from core.analysis.classify.models import ClassifyConfig, ModelSpec, make_pipeline, predict_classes


def iqr_inliers(x: np.ndarray, y: np.ndarray, *, factor: float, max_share: float, min_per_class: int) -> np.ndarray:
    """Rows to keep under the IQR rule, fitted on ``x`` itself (pass training rows only).

    A value is extreme outside ``[Q1 - factor*IQR, Q3 + factor*IQR]`` of its column; a row is an outlier when
    more than ``max_share`` of its values are extreme. A class that would keep fewer than ``min_per_class`` rows
    keeps all of them.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    y : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=bool]
    """
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    spread = factor * (q3 - q1)
    extreme = (x < q1 - spread) | (x > q3 + spread)
    keep = extreme.mean(axis=1) <= max_share
    for label in np.unique(y):
        rows = y == label
        if keep[rows].sum() < min_per_class:
            keep[rows] = True
    return keep


def _inner_folds(y: np.ndarray, wanted: int) -> int:
    return max(2, min(wanted, int(np.bincount(y).min())))


@dataclasses.dataclass
class Search:
    """A finished grid search: the pipeline refitted on all rows it saw, and how it was chosen."""

    pipeline: Any
    best_params: dict
    best_score: float
    folds: int
    grid: dict


def grid_search(spec: ModelSpec, x: np.ndarray, y: np.ndarray, cfg: ClassifyConfig) -> Search:
    """Grid search with stratified folds on (x, y) only, then a refit on all of (x, y) with the best params.

    With ``cfg.outliers`` the IQR rule is fitted on (x, y) and its outliers are dropped first.
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    if cfg.outliers:
        keep = iqr_inliers(x, y, factor=cfg.iqr_factor, max_share=cfg.outlier_share, min_per_class=cfg.search_folds)
        x, y = x[keep], y[keep]
    folds = _inner_folds(y, cfg.search_folds)
    grid = spec.grid(x.shape[1], len(y) - math.ceil(len(y) / folds))
    search = GridSearchCV(make_pipeline(spec, cfg), {f"model__{k}": v for k, v in grid.items()}, scoring="accuracy",
                          refit=True, error_score="raise", n_jobs=cfg.n_jobs,
                          cv=StratifiedKFold(folds, shuffle=True, random_state=cfg.seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # e.g. a class smaller than the folds
        search.fit(x, y)
    best = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    return Search(search.best_estimator_, best, float(search.best_score_), folds, grid)


def cross_validated_accuracy(spec: ModelSpec, x: np.ndarray, y: np.ndarray, cfg: ClassifyConfig,
                             best_params: dict) -> np.ndarray:
    """Accuracy on each of ``cfg.cv_folds`` stratified folds of (x, y), np.ndarray [shape=(cv_folds,)].

    Each fold fits on the other folds only (outlier rule included). With ``cfg.nested_cv`` the grid search is
    repeated inside every fold; otherwise ``best_params`` (chosen on the training part) are used, which is
    slightly optimistic since those tracks also appear in the CV's validation folds.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for fit_rows, val_rows in StratifiedKFold(cfg.cv_folds, shuffle=True, random_state=cfg.seed).split(x, y):
        if cfg.nested_cv:
            model = grid_search(spec, x[fit_rows], y[fit_rows], cfg).pipeline
        else:
            xf, yf = x[fit_rows], y[fit_rows]
            if cfg.outliers:
                keep = iqr_inliers(xf, yf, factor=cfg.iqr_factor, max_share=cfg.outlier_share,
                                   min_per_class=cfg.search_folds)
                xf, yf = xf[keep], yf[keep]
            model = clone(make_pipeline(spec, cfg)).set_params(**{f"model__{k}": v for k, v in best_params.items()})
            model.fit(xf, yf)
        scores.append(float((predict_classes(model, x[val_rows]) == y[val_rows]).mean()))
    return np.array(scores)


def score_predictions(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> tuple[dict, np.ndarray]:
    """Accuracy, balanced accuracy, macro-F1 (over the classes present in ``y_true``), per-class P/R/F1, and the
    confusion matrix [shape=(k, k)] (rows: true class, columns: predicted)."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = s > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    metrics = {"accuracy": float(accuracy_score(y_true, y_pred)), "balanced_accuracy": balanced,
               "macro_f1": float(f[present].mean()) if present.any() else 0.0,
               "per_class": [{"label": c, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                              "support": int(s[i])} for i, c in enumerate(classes)]}
    return metrics, confusion_matrix(y_true, y_pred, labels=labels)
