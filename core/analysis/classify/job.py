"""The classifier job (the CLI's ``classify`` and the Classifiers page): every requested model on every
requested input, one result folder each, then the summary."""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from core.analysis.classify import evaluate
from core.analysis.classify.importance import importance_table
from core.analysis.classify.models import MODEL_NAMES, MODEL_SPECS, ClassifyConfig, ModelSpec, predict_classes, single_threaded
from core.analysis.classify.persist import save_classifier
from core.analysis.classify.results import classifier_summary, result_name
from core.analysis.classify.split import Prepared, prepare_input
from core.analysis.config import INPUTS, InputName
from core.analysis.sources import Source
from core.base.errors import ClassifyError
from core.base.io import atomic_write_json, atomic_write_parquet, write_folder
from core.base.progress import Progress, or_silent


def results_dir(source: Source) -> Path:
    return source.path / "classifiers"


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
    search = evaluate.grid_search(spec, data.x[train], data.y[train], cfg)
    pipeline, best = search.pipeline, search.best_params
    train_seconds = time.perf_counter() - started
    predicted = predict_classes(pipeline, data.x[test])
    metrics, confusion = evaluate.score_predictions(data.y[test], predicted, data.classes)
    step("cross-validation")
    started = time.perf_counter()
    cv = evaluate.cross_validated_accuracy(spec, data.x, data.y, cfg, best)
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


@dataclasses.dataclass
class ClassifyReport:
    results_dir: Path
    summary: pd.DataFrame
    warnings: list[str]
    seconds: float


def _check_config(cfg: ClassifyConfig, available: list[InputName]) -> list[InputName]:
    unknown = [m for m in cfg.models if m not in MODEL_SPECS]
    if unknown or not cfg.models:
        raise ClassifyError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
                            f"choose from {', '.join(MODEL_NAMES)}")
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


def run_classifiers(source: Source, *, cfg: Optional[ClassifyConfig] = None,
                    progress: Optional[Progress] = None) -> ClassifyReport:
    """Train and evaluate every requested model on every requested input of ``source``.

    Parameters
    ----------
    source : Source
        From :func:`core.analysis.sources.load_source`.
    cfg : ClassifyConfig or None
        None: the defaults.
    progress : core.base.progress.Progress or None
        Told 3 times per input x model (grid search, cross-validation, importances); the last step of each
        also carries its ``cv_mean`` and ``test_accuracy``.

    Returns
    -------
    ClassifyReport
        Where the results are, the summary table (best CV first) and every warning.
    """
    from sklearn.exceptions import ConvergenceWarning

    with single_threaded(), warnings.catch_warnings():
        # an MLP with strong L2 may stop at max_iter; the grid search judges the result, the log need not
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _run_classifiers(source, cfg or ClassifyConfig(), or_silent(progress))


def _run_classifiers(source: Source, cfg: ClassifyConfig, tell: Progress) -> ClassifyReport:
    started = time.perf_counter()
    inputs = _check_config(cfg, source.available_inputs())
    prepared = [prepare_input(source, i, cfg) for i in inputs]
    notes = list(source.notes) + [w for p in prepared for w in p.warnings]
    out = results_dir(source)
    out.mkdir(parents=True, exist_ok=True)
    total, done = 3 * len(inputs) * len(cfg.models), 0

    for data in prepared:
        for name in cfg.models:
            label = f"{data.input} / {name}"
            tell(done, total, f"{label}: grid search")

            def step(stage: str, label=label) -> None:
                nonlocal done
                done += 1
                tell(done, total, f"{label}: {stage}")

            row = fit_and_evaluate(MODEL_SPECS[name], data, cfg, out / result_name(data.input, name), step=step)
            done += 1
            tell(done, total, f"{label}: done", cv_mean=row["cv_mean"], test_accuracy=row["test_accuracy"])
    summary = classifier_summary(out)
    atomic_write_parquet(out / "summary.parquet", summary)
    atomic_write_json(out / "job.json", {"source": source.title, "dataset": source.dataset, "inputs": inputs,
                                         "config": dataclasses.asdict(cfg), "warnings": notes,
                                         "seconds": round(time.perf_counter() - started, 2),
                                         "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return ClassifyReport(results_dir=out, summary=summary, warnings=notes, seconds=time.perf_counter() - started)
