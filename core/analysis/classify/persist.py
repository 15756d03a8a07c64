"""Saved classifiers in formats that load without unpickling code.

scikit-learn pipelines go to skops (loaded only with the types on an allow-list); a booster goes to its
library's native format (``.ubj``, LightGBM text, ``.cbm``) with the scaler's mean and scale in ``meta.json``.
Each family is a small class with ``save`` and ``load``; ``meta.json`` names the family that wrote the folder.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from core.analysis.classify.models import FamilyName, predict_classes
from core.base.errors import ClassifyError
from core.base.io import atomic_write_json

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


def save_classifier(pipeline, family: FamilyName, folder: Path, *, feature_names: list[str],
                    classes: list[str]) -> None:
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
