"""The Classifiers, Features and Clusters pages through Streamlit's AppTest, on the tiny run of the fixtures.

Classifiers and clusters are computed by background jobs (core.jobs): a test presses the button, sees the job's
progress, waits for the job's process to end and runs the page again, as the page's poll would."""
from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest

from core import jobs
from core.data.tables import import_feature_table
from core.runs.folder import load_run
from tests.conftest import clear_streamlit_caches
from tests.pagetest import RUN_KEY, after_the_job, atlas_args, charts, decode, text_of
from tests.pagetest import open_page as open_app_page


def open_page(page: str, **state):
    return open_app_page(page, timeout=180, **state)


@pytest.fixture
def fresh_run(tiny_run_id):
    """The tiny run without classifier or cluster results (other tests may have made some)."""
    path = load_run(tiny_run_id).path
    for sub in ("classifiers", "clusters"):
        shutil.rmtree(path / sub, ignore_errors=True)
    clear_streamlit_caches()  # what the pages cached of the results removed here
    return tiny_run_id


def test_classifiers_page_runs_the_classifiers_then_shows_them(fresh_run):
    at = open_page("pages/classifiers.py", **{RUN_KEY: fresh_run})
    assert "No classifiers" in text_of(at) and not at.get("plotly_chart")
    assert f"`python -m core classify --run {fresh_run}`" in text_of(at)  # a command that works as written
    at.multiselect(key="classify_models").set_value(["logreg", "knn"])
    at.number_input(key="classify_folds").set_value(3)
    after_the_job(at.button[0].click().run())
    assert not at.exception, [e.message for e in at.exception]
    assert at.success and "Trained 6 classifiers" in at.success[0].value

    table = at.dataframe[0].value
    assert len(table) == 6 and {"test accuracy", "CV accuracy", "macro-F1", "training (s)"} <= set(table.columns)
    assert all("±" in v for v in table["CV accuracy"])
    confusion, importance = charts(at)
    assert confusion["data"][0]["type"] == "heatmap" and importance["data"][0]["type"] == "bar"
    assert confusion["data"][0]["x"] == ["electronic", "piano", "strings"]
    counts = decode(confusion["data"][0]["z"])
    assert counts.shape == (3, 3) and counts.sum() == 3  # one test track per style

    at.segmented_control(key="confusion_mode").set_value("row-normalised").run()
    assert not at.exception
    shares = decode(charts(at)[0]["data"][0]["z"])
    assert np.allclose(shares.sum(axis=1), 1.0) and np.allclose(shares * counts.sum(axis=1, keepdims=True), counts)
    at.selectbox(key="classifier_pick").set_value(5).run()
    assert not at.exception and len(charts(at)) == 2


def test_classifiers_page_offers_imported_tables(fresh_run, tmp_path, rng):
    table = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30), "g": np.repeat(["x", "y", "z"], 10)})
    table.to_csv(tmp_path / "t.csv", index=False)
    import_feature_table(tmp_path / "t.csv", "page_table", label="g")
    at = open_page("pages/classifiers.py", **{RUN_KEY: fresh_run})
    source = at.selectbox(key="analysis_source")
    assert source.options[0] == f"run {fresh_run}" and "imported table page_table" in source.options
    source.set_value("dataset:page_table").run()
    assert not at.exception
    assert at.multiselect(key="classify_inputs").value == ["features"]
    at.multiselect(key="classify_models").set_value(["logreg"])
    after_the_job(at.button[0].click().run())
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.dataframe[0].value) == 1 and len(charts(at)) == 2


def test_features_page_draws_correlations_violins_and_scatter(tiny_run_id):
    at = open_page("pages/features.py", **{RUN_KEY: tiny_run_id})
    heatmap, violin, scatter = charts(at)
    assert heatmap["data"][0]["type"] == "heatmap"
    assert {t["type"] for t in violin["data"]} == {"violin"} and len(violin["data"]) == 3  # one per style
    assert {t["name"] for t in scatter["data"]} == {"electronic", "strings", "piano"}
    at.selectbox(key="violin_feature").set_value("tempo_bpm").run()
    at.selectbox(key="scatter_x").set_value("mfcc_2_mean").run()
    at.multiselect(key="corr_groups").set_value(["chroma"]).run()
    assert not at.exception
    heatmap = charts(at)[0]
    assert len(heatmap["data"][0]["x"]) == 24  # 12 chroma means + 12 spreads
    assert charts(at)[2]["layout"]["xaxis"]["title"]["text"] == "mfcc_2_mean"


