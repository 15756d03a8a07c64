"""Classifiers: how well genre is predicted from audio features, embeddings or both (results of core.analysis.classify)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import (
    IN_COLLECTION,
    MODEL_NAMES,
    MODEL_SPECS,
    THE_REST,
    all_collections,
    best_per_input,
    classifier_summary,
    collection_source,
    load_result,
    results_dir,
    row_normalised,
    top_importances,
)
from core.base import TimbreError
from ui import nav
from ui.figures import confusion_figure, importance_figure
from ui.forms import background_job_form, source_target
from ui.sources import INPUT_NAMES
from ui.widgets import pick_source


def settings(source) -> dict:
    """The classifier settings form's widgets; returns :class:`core.analysis.classify.ClassifyConfig` fields."""
    inputs = st.multiselect("Inputs", source.available_inputs(), default=source.available_inputs(),
                            format_func=INPUT_NAMES.get, key="classify_inputs")
    models = st.multiselect("Models", list(MODEL_NAMES), default=list(MODEL_NAMES),
                            format_func=lambda m: MODEL_SPECS[m].title, key="classify_models")
    left, right = st.columns(2)
    folds = int(left.number_input("CV folds", min_value=2, max_value=10, value=5,
                                  help="Classes with fewer tracks than folds are left out (and named).",
                                  key="classify_folds"))
    outliers = right.checkbox("Remove IQR outliers from the training part")
    nested = right.checkbox("Nested CV (grid search inside every fold; about 6x slower)")
    return {"input": tuple(inputs), "models": tuple(models), "cv_folds": folds, "search_folds": folds,
            "outliers": outliers, "nested_cv": nested}


def job_report(result: dict) -> None:
    """What a finished classifier job did (its status's result)."""
    for note in result["warnings"]:
        st.warning(note)
    st.success(f"Trained {result['n_results']} classifiers in {result['seconds'] / 60:.1f} min.")


def run_form(source, collection: str | None, has_results: bool) -> bool:
    """Settings and the button that trains the classifiers as a background job, with its progress, and what
    the finished job did; True while the job runs."""
    return background_job_form(kind="classify", target={**source_target(source), "collection": collection},
                               title="Run the classifiers", key="classify_form", submit="Run classifiers",
                               expanded=not has_results, settings=lambda: settings(source), report=job_report)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "input": summary["input"].map(INPUT_NAMES), "model": summary["title"],
        "test accuracy": summary["test_accuracy"],
        "CV accuracy": [f"{m:.3f} ± {s:.3f}" + (" (nested)" if n else "")
                        for m, s, n in zip(summary["cv_mean"], summary["cv_std"], summary["cv_nested"])],
        "macro-F1": summary["macro_f1"], "balanced accuracy": summary["balanced_accuracy"],
        "training (s)": summary["train_seconds"]})


def result_details(folder, row: pd.Series) -> None:
    result = load_result(folder, row["input"], row["model"])
    metrics = result["metrics"]
    a, b, c, d = st.columns(4)
    a.metric("Test accuracy", f"{metrics['test']['accuracy']:.3f}", help=f"{metrics['n_test']} test tracks")
    b.metric("CV accuracy", f"{metrics['cv']['mean']:.3f} ± {metrics['cv']['std']:.3f}",
             help=f"{metrics['cv']['folds']}-fold stratified" + (", nested" if metrics["cv"]["nested"] else ""))
    c.metric("Macro-F1", f"{metrics['test']['macro_f1']:.3f}")
    d.metric("Balanced accuracy", f"{metrics['test']['balanced_accuracy']:.3f}")

    left, right = st.columns(2)
    with left:
        st.subheader("Confusion matrix (test split)")
        mode = st.segmented_control("Values", ["counts", "row-normalised"], default="counts", key="confusion_mode")
        classes, counts = result["confusion"]["classes"], np.asarray(result["confusion"]["matrix"])
        normalised = mode == "row-normalised"
        st.plotly_chart(confusion_figure(classes, row_normalised(counts) if normalised else counts,
                                         normalised=normalised), key="confusion_chart")
    with right:
        st.subheader("Feature importances")
        table = result["importances"]
        kinds = {"permutation_mean": "permutation (test split)"}
        if table["model_importance"].notna().any():
            kinds["model_importance"] = "the model's own"
        by = st.segmented_control("Kind", list(kinds), format_func=kinds.get, default="permutation_mean",
                                  key="importance_kind") or "permutation_mean"
        n = (st.slider("Features shown", 5, min(50, len(table)), min(20, len(table)), key="importance_n")
             if len(table) > 5 else len(table))
        st.plotly_chart(importance_figure(top_importances(table, by=by, n=n), by=by), key="importance_chart")
    with st.expander("Per-class precision / recall / F1, hyper-parameters"):
        st.dataframe(pd.DataFrame(metrics["test"]["per_class"]), hide_index=True)
        st.code(json.dumps({"best": metrics["best_params"], "grid": metrics["search"]["grid"],
                            "why": metrics["search"]["why"]}, indent=1, default=str), language="json")
        for note in metrics.get("warnings", []):
            st.caption(note)


