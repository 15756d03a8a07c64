"""Feature importances: the model's own (trees, logistic regression) and permutation importance on the test split."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import pandas as pd

from core.analysis.classify.models import ClassifyConfig, predict_classes


def model_importances(pipeline, n_features: int) -> Optional[np.ndarray]:
    """The model's own importances, normalised to sum 1, np.ndarray [shape=(d,)]; None when it has none.

    Trees: gain / split importance; logistic regression: mean |coefficient| over classes (inputs are
    standardised, so coefficients are comparable).
    """
    model = pipeline.named_steps["model"]
    if hasattr(model, "feature_importances_"):
        values = np.asarray(model.feature_importances_, dtype=np.float64)
    elif hasattr(model, "coef_"):
        values = np.abs(np.asarray(model.coef_, dtype=np.float64)).mean(axis=0)
    else:
        return None
    total = values.sum()
    return values / total if total > 0 and values.size == n_features else None


def permutation_importance(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, *,
                           repeats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop in accuracy when one column of ``x`` is shuffled, mean and sd over ``repeats`` shuffles.

    The same estimate as ``sklearn.inspection.permutation_importance``, but all repeats of a column are stacked
    into one ``predict`` call (a few hundred calls instead of thousands: per-call overhead dominates on
    small test splits).

    Parameters
    ----------
    predict : callable, x [shape=(m, d)] -> labels [shape=(m,)]
    x : np.ndarray [shape=(n, d)]
    y : np.ndarray [shape=(n,)]

    Returns
    -------
    mean, std : np.ndarray [shape=(d,)]
    """
    rng = np.random.default_rng(seed)
    n, d = x.shape
    baseline = float((predict(x) == y).mean())
    stacked = np.tile(x, (repeats, 1))
    truth = np.tile(y, repeats)
    drops = np.empty((d, repeats))
    for j in range(d):
        column = stacked[:, j].copy()
        stacked[:, j] = np.concatenate([x[rng.permutation(n), j] for _ in range(repeats)])
        hits = (predict(stacked) == truth).reshape(repeats, n).mean(axis=1)
        drops[j] = baseline - hits
        stacked[:, j] = column
    return drops.mean(axis=1), drops.std(axis=1)


def importance_table(pipeline, x_test: np.ndarray, y_test: np.ndarray, names: list[str],
                     cfg: ClassifyConfig) -> pd.DataFrame:
    """``feature, model_importance, permutation_mean, permutation_std``, sorted by permutation importance.

    Permutation importance (every model) is the drop in test accuracy when a feature's test values are
    shuffled; the model's own importance is NaN for models without one (SVM, MLP, k-NN).
    """
    mean, std = permutation_importance(lambda rows: predict_classes(pipeline, rows), x_test, y_test,
                                       repeats=cfg.permutation_repeats, seed=cfg.seed)
    own = model_importances(pipeline, len(names))
    table = pd.DataFrame({"feature": names, "model_importance": own if own is not None else np.nan,
                          "permutation_mean": mean, "permutation_std": std})
    return table.sort_values(["permutation_mean", "model_importance"], ascending=False, ignore_index=True)
