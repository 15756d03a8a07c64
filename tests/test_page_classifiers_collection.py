"""The Classifiers page with a collection as the label source: "collection vs the rest", with its CV accuracy,
confusion matrix and importances, kept apart from the genre classifiers."""
from __future__ import annotations

import shutil

import numpy as np

from core.analysis import collections as col
from core.runs.folder import load_run
from tests.pagetest import RUN_KEY, after_the_job, charts, open_page, text_of


def test_a_collection_is_a_label_source_for_a_classifier(tiny_run_id):
    run = load_run(tiny_run_id)
    for sub in ("classifiers", "collections"):
        shutil.rmtree(run.path / sub, ignore_errors=True)
    col.collections_path("tiny").unlink(missing_ok=True)
    saved = col.save_selection(run, "Piano set", np.flatnonzero(run.tracks["label"] == "piano"))
    at = open_page("pages/classifiers.py", timeout=180, **{RUN_KEY: tiny_run_id})
    labels = at.selectbox(key="classify_labels")
    assert labels.options == ["the tracks' labels (genre)", "collection “Piano set” vs the rest"]
    labels.set_value(saved.collection_id).run()
    text = text_of(at)
    assert "4 tracks in the collection, the other 8 are the rest" in text and "accuracy of 0.667" in text
    assert "No classifiers" in text
    at.multiselect(key="classify_inputs").set_value(["embeddings"])
    at.multiselect(key="classify_models").set_value(["logreg"])
    at.number_input(key="classify_folds").set_value(3)
    after_the_job(at.button[0].click().run())  # classifiers train in a background job (core.jobs)
    assert not at.exception, [e.message for e in at.exception]
    assert "Trained 1 classifiers" in at.success[0].value
    table = at.dataframe[0].value
    assert len(table) == 1 and "±" in table["CV accuracy"][0]
    confusion, importance = charts(at)
    assert confusion["data"][0]["x"] == [col.IN_COLLECTION, col.THE_REST]
    assert importance["data"][0]["type"] == "bar"
    assert (run.path / "collections" / saved.collection_id / "classifiers" / "summary.parquet").exists()
    assert not (run.path / "classifiers").exists()  # the genre classifiers are untouched
