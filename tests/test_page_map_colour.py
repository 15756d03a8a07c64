"""The Map page's "Colour by" (label, a clustering, a musicnn tag), its ``tag:`` search, and computing tags as a
background job (core.jobs), through AppTest."""
from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest

from core import jobs
from core.analysis.clusters import ClusterConfig, run_clusters
from core.analysis.sources import source_from_run
from core.analysis.tags import TAGS
from core.runs.folder import load_run
from tests.conftest import clear_streamlit_caches
from tests.pagetest import RUN_KEY, charts, decode, open_page, text_of
from tests.test_tags import fake_dataset


@pytest.fixture(scope="module")
def tagged_run(tiny_run_id):
    """The tiny run with planted tags (its piano tracks are the most "jazz") and k-means clusters."""
    run = load_run(tiny_run_id)
    rng = np.random.default_rng(0)
    grams = {}
    for track_id, label in zip(run.tracks["track_id"], run.tracks["label"]):
        g = rng.uniform(0, 0.05, (2, 50)).astype(np.float32)
        g[:, TAGS.index("jazz")] = 0.9 if label == "piano" else 0.2
        grams[track_id] = g
    fake_dataset("tiny", grams, max_patches=2)
    run_clusters(source_from_run(tiny_run_id), cfg=ClusterConfig(input=("embeddings",), k_max=4, n_init=2))
    return tiny_run_id


@pytest.fixture(autouse=True)
def webrtc_without_server(monkeypatch):
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)


def test_colour_by_a_tag_a_cluster_and_back_to_label(tagged_run):
    at = open_page("pages/map.py", **{RUN_KEY: tagged_run})
    picker = at.selectbox(key=f"map_colour_{tagged_run}")
    assert picker.options[:2] == ["label", "cluster (k-means)"] and "tag: jazz" in picker.options
    assert "tags: jazz 0.9" in hovers(at)  # top-3 tags in every hover

    picker.set_value("tag:jazz").run()
    assert not at.exception, [e.message for e in at.exception]
    scale = next(t for t in charts(at)[0]["data"] if t["name"] == "tag: jazz")
    colours = decode(scale["marker"]["color"]).astype(float)
    labels = load_run(tagged_run).tracks["label"].to_numpy()[np.asarray(scale["customdata"], dtype=int)]
    assert len(colours) == 12 and colours[labels == "piano"].min() > colours[labels != "piano"].max()

    at.selectbox(key=f"map_colour_{tagged_run}").set_value("cluster:kmeans").run()
    names = [t["name"] for t in charts(at)[0]["data"]]
    assert names and all(n.startswith("cluster ") for n in names)
    assert at.multiselect(key=f"map_labels_{tagged_run}_cluster:kmeans").label == "Clusters"


def test_tag_search_orders_tracks_by_likelihood_and_names_close_tags(tagged_run):
    at = open_page("pages/map.py", **{RUN_KEY: tagged_run})
    at.text_input(key=f"map_search_{tagged_run}").set_value("tag:Jazz").run()
    options = at.selectbox(key=f"map_pick_{tagged_run}").options
    assert len(options) == 12 and all(o.startswith("piano") for o in options[:4])  # most jazz-like first
    assert not any(o.startswith("piano") for o in options[4:])
    first = int(load_run(tagged_run).tracks.index[load_run(tagged_run).tracks["path"].str.contains(options[0])][0])
    at.selectbox(key=f"map_pick_{tagged_run}").set_value(first).run()
    assert "musicnn tags: jazz 0.90" in text_of(at)
    at.text_input(key=f"map_search_{tagged_run}").set_value("tag:piano").run()
    assert not at.exception and "no musicnn tag named 'piano'" in at.warning[0].value


def hovers(at) -> str:
    return " ".join(str(h) for t in charts(at)[0]["data"] for h in t.get("hovertext", []))


def test_a_run_without_tags_says_why_and_computes_them_in_a_background_job(tiny_run_id, tmp_path, monkeypatch):
    """Press, see the job's progress, find it again from a new session (a reload) while it runs, wait for it and
    run the page again: the tags are colour options and in the hovers, with no restart."""
    from core.base.paths import datasets_dir, runs_dir

    built = datasets_dir() / "tiny"
    run_folder = runs_dir() / tiny_run_id
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))  # the job's process inherits it
    shutil.copytree(run_folder, tmp_path / "runs" / tiny_run_id)
    shutil.copytree(built, tmp_path / "datasets" / "tiny", ignore=shutil.ignore_patterns("reference", "tags.parquet"))
    clear_streamlit_caches()  # the map points cached by the tests above carry their planted tags
    at = open_page("pages/map.py", **{RUN_KEY: tiny_run_id})
    assert "musicnn tags of dataset 'tiny' are not computed yet" in text_of(at)
    assert not any(o.startswith("tag") for o in at.selectbox(key=f"map_colour_{tiny_run_id}").options)
    assert "tags:" not in hovers(at)

    next(b for b in at.button if b.label == "Compute tags").click().run()
    assert not at.exception, [e.message for e in at.exception]
    job = jobs.find_analysis_job("tags", run=tiny_run_id)
    os.killpg(job["pid"], signal.SIGSTOP)  # held mid-way (it needs seconds to start musicnn), so it still runs below
    try:
        assert job["state"] in jobs.ACTIVE and at.get("progress")
        reloaded = open_page("pages/map.py", **{RUN_KEY: tiny_run_id})
        assert reloaded.get("progress") and reloaded.button(key="map_tags_form_cancel")
        assert [b.disabled for b in reloaded.get("form_submit_button")] == [True]  # no second job
    finally:
        os.killpg(job["pid"], signal.SIGCONT)
    deadline = time.monotonic() + 240
    while jobs.job_status(job["job_id"])["state"] in jobs.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.job_status(job["job_id"])["state"] == "done", jobs.job_log(job["job_id"])

    at.run()  # what the progress poll does once the job has ended
    assert not at.exception, [e.message for e in at.exception]
    assert "tag: rock" in at.selectbox(key=f"map_colour_{tiny_run_id}").options
    assert (tmp_path / "datasets" / "tiny" / "tags.parquet").exists() and "not computed yet" not in text_of(at)
    assert "tags: " in hovers(at) and not any(b.label == "Compute tags" for b in at.button)
