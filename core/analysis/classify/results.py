"""Reading a source's ``classifiers/`` folder: the summary table, one result, the best model (by CV, never by
the test split) and the best saved classifier, loaded, for predictions."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis.classify.persist import SavedClassifier, load_classifier
from core.analysis.config import InputName
from core.base.errors import ClassifyError


def result_name(input: InputName, model: str) -> str:
    return f"{input}__{model}"


SUMMARY_COLUMNS = ("input", "model", "title", "test_accuracy", "balanced_accuracy", "macro_f1", "cv_mean", "cv_std",
                   "cv_nested", "train_seconds", "n_train", "n_test", "n_features", "best_params")


def classifier_summary(folder: str | Path) -> pd.DataFrame:
    """One row per complete result folder under ``folder`` (a source's ``classifiers/``), best CV first."""
    rows = []
    for metrics in sorted(Path(folder).glob("*__*/metrics.json")):
        record = json.loads(metrics.read_text())
        record["cv_nested"] = record["cv"]["nested"]
        rows.append({k: (json.dumps(record[k]) if k == "best_params" else record.get(k)) for k in SUMMARY_COLUMNS})
    return ranked(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))).reset_index(drop=True)


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

    input: InputName
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
