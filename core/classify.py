"""Genre classifiers on audio features, on a run's embeddings, or on both.

For every input x model: a scikit-learn pipeline (StandardScaler + model), a grid search with stratified folds
on the training part only, the fixed test split of the dataset for the headline figures, a stratified k-fold
cross-validated accuracy for a less noisy estimate, feature importances, and the fitted model saved in a format
that loads without unpickling code.

Results, under ``<run>/classifiers/`` (or ``artifacts/datasets/NAME/classifiers/`` for ``--features NAME``)::

    summary.parquet                 one row per input x model (the table of the Classifiers page)
    job.json                        the last job's config, warnings and dropped classes
    <input>__<model>/metrics.json   test accuracy, balanced accuracy, macro-F1, per-class P/R/F1, CV scores,
                                    grid, best hyper-parameters, timings
    <input>__<model>/confusion.json classes and the test confusion matrix (rows: true, columns: predicted)
    <input>__<model>/importances.parquet  feature, model_importance, permutation_mean, permutation_std
    <input>__<model>/predictions.parquet  track_id, label, predicted (the test split)
    <input>__<model>/model/         meta.json + model.skops | model.ubj | model.txt | model.cbm

Each result folder is written hidden (``.partial-...``) and renamed into place when complete.

The test split is fixed per dataset (``artifacts/datasets/NAME/splits/``): stratified by label, seeded, at track
level, stored the first time and reused, so every input, model and later run is scored on the same tracks, and
no grid search ever sees them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np
import pandas as pd

from .config import doc
from .dataset import dataset_dir
from .errors import ClassifyError
from .feature_table import INPUTS, Source, write_folder
from .io import atomic_write_json, atomic_write_parquet

Progress = Optional[Callable[[int, int, str], None]]
MODEL_NAMES = ("xgboost", "lightgbm", "catboost", "svm", "mlp", "logreg", "knn")


@dataclasses.dataclass
class ClassifyConfig:
    """One classifier job: which inputs and models, the split, the folds and the outlier rule."""

    input: tuple[str, ...] = doc((), "features, embeddings and/or both; empty = every input the source has")
    models: tuple[str, ...] = doc(MODEL_NAMES, "models to train (see MODEL_SPECS for each grid)")
    test_size: float = doc(0.25, "share of each label held out as the fixed test split (50 of 200 tracks)")
    split_seed: int = doc(0, "seed of the test split; one split per dataset and seed, stored and reused")
    cv_folds: int = doc(5, "stratified folds of the reported CV accuracy; smaller classes are left out, named")
    search_folds: int = doc(5, "stratified folds of the grid search on the training part")
    nested_cv: bool = doc(False, "re-run the grid search inside every CV fold: unbiased CV, ~6x the time")
    outliers: bool = doc(False, "drop training rows flagged by the IQR rule (fitted on training rows only)")
    iqr_factor: float = doc(3.0, "a value is extreme beyond Q1 - f*IQR or Q3 + f*IQR of its training column")
    outlier_share: float = doc(0.1, "a row is an outlier when more than this share of its values are extreme")
    permutation_repeats: int = doc(5, "shuffles per feature for permutation importance on the test split")
    seed: int = doc(0, "seeds the models and the CV fold shuffles")
    n_jobs: int = doc(2, "grid-search fits run in parallel processes; each model is single-threaded (on a few "
                         "hundred rows threads cost more than they save)")


# ----------------------------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model: how to build it, its small grid (and why), and how it is saved."""

    name: str
    title: str
    family: str  # "sklearn", "xgboost", "lightgbm" or "catboost": decides the saved format
    make: Callable[[ClassifyConfig], Any]
    grid: Callable[[int, int], dict]  # (n_features, rows per search fit) -> {param: values}
    why: str


def _xgboost(cfg):
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=200, subsample=0.8, colsample_bytree=0.5, tree_method="hist",
                         n_jobs=1, random_state=cfg.seed, verbosity=0)


def _lightgbm(cfg):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=200, min_child_samples=5, subsample=0.8, subsample_freq=1,
                          colsample_bytree=0.5, importance_type="gain", n_jobs=1,
                          random_state=cfg.seed, verbose=-1)


def _catboost(cfg):
    from catboost import CatBoostClassifier

    return CatBoostClassifier(iterations=200, thread_count=1, random_seed=cfg.seed, verbose=0,
                              allow_writing_files=False)