def test_clusters_page_computes_then_shows_curves_profiles_and_map(fresh_run):
    at = open_page("pages/clusters.py", **{RUN_KEY: fresh_run})
    assert "No clusters" in text_of(at)
    assert f"`python -m core cluster --run {fresh_run} --method kmeans`" in text_of(at)  # a command that works
    at.slider(key="cluster_k_range").set_value((2, 5))
    after_the_job(at.button[0].click().run())
    assert not at.exception, [e.message for e in at.exception]
    assert "Clustered 3 input(s)" in at.success[0].value
    curves, mix, profile = charts(at)
    assert [t["name"] for t in curves["data"]] == ["inertia", "silhouette"]
    assert decode(curves["data"][1]["x"]).tolist() == [2, 3, 4, 5]
    assert {t["type"] for t in mix["data"]} == {"bar"} and profile["data"][0]["type"] == "heatmap"
    cluster_map = atlas_args(at, "cluster_atlas")  # the run's atlas map coloured by cluster, each named
    n_clusters = len(cluster_map["legend"])
    assert cluster_map["legend"] == [f"cluster {i + 1}" for i in range(n_clusters)]
    assert len(cluster_map["codes"]) == 12 and len(cluster_map["labels"]) == n_clusters
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["k (best silhouette)"] == str(n_clusters)
    chooser = at.segmented_control(key="cluster_input")
    assert chooser.options == ["audio features", "embeddings", "features + embeddings"]
    chooser.set_value("embeddings").run()
    assert not at.exception and len(charts(at)) == 3 and atlas_args(at, "cluster_atlas")["legend"]


def test_clusters_page_shows_the_input_just_computed(fresh_run):
    at = open_page("pages/clusters.py", **{RUN_KEY: fresh_run})
    at.slider(key="cluster_k_range").set_value((2, 3))
    at.multiselect(key="cluster_inputs").set_value(["features"])
    after_the_job(at.button[0].click().run())
    assert at.segmented_control(key="cluster_input").value == "features"
    at.multiselect(key="cluster_inputs").set_value(["embeddings"])
    after_the_job(next(b for b in at.button if b.label == "Compute clusters").click().run())
    assert not at.exception, [e.message for e in at.exception]
    assert at.segmented_control(key="cluster_input").value == "embeddings"  # not the older features result
    at.segmented_control(key="cluster_input").set_value("features").run()
    assert at.segmented_control(key="cluster_input").value == "features"  # the user's choice then holds


@pytest.mark.parametrize("page", ["pages/classifiers.py", "pages/features.py", "pages/clusters.py"])
def test_pages_explain_what_to_do_without_any_data(page, tmp_path, monkeypatch):
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    at = open_page(page)
    assert "no run and no imported feature table" in text_of(at) and not at.get("plotly_chart")


def test_clusters_page_hdbscan_cards_with_tags_and_central_tracks(fresh_run):
    from tests.test_tags import fake_dataset

    run = load_run(fresh_run)
    rng = np.random.default_rng(0)
    piano = (run.tracks["label"] == "piano").to_numpy()
    grams = {}
    for track_id, is_piano in zip(run.tracks["track_id"], piano):
        g = rng.uniform(0, 0.04, (2, 50)).astype(np.float32)
        g[:, 23] = 0.8 if is_piano else 0.1  # "instrumental"
        grams[track_id] = g
    fake_dataset("tiny", grams, max_patches=2)
    at = open_page("pages/clusters.py", **{RUN_KEY: fresh_run})
    at.segmented_control(key="cluster_method").set_value("hdbscan").run()
    assert "No clusters by HDBSCAN" in text_of(at)
    at.slider(key="cluster_min_size").set_value(3)
    at.radio(key="cluster_reduce").set_value("none")
    after_the_job(at.button[0].click().run())
    assert not at.exception, [e.message for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert {"Clusters", "Noise (in no cluster)", "Agreement with labels (ARI)"} <= set(metrics)
    assert at.dataframe[0].value["method"].tolist() == ["HDBSCAN (density, noise allowed)"]
    text = text_of(at)
    assert "tracks (" in text and "labels: " in text and "near the centre: " in text
    assert "instrumental" in text  # the piano cluster's characteristic tag
    assert len(at.get("audio")) >= 3


def test_a_reloaded_page_finds_the_running_job_shows_its_progress_and_cancels_it(tmp_path, rng):
    """A job started elsewhere (another session, or this one before a reload) is found by the page of its data."""
    table = pd.DataFrame(rng.normal(size=(3000, 12)), columns=[f"f{i}" for i in range(12)])
    table.assign(g=["x", "y"] * 1500).to_csv(tmp_path / "big.csv", index=False)
    import_feature_table(tmp_path / "big.csv", "page_big", label="g")
    job_id = jobs.start_analysis_job("cluster", features="page_big", config={"k_max": 30, "n_init": 100})
    deadline = time.monotonic() + 120
    while jobs.job_status(job_id)["done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)

    at = open_page("pages/clusters.py")
    at.selectbox(key="analysis_source").set_value("dataset:page_big").run()
    assert not at.exception, [e.message for e in at.exception]
    bar = at.get("progress")[0]
    assert "k=" in bar.proto.text and "/ 29)" in bar.proto.text
    assert at.button(key="cluster_form_kmeans_cancel")  # and the form cannot start a second job
    assert [b.disabled for b in at.get("form_submit_button")] == [True]
    assert "No clusters" not in text_of(at)  # the page stops below the progress: results are coming

    at.button(key="cluster_form_kmeans_cancel").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert jobs.job_status(job_id)["state"] == "cancelled"
    assert "cancelled" in at.warning[0].value and "No clusters" in text_of(at)