def label_source(source):
    """The "Labels" choice: the source's own labels, or a collection of its dataset against the rest of it
    (:func:`core.analysis.collections.collection_source`); returns the source relabelled accordingly and the
    chosen collection's id (None: the source's own labels)."""
    try:
        collections = {c.collection_id: c for c in all_collections(source.dataset)}
    except TimbreError:
        collections = {}
    if not collections:
        return source, None
    chosen = st.selectbox("Labels", [None, *collections], key="classify_labels",
                          format_func=lambda c: "the tracks' labels (genre)" if c is None else
                          f"collection “{collections[c].name}” vs the rest",
                          help="A collection (saved on the Map) as the class: what sets its tracks apart?")
    if chosen is None:
        return source, None
    try:
        relabelled = collection_source(source, collections[chosen])
    except TimbreError as error:
        st.error(str(error))
        st.stop()
    share = float((relabelled.tracks["label"] == THE_REST).mean())
    st.caption(f"{int((relabelled.tracks['label'] == IN_COLLECTION).sum())} tracks in the collection, "
               f"the other {int((relabelled.tracks['label'] == THE_REST).sum())} are the rest. Always answering "
               f"'the rest' would score an accuracy of {share:.3f}: compare the balanced accuracy and macro-F1.")
    return relabelled, chosen


nav.require_router(__file__)
st.title("Classifiers")
st.caption("Genre from audio features, from the run's embeddings, or from both. Hyper-parameters are chosen by "
           "grid search on the training part only; test figures come from the dataset's fixed test split.")
source, collection = label_source(pick_source())
if source.n_labelled == 0:
    st.info(f"{source.title} has no labels, so there is nothing to classify. Label the library (sub-folders or a "
            "manifest CSV with path,label) and ingest it again; the Clusters page works without labels.")
    st.stop()
folder = results_dir(source)
summary = classifier_summary(folder)
running = run_form(source, collection, has_results=not summary.empty)
summary = classifier_summary(folder)
if summary.empty:
    if running:
        st.stop()  # the job's progress is above
    st.info(f"No classifiers for {source.title} yet: choose inputs and models above and press **Run classifiers** "
            "(a few minutes for 200 tracks, in the background: the page may be reloaded or left meanwhile), or run "
            f"`python -m core classify {source.cli_flag}` in a terminal.")
    st.stop()

st.dataframe(summary_table(summary), hide_index=True, key="summary_table",
             column_config={c: st.column_config.NumberColumn(format="%.3f")
                            for c in ("test accuracy", "macro-F1", "balanced accuracy")})
best = best_per_input(summary)
st.caption("Best per input (by CV mean): " + "; ".join(
    f"{INPUT_NAMES[r.input]}: {r.title} (test {r.test_accuracy:.3f}, CV {r.cv_mean:.3f} ± {r.cv_std:.3f})"
    for r in best.itertuples()))
labels = [f"{INPUT_NAMES[i]} · {t}" for i, t in zip(summary["input"], summary["title"])]
chosen = st.selectbox("Classifier", range(len(summary)), format_func=labels.__getitem__, key="classifier_pick")
result_details(folder, summary.iloc[chosen])
