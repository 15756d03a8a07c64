"""The model registry: each model, how it is built, its small grid (and why), and its saved format's family."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

import numpy as np

from core.analysis.config import MODEL_NAMES, ClassifyConfig, ModelName  # noqa: F401 (the registry's names, read from here)

FamilyName = Literal["sklearn", "xgboost", "lightgbm", "catboost"]  # decides the saved format (core.analysis.classify.persist)


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