def _svm(cfg):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", random_state=cfg.seed)


def _mlp(cfg):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(solver="lbfgs", max_iter=1000, random_state=cfg.seed)


def _logreg(cfg):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000)


def _knn(cfg):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(weights="distance", algorithm="brute")


MODEL_SPECS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("xgboost", "XGBoost", "xgboost", _xgboost,
              lambda d, n: {"max_depth": [2, 4], "learning_rate": [0.05, 0.2]},
              "200 trees on 80 % of rows and 50 % of columns; shallow vs deeper trees x slow vs fast learning"),
    ModelSpec("lightgbm", "LightGBM", "lightgbm", _lightgbm,
              lambda d, n: {"num_leaves": [4, 15], "learning_rate": [0.05, 0.2]},
              "200 trees, min 5 rows per leaf (small data); small vs larger trees x slow vs fast learning"),
    ModelSpec("catboost", "CatBoost", "catboost", _catboost,
              lambda d, n: {"depth": [3, 5], "learning_rate": [0.05, 0.2]},
              "200 symmetric (oblivious) trees; shallow vs medium depth x slow vs fast learning (depth 6+ costs 3x)"),
    ModelSpec("svm", "SVM (RBF)", "sklearn", _svm,
              lambda d, n: {"C": [1.0, 10.0, 100.0], "gamma": [0.3 / d, 1.0 / d]},
              "soft vs hard margin x wide vs default kernel (1/d is sklearn's 'scale' on standardised data)"),
    ModelSpec("mlp", "MLP", "sklearn", _mlp,
              lambda d, n: {"hidden_layer_sizes": [(64,), (256,)], "alpha": [0.01, 1.0]},
              "one hidden layer, L-BFGS (best for small data); narrow vs wide x weak vs strong L2"),
    ModelSpec("logreg", "Logistic regression", "sklearn", _logreg,
              lambda d, n: {"C": [0.01, 0.1, 1.0, 10.0]},
              "L2 strength from strong to weak"),
    ModelSpec("knn", "k-NN", "sklearn", _knn,
              lambda d, n: {"n_neighbors": [k for k in (3, 7, 15) if k <= n] or [max(1, n)],
                            "metric": ["euclidean", "cosine"]},
              "distance-weighted votes; few vs many neighbours (at most the rows a fit sees) x Euclidean vs cosine"),
)}


def predict_classes(pipeline, x: np.ndarray) -> np.ndarray:
    """Class indices, np.ndarray [shape=(n,), dtype=int] (CatBoost answers with a column; this flattens it)."""
    return np.asarray(pipeline.predict(x)).reshape(-1).astype(int)


def single_threaded():
    """Limit BLAS / OpenMP to one thread: on matrices this small, threads only contend with the parallel fits.

    threadpoolctl limits only libraries already loaded, so the ones the models load lazily (scipy's own BLAS
    behind L-BFGS, the boosters' OpenMP) are imported first.
    """
    import catboost  # noqa: F401
    import lightgbm  # noqa: F401
    import scipy.optimize  # noqa: F401
    import sklearn.neural_network  # noqa: F401
    import xgboost  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def make_pipeline(spec: ModelSpec, cfg: ClassifyConfig):
    """StandardScaler + the model, the unit every grid search, CV fold and saved model uses."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("model", spec.make(cfg))])


# ---------------------------------------------------------------------------------------- data and split


def split_path(dataset: str, *, test_size: float, seed: int) -> Path:
    return dataset_dir(dataset) / "splits" / f"test_seed{seed}_size{test_size:g}.json"


def stratified_test_mask(labels: np.ndarray, *, test_size: float, seed: int) -> np.ndarray:
    """Pick ``test_size`` of each label (at least one, never all; none from a singleton), seeded.

    Parameters
    ----------
    labels : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=bool]
        True for test rows.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels == label)
        n_test = min(len(rows) - 1, max(1, int(round(test_size * len(rows))))) if len(rows) >= 2 else 0
        mask[rng.permutation(rows)[:n_test]] = True
    return mask


