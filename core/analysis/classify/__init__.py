"""Genre classifiers on audio features, on a run's embeddings, or on both.

For every input x model: a scikit-learn pipeline (StandardScaler + model), a grid search with stratified folds
on the training part only, the fixed test split of the dataset for the headline figures, a stratified k-fold
cross-validated accuracy for a less noisy estimate, feature importances, and the fitted model saved in a format
that loads without unpickling code.

The package, one job per module::

    models      the registry (MODEL_SPECS: how each model is built, its grid and why) and ClassifyConfig
    split       the fixed per-dataset test split; one input made ready to fit (prepare_input)
    evaluate    IQR outlier rule, grid search, cross-validation, test-split metrics
    importance  the model's own and permutation importances
    persist     saving and loading models (one small class per family), predict / predict_proba
    results     reading results: summary, one result, best per input, best_saved_classifier
    job         run_classifiers (the CLI and the Classifiers page)

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
"""
from __future__ import annotations

from core.analysis.classify.evaluate import Search, cross_validated_accuracy, grid_search, iqr_inliers, score_predictions
from core.analysis.classify.importance import importance_table, model_importances, permutation_importance
from core.analysis.classify.job import ClassifyReport, fit_and_evaluate, results_dir, run_classifiers
from core.analysis.classify.models import (
    MODEL_NAMES,
    MODEL_SPECS,
    ClassifyConfig,
    FamilyName,
    ModelName,
    ModelSpec,
    make_pipeline,
    predict_classes,
    single_threaded,
)
from core.analysis.classify.persist import (
    FAMILIES,
    MODEL_FILES,
    SKOPS_ALLOWED,
    ModelFamily,
    SavedClassifier,
    load_classifier,
    save_classifier,
    softmax,
)
from core.analysis.classify.results import (
    SUMMARY_COLUMNS,
    BestClassifier,
    best_per_input,
    best_saved_classifier,
    classifier_summary,
    load_result,
    ranked,
    result_name,
    row_normalised,
    top_importances,
)
from core.analysis.classify.split import Prepared, fixed_test_split, prepare_input, split_path, stratified_test_mask

__all__ = [
    "MODEL_FILES", "MODEL_NAMES", "MODEL_SPECS", "FAMILIES", "SKOPS_ALLOWED", "SUMMARY_COLUMNS",
    "BestClassifier", "ClassifyConfig", "ClassifyReport", "FamilyName", "ModelFamily", "ModelName", "ModelSpec",
    "Prepared", "SavedClassifier", "Search",
    "best_per_input", "best_saved_classifier", "classifier_summary", "cross_validated_accuracy", "fit_and_evaluate",
    "fixed_test_split", "grid_search", "importance_table", "iqr_inliers", "load_classifier", "load_result",
    "make_pipeline", "model_importances", "permutation_importance", "predict_classes", "prepare_input", "ranked",
    "result_name", "results_dir", "row_normalised", "run_classifiers", "save_classifier", "score_predictions",
    "single_threaded", "softmax", "split_path", "stratified_test_mask", "top_importances",
]
