"""The model registry: each model, how it is built, its small grid (and why), and its saved format's family."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, get_args

import numpy as np

from core.analysis.sources import InputName
from core.base.config import MAX_SEED, MAX_THREADS, check_bounds, doc

ModelName = Literal["xgboost", "lightgbm", "catboost", "svm", "mlp", "logreg", "knn"]
MODEL_NAMES: tuple[ModelName, ...] = get_args(ModelName)
FamilyName = Literal["sklearn", "xgboost", "lightgbm", "catboost"]  # decides the saved format (core.analysis.classify.persist)


@dataclasses.dataclass(frozen=True)
class ClassifyConfig:
    """One classifier job: which inputs and models, the split, the folds and the outlier rule."""

    input: tuple[InputName, ...] = doc((), "features, embeddings and/or both; empty = every input the source has")
    models: tuple[ModelName, ...] = doc(MODEL_NAMES, "models to train (see MODEL_SPECS for each grid)")
    test_size: float = doc(0.25, "share of each label held out as the fixed test split (50 of 200 tracks)",
                           above=0.0, at_most=0.9)
    split_seed: int = doc(0, "seed of the test split; one split per dataset and seed, stored and reused",
                         at_least=0, at_most=MAX_SEED)
    cv_folds: int = doc(5, "stratified folds of the reported CV accuracy; smaller classes are left out, named",
                       at_least=2, at_most=100)
    search_folds: int = doc(5, "stratified folds of the grid search on the training part", at_least=2,
                           at_most=100)
    nested_cv: bool = doc(False, "re-run the grid search inside every CV fold: unbiased CV, ~6x the time")
    outliers: bool = doc(False, "drop training rows flagged by the IQR rule (fitted on training rows only)")
    iqr_factor: float = doc(3.0, "a value is extreme beyond Q1 - f*IQR or Q3 + f*IQR of its training column",
                            above=0.0, at_most=100.0)
    outlier_share: float = doc(0.1, "a row is an outlier when more than this share of its values are extreme",
                               at_least=0.0, at_most=1.0)
    permutation_repeats: int = doc(5, "shuffles per feature for permutation importance on the test split",
                                  at_least=1, at_most=1000)
    seed: int = doc(0, "seeds the models and the CV fold shuffles", at_least=0, at_most=MAX_SEED)
    n_jobs: int = doc(2, "grid-search fits run in parallel processes; each model is single-threaded (on a few "
                         "hundred rows threads cost more than they save)", at_least=1, at_most=MAX_THREADS)

    def __post_init__(self):
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model: how to build it, its small grid (and why), and how it is saved."""

    name: ModelName
    title: str
    family: FamilyName
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