def fixed_test_split(dataset: str, track_ids, labels, *, test_size: float, seed: int) -> np.ndarray:
    """The dataset's test split for these labelled tracks: stored on first use, reused afterwards.

    Tracks the stored split has not seen (added to the dataset later) are split among themselves the same way
    and appended, so a track once in the test split stays there.

    Parameters
    ----------
    dataset : str
    track_ids : sequence of str [shape=(n,)]
    labels : sequence of str [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=bool]
        True for test tracks.
    """
    if not 0.0 < test_size < 1.0:
        raise ClassifyError(f"test_size={test_size}: use a share between 0 and 1, e.g. 0.25")
    track_ids, labels = np.asarray(track_ids, dtype=object), np.asarray(labels, dtype=object)
    path = split_path(dataset, test_size=test_size, seed=seed)
    stored = json.loads(path.read_text()) if path.exists() else {"test": [], "train": []}
    known = set(stored["test"]) | set(stored["train"])
    new = np.array([t not in known for t in track_ids], dtype=bool)
    if new.any():
        picked = stratified_test_mask(labels[new], test_size=test_size, seed=seed + len(known))
        stored["test"] += list(track_ids[new][picked])
        stored["train"] += list(track_ids[new][~picked])
        atomic_write_json(path, {**stored, "dataset": dataset, "test_size": test_size, "seed": seed,
                                 "stratified_by": "label", "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return np.isin(track_ids, list(stored["test"]))


@dataclasses.dataclass
class Prepared:
    """One input, ready to fit: rows with a label and a complete input, labels encoded 0..k-1."""

    input: str
    x: np.ndarray  # [shape=(n, d), dtype=float64]
    y: np.ndarray  # [shape=(n,), dtype=int]
    track_ids: np.ndarray  # [shape=(n,)]
    feature_names: list[str]
    classes: list[str]
    test: np.ndarray  # [shape=(n,), dtype=bool]
    warnings: list[str]
    dropped_classes: dict[str, int]


def prepare_input(source: Source, input: str, cfg: ClassifyConfig) -> Prepared:
    """Rows of ``input`` that have a label and no missing value; rare classes left out (named); split marked."""
    labelled = source.tracks["label"].notna().to_numpy()
    if not labelled.any():
        raise ClassifyError(f"{source.title}: no track has a label, so there is nothing to classify")
    matrix = source.matrix(input)
    bad = [c for c in matrix.columns if np.isinf(matrix[c].to_numpy()).any()]
    if bad:
        raise ClassifyError(f"{source.title}, input {input!r}: infinite values in {', '.join(bad[:5])}")
    complete = matrix.notna().all(axis=1).to_numpy()
    notes = []
    if (labelled & ~complete).any():
        notes.append(f"{input}: {int((labelled & ~complete).sum())} labelled track(s) have no {input} values, left out")
    ids = source.tracks["track_id"].to_numpy(dtype=object)
    labels = source.tracks["label"].astype(object).to_numpy()
    test_all = fixed_test_split(source.dataset, ids[labelled], labels[labelled], test_size=cfg.test_size,
                                seed=cfg.split_seed)
    test = np.zeros(len(ids), dtype=bool)
    test[labelled] = test_all
    keep = labelled & complete
    counts = pd.Series(labels[keep]).value_counts()
    rare = {str(k): int(v) for k, v in counts.items() if v < cfg.cv_folds}
    for label, n in rare.items():
        notes.append(f"class {label!r} has {n} track(s), fewer than the {cfg.cv_folds} CV folds: left out")
    classes = sorted(str(k) for k in counts.index if str(k) not in rare)
    if len(classes) < 2:
        sizes = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise ClassifyError(f"{source.title}, input {input!r}: fewer than two classes have at least {cfg.cv_folds} "
                            f"tracks ({sizes}); lower --cv-folds or add labelled tracks")
    keep &= np.isin(labels, classes)
    y = np.searchsorted(np.array(classes, dtype=object), labels[keep])
    return Prepared(input=input, x=matrix[keep].to_numpy(np.float64), y=y.astype(int), track_ids=ids[keep],
                    feature_names=list(matrix.columns), classes=classes, test=test[keep], warnings=notes,
                    dropped_classes=rare)


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


# -------------------------------------------------------------------------------------------- fitting


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
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                                 precision_recall_fscore_support)

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
    mean, std = permutation_importance(lambda rows: predict_classes(pipeline, rows), x_test, y_test, repeats=cfg.permutation_repeats,
                                       seed=cfg.seed)
    own = model_importances(pipeline, len(names))
    table = pd.DataFrame({"feature": names, "model_importance": own if own is not None else np.nan,
                          "permutation_mean": mean, "permutation_std": std})
    return table.sort_values(["permutation_mean", "model_importance"], ascending=False, ignore_index=True)


# ------------------------------------------------------------------------------------------ saved models

# Types that skops does not trust by default but that our own scikit-learn pipelines contain.
SKOPS_ALLOWED = frozenset({
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, np.ndarray [shape=(n, k)] -> [shape=(n, k)], each row summing to 1."""
    scores = np.asarray(scores, dtype=np.float64)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _two_columns(proba) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:  # a binary booster gives P(class 1)
        proba = np.column_stack([1 - proba, proba])
    return proba


class Predictor(Protocol):
    """A loaded model on raw (unscaled) rows ``x`` [shape=(n, d)]."""

    def predict_index(self, x: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class _PipelinePredictor:
    """A scikit-learn pipeline (its own scaler inside)."""

    pipeline: Any
    n_classes: int

    def predict_index(self, x: np.ndarray) -> np.ndarray:
        return predict_classes(self.pipeline, x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The model's probabilities; an SVM without ``probability=True`` has none, so the softmax of its
        one-vs-rest decision values (the pairwise votes plus a confidence below 1/3) stands in for them."""
        if hasattr(self.pipeline, "predict_proba"):
            scores = self.pipeline.predict_proba(x)
        else:
            decision = np.asarray(self.pipeline.decision_function(x), dtype=np.float64)
            scores = softmax(np.column_stack([-decision, decision]) if decision.ndim == 1 else decision)
        out = np.zeros((len(x), self.n_classes))
        out[:, np.asarray(self.pipeline.classes_, dtype=int)] = scores  # a class absent from training gets 0
        return out


@dataclasses.dataclass(frozen=True)
class _BoosterPredictor:
    """A booster behind the saved scaler; classes are the argmax of its probabilities, as the booster predicts."""

    mean: np.ndarray
    scale: np.ndarray
    proba: Callable[[np.ndarray], np.ndarray]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _two_columns(self.proba((x - self.mean) / self.scale))

    def predict_index(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1).astype(int)


class ModelFamily:
    """How one family of models is saved and loaded, in a format that loads without unpickling code."""

    name: str
    file: str

    def save(self, pipeline, target: Path) -> dict:
        """Write the model to ``target``; returns what ``meta.json`` must carry besides."""
        raise NotImplementedError

    def load(self, path: Path, meta: dict) -> Predictor:
        raise NotImplementedError


class SklearnFamily(ModelFamily):
    """The whole pipeline through skops, loading only the types on the allow-list."""

    name, file = "sklearn", "model.skops"

    def save(self, pipeline, target: Path) -> dict:
        import skops.io as sio

        sio.dump(pipeline, target)
        return {}

    def load(self, path: Path, meta: dict) -> Predictor:
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=path)
        unexpected = sorted(set(untrusted) - SKOPS_ALLOWED)
        if unexpected:
            raise ClassifyError(f"{path}: refusing to load unexpected types {', '.join(unexpected)}")
        return _PipelinePredictor(sio.load(path, trusted=untrusted), len(meta["classes"]))


class BoosterFamily(ModelFamily):
    """A booster in its library's native format; the scaler's mean and scale go to ``meta.json``."""

    def save(self, pipeline, target: Path) -> dict:
        scaler = pipeline.named_steps["scale"]
        self.save_model(pipeline.named_steps["model"], target)
        return {"scaler": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}}

    def load(self, path: Path, meta: dict) -> Predictor:
        mean, scale = (np.asarray(meta["scaler"][k], dtype=np.float64) for k in ("mean", "scale"))
        return _BoosterPredictor(mean, scale, self.load_proba(path))

    def save_model(self, model, target: Path) -> None:
        raise NotImplementedError

    def load_proba(self, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        """The loaded booster's probability function on scaled rows."""
        raise NotImplementedError


class XGBoostFamily(BoosterFamily):
    name, file = "xgboost", "model.ubj"

    def save_model(self, model, target: Path) -> None:
        model.save_model(target)

    def load_proba(self, path: Path):
        from xgboost import XGBClassifier

        model = XGBClassifier()
        model.load_model(path)
        return model.predict_proba


class LightGBMFamily(BoosterFamily):
    name, file = "lightgbm", "model.txt"

    def save_model(self, model, target: Path) -> None:
        model.booster_.save_model(str(target))

    def load_proba(self, path: Path):
        import lightgbm

        return lightgbm.Booster(model_file=str(path)).predict


class CatBoostFamily(BoosterFamily):
    name, file = "catboost", "model.cbm"

    def save_model(self, model, target: Path) -> None:
        model.save_model(str(target), format="cbm")

    def load_proba(self, path: Path):
        from catboost import CatBoostClassifier

        model = CatBoostClassifier()
        model.load_model(str(path), format="cbm")
        return model.predict_proba


FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (SklearnFamily(), XGBoostFamily(), LightGBMFamily(),
                                                        CatBoostFamily())}
MODEL_FILES = {name: family.file for name, family in FAMILIES.items()}


def save_classifier(pipeline, family: str, folder: Path, *, feature_names: list[str], classes: list[str]) -> None:
    """Write ``meta.json`` and the model in its family's format (see :class:`ModelFamily`)."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = FAMILIES[family]
    extra = kind.save(pipeline, folder / kind.file)
    atomic_write_json(folder / "meta.json", {"family": kind.name, "file": kind.file, "classes": classes,
                                             "feature_names": feature_names, **extra})


@dataclasses.dataclass(frozen=True)
class SavedClassifier:
    """A classifier loaded from its folder: ``predict(x)`` gives class names, ``predict_index(x)`` indices and
    ``predict_proba(x)`` one probability per class, in ``classes`` order."""

    meta: dict
    predictor: Predictor

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def feature_names(self) -> list[str]:
        return self.meta["feature_names"]

    def _checked(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ClassifyError(f"expected {len(self.feature_names)} columns, got shape {x.shape}")
        return x

    def predict_index(self, x: np.ndarray) -> np.ndarray:
        """Class indices, np.ndarray [shape=(n,), dtype=int], for ``x`` [shape=(n, d)] (raw, unscaled)."""
        return self.predictor.predict_index(self._checked(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class names, np.ndarray [shape=(n,), dtype=object]."""
        return np.asarray(self.classes, dtype=object)[self.predict_index(x)]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of each class, np.ndarray [shape=(n, n_classes)], columns in ``classes`` order, rows
        summing to 1. For an SVM (trained without Platt scaling) these are the softmax of its one-vs-rest
        decision values: a ranking with a confidence, not calibrated probabilities."""
        return self.predictor.predict_proba(self._checked(x))


def load_classifier(folder: str | Path) -> SavedClassifier:
    """Load a model saved by :func:`save_classifier`, refusing skops files with unexpected types."""
    folder = Path(folder)
    if not (folder / "meta.json").exists():
        raise ClassifyError(f"{folder}: no saved classifier here (meta.json missing)")
    meta = json.loads((folder / "meta.json").read_text())
    family = FAMILIES.get(meta.get("family"))
    if family is None:
        raise ClassifyError(f"{folder}: unknown model family {meta.get('family')!r}")
    return SavedClassifier(meta, family.load(folder / meta["file"], meta))


# ------------------------------------------------------------------------------------------ the job


def results_dir(source: Source) -> Path:
    return source.path / "classifiers"


def result_name(input: str, model: str) -> str:
    return f"{input}__{model}"


def fit_and_evaluate(spec: ModelSpec, data: Prepared, cfg: ClassifyConfig, folder: Path,
                     step: Callable[[str], None] = lambda message: None) -> dict:
    """Grid search on the training part, score on the test split, CV, importances, save: one result folder.

    Returns
    -------
    dict
        The summary row (also in ``folder/metrics.json``).
    """
    train, test = ~data.test, data.test
    started = time.perf_counter()
    search = grid_search(spec, data.x[train], data.y[train], cfg)
    pipeline, best = search.pipeline, search.best_params
    train_seconds = time.perf_counter() - started
    predicted = predict_classes(pipeline, data.x[test])
    metrics, confusion = score_predictions(data.y[test], predicted, data.classes)
    step("cross-validation")
    started = time.perf_counter()
    cv = cross_validated_accuracy(spec, data.x, data.y, cfg, best)
    cv_seconds = time.perf_counter() - started
    step("importances")
    importances = importance_table(pipeline, data.x[test], data.y[test], data.feature_names, cfg)
    n_train = int(train.sum())
    row = {"input": data.input, "model": spec.name, "title": spec.title, "test_accuracy": metrics["accuracy"],
           "balanced_accuracy": metrics["balanced_accuracy"], "macro_f1": metrics["macro_f1"],
           "cv_mean": float(cv.mean()), "cv_std": float(cv.std()), "cv_nested": cfg.nested_cv,
           "train_seconds": round(train_seconds, 3),
           "n_train": n_train, "n_test": int(test.sum()), "n_features": len(data.feature_names),
           "best_params": json.dumps(best, default=str)}
    record = {
        **row, "best_params": best, "classes": data.classes, "test": metrics,
        "cv": {"folds": cfg.cv_folds, "scores": cv.tolist(), "mean": row["cv_mean"], "std": row["cv_std"],
               "nested": cfg.nested_cv, "seconds": round(cv_seconds, 3)},
        "search": {"grid": search.grid, "why": spec.why, "folds": search.folds,
                   "best_cv_accuracy_on_training_part": search.best_score},
        "config": dataclasses.asdict(cfg), "warnings": data.warnings, "dropped_classes": data.dropped_classes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    def write(work: Path) -> None:
        atomic_write_json(work / "confusion.json", {"classes": data.classes, "matrix": confusion.tolist(),
                                                    "rows": "true label", "columns": "predicted label"})
        atomic_write_parquet(work / "importances.parquet", importances)
        atomic_write_parquet(work / "predictions.parquet", pd.DataFrame({
            "track_id": data.track_ids[test], "label": np.asarray(data.classes, dtype=object)[data.y[test]],
            "predicted": np.asarray(data.classes, dtype=object)[predicted]}))
        save_classifier(pipeline, spec.family, work / "model", feature_names=data.feature_names, classes=data.classes)
        atomic_write_json(work / "metrics.json", record)

    write_folder(folder, write)
    return row


SUMMARY_COLUMNS = ("input", "model", "title", "test_accuracy", "balanced_accuracy", "macro_f1", "cv_mean", "cv_std",
                   "cv_nested", "train_seconds", "n_train", "n_test", "n_features", "best_params")


def classifier_summary(folder: str | Path) -> pd.DataFrame:
    """One row per complete result folder under ``folder`` (a source's ``classifiers/``), best CV first."""
    rows = []
    for metrics in sorted(Path(folder).glob("*__*/metrics.json")):
        record = json.loads(metrics.read_text())
        record["cv_nested"] = record["cv"]["nested"]
        rows.append({k: (json.dumps(record[k]) if k == "best_params" else record.get(k)) for k in SUMMARY_COLUMNS})
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["cv_mean", "test_accuracy"], ascending=False, ignore_index=True)


def load_result(folder: str | Path, input: str, model: str) -> dict:
    """metrics, confusion and importances of one input x model result."""
    path = Path(folder) / result_name(input, model)
    if not (path / "metrics.json").exists():
        raise ClassifyError(f"no classifier result {result_name(input, model)} in {folder}")
    return {"metrics": json.loads((path / "metrics.json").read_text()),
            "confusion": json.loads((path / "confusion.json").read_text()),
            "importances": pd.read_parquet(path / "importances.parquet"), "path": path}


def row_normalised(matrix) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (the recall of each true class), [shape=(k, k)]."""
    matrix = np.asarray(matrix, dtype=np.float64)
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def top_importances(table: pd.DataFrame, *, by: str = "permutation_mean", n: int = 20) -> pd.DataFrame:
    """The ``n`` features with the largest ``by`` importance, largest first (rows without a value dropped)."""
    return table.dropna(subset=[by]).sort_values(by, ascending=False).head(n).reset_index(drop=True)


@dataclasses.dataclass
class ClassifyReport:
    results_dir: Path
    summary: pd.DataFrame
    warnings: list[str]
    seconds: float


def _check_config(cfg: ClassifyConfig, available: list[str]) -> list[str]:
    unknown = [m for m in cfg.models if m not in MODEL_SPECS]
    if unknown or not cfg.models:
        raise ClassifyError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODEL_NAMES)}")
    inputs = list(cfg.input) or available
    wrong = [i for i in inputs if i not in INPUTS]
    if wrong:
        raise ClassifyError(f"unknown input(s) {', '.join(wrong)}; choose from {', '.join(INPUTS)}")
    missing = [i for i in inputs if i not in available]
    if missing:
        raise ClassifyError(f"this source has no {', '.join(missing)} input (it has: {', '.join(available) or 'none'})")
    if cfg.cv_folds < 2 or cfg.search_folds < 2:
        raise ClassifyError("cv_folds and search_folds must be at least 2")
    return inputs


def run_classifiers(source: Source, *, cfg: ClassifyConfig = ClassifyConfig(), progress: Progress = None) -> ClassifyReport:
    """Train and evaluate every requested model on every requested input of ``source``.

    Parameters
    ----------
    source : Source
        From :func:`core.feature_table.load_source`.
    cfg : ClassifyConfig
    progress : callable(done, total, message) or None
        Told 3 times per input x model (grid search, cross-validation, importances).

    Returns
    -------
    ClassifyReport
        Where the results are, the summary table (best CV first) and every warning.
    """
    from sklearn.exceptions import ConvergenceWarning

    with single_threaded(), warnings.catch_warnings():
        # an MLP with strong L2 may stop at max_iter; the grid search judges the result, the log need not
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _run_classifiers(source, cfg, progress)


def _run_classifiers(source: Source, cfg: ClassifyConfig, progress: Progress) -> ClassifyReport:
    started = time.perf_counter()
    inputs = _check_config(cfg, source.available_inputs())
    prepared = [prepare_input(source, i, cfg) for i in inputs]
    notes = list(source.notes) + [w for p in prepared for w in p.warnings]
    out = results_dir(source)
    out.mkdir(parents=True, exist_ok=True)
    total, done = 3 * len(inputs) * len(cfg.models), 0
    tell = progress or (lambda d, t, m: None)

    for data in prepared:
        for name in cfg.models:
            label = f"{data.input} / {name}"
            tell(done, total, f"{label}: grid search")

            def step(stage: str, label=label) -> None:
                nonlocal done
                done += 1
                tell(done, total, f"{label}: {stage}")

            fit_and_evaluate(MODEL_SPECS[name], data, cfg, out / result_name(data.input, name), step=step)
            done += 1
            tell(done, total, f"{label}: done")
    summary = classifier_summary(out)
    atomic_write_parquet(out / "summary.parquet", summary)
    atomic_write_json(out / "job.json", {"source": source.title, "dataset": source.dataset, "inputs": inputs,
                                         "config": dataclasses.asdict(cfg), "warnings": notes,
                                         "seconds": round(time.perf_counter() - started, 2),
                                         "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return ClassifyReport(results_dir=out, summary=summary, warnings=notes, seconds=time.perf_counter() - started)


def ranked(summary: pd.DataFrame) -> pd.DataFrame:
    """Results best first: by CV mean (CV, not the test split, picks: no tuning on test); test accuracy only
    breaks exact ties."""
    return summary.sort_values(["cv_mean", "test_accuracy"], ascending=False)


def best_per_input(summary: pd.DataFrame) -> pd.DataFrame:
    """The model with the best CV mean for each input (the rule of :func:`ranked`)."""
    if summary.empty:
        return summary
    return ranked(summary).groupby("input", sort=False).head(1).reset_index(drop=True)


@dataclasses.dataclass(frozen=True)
class BestClassifier:
    """The best saved classifier of a source, ready to predict (what the API and the bot use).

    ``classifier.predict_proba(x)`` takes rows [shape=(n, len(feature_names))] whose columns are
    ``feature_names`` (audio features, ``emb_000``.. embedding dimensions, or both) and gives
    [shape=(n, len(classes))].
    """

    input: str
    model: str
    title: str
    feature_names: list[str]
    classes: list[str]
    cv_mean: float
    cv_std: float
    test_accuracy: float
    path: Path
    classifier: SavedClassifier


def best_saved_classifier(folder: str | Path) -> Optional[BestClassifier]:
    """The result with the best CV mean over every input and model under ``folder`` (a source's
    ``classifiers/``) that has a saved model, loaded; None when there is none.

    Ranked as :func:`best_per_input` ranks (:func:`ranked`), never by the test split.
    """
    folder = Path(folder)
    for row in ranked(classifier_summary(folder)).itertuples(index=False):
        path = folder / result_name(row.input, row.model) / "model"
        if (path / "meta.json").exists():
            saved = load_classifier(path)
            return BestClassifier(input=row.input, model=row.model, title=row.title,
                                  feature_names=saved.feature_names, classes=saved.classes,
                                  cv_mean=float(row.cv_mean), cv_std=float(row.cv_std),
                                  test_accuracy=float(row.test_accuracy), path=path, classifier=saved)
    return None
