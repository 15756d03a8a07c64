"""The Map page (the atlas) through AppTest: what the page gives the map (every track's position and colour, the
selection, the focus and its neighbours, search results, greyed groups, cluster names, histograms), and what it does
with a finished gesture the browser sends (a click, a lasso, a clear): the working set that every projection, page
and run of the dataset shows, its panels, saving it as a collection. The browser side is tests/test_browser_atlas.py.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis import collections as col
from core.analysis.clusters import ClusterConfig, run_clusters
from core.analysis.sources import source_from_run
from core.analysis.tags import TAGS
from core.base.paths import runs_dir
from core.runs import set_alias
from core.runs.folder import load_run
from core.service.query import more_like_these, similar_tracks
from tests.conftest import clear_streamlit_caches  # at the top: importing it inside a test runs it again (a new env)
from tests.pagetest import (
    RUN_KEY,
    after_the_job,
    atlas_args,
    gesture,
    markdown_text,
    n_players,
    open_page,
    ranked_items,
    text_of,
)
from tests.test_tags import fake_dataset


@pytest.fixture(autouse=True)
def no_collections(tiny_run_id):
    col.collections_path("tiny").unlink(missing_ok=True)
    yield


@pytest.fixture(autouse=True)
def webrtc_without_server(monkeypatch):
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)


def rows_of(blob: bytes) -> list[int]:
    return np.frombuffer(blob, dtype="<u4").astype(int).tolist()


def positions(args: dict) -> np.ndarray:
    q = np.frombuffer(args["xy"], dtype="<u2").reshape(-1, 2) / 65_535
    x0, x1, y0, y1 = args["bounds"]
    return np.column_stack([x0 + q[:, 0] * (x1 - x0), y0 + q[:, 1] * (y1 - y0)])


def greyed_rows(args: dict, n: int) -> list[int]:
    if not args["greyed"]:
        return []
    return np.flatnonzero(np.unpackbits(np.frombuffer(args["greyed"], dtype=np.uint8), bitorder="little")[:n]).tolist()


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_every_track_is_a_point_at_its_precomputed_position(tiny_run_id, method):
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    at.button_group(key="map_projection").set_value(method).run()
    run = load_run(tiny_run_id)
    args = atlas_args(at)
    coords = run.projections[[f"{method}_x", f"{method}_y"]].to_numpy()
    step = (coords.max(axis=0) - coords.min(axis=0)) / 65_535
    assert np.all(np.abs(positions(args) - coords) <= step)
    codes = np.frombuffer(args["codes"], dtype=np.uint8)
    legend = args["legend"]
    assert legend == sorted(run.tracks["label"].unique()) and not args["continuous"]
    assert [legend[c] for c in codes] == run.tracks["label"].tolist()
    names = args["names"].decode().split("\n")
    assert len(names) == len(run.tracks) and f" · {run.tracks['label'][3]}" in names[3]
    assert at.session_state["active_projection"] == method
    assert "Map quality:** trustworthiness" in text_of(at)


def test_a_click_opens_the_track_with_its_k_neighbours_not_itself(tiny_run_id):
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    assert "Click a point on the map" in at.info[0].value
    gesture(at, "click", [5], seq=1)
    run = load_run(tiny_run_id)
    expected = similar_tracks(run, 5, k=6)
    expected = expected[expected["row"] != 5]
    items = ranked_items(at)
    assert [i.split("**")[1] for i in items] == [f"{n + 1}. {Path(p).stem}" for n, p in enumerate(expected["path"])]
    assert "**5 nearest neighbours**" in markdown_text(at)
    assert n_players(at) == 1 + 5
    assert at.get("audio")[0].proto.autoplay  # a click plays the track
    args = atlas_args(at)
    assert args["focus"] == 5 and sorted(rows_of(args["linked"])) == sorted(expected["row"])
    at.run()  # a rerun is no new click: the player does not start again
    assert not at.get("audio")[0].proto.autoplay and atlas_args(at)["focus"] == 5
    at.slider(key="map_k").set_value(3).run()
    assert len(ranked_items(at)) == 3 and n_players(at) == 1 + 3


def test_a_lasso_is_the_selection_on_every_projection_page_and_run_of_the_dataset(tiny_run_id):
    run = load_run(tiny_run_id)
    piano = np.flatnonzero(run.tracks["label"] == "piano")
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    gesture(at, "select", piano[:3], seq=1, drag="box")
    assert any(s.value == "Selection: 3 tracks" for s in at.subheader)
    assert "**Labels:** piano 3 (100%)" in markdown_text(at)
    assert rows_of(atlas_args(at)["selected"]) == sorted(piano[:3])
    assert atlas_args(at)["drag"] == "box"  # the mode chosen in the map's toolbar is kept
    at.button_group(key="map_projection").set_value("pca").run()
    assert rows_of(atlas_args(at)["selected"]) == sorted(piano[:3])
    at.switch_page("pages/runs.py").run()
    at.switch_page("pages/map.py").run()
    assert rows_of(atlas_args(at)["selected"]) == sorted(piano[:3]) and atlas_args(at)["drag"] == "box"
    # another run of the same dataset, its tracks in another order: the same tracks are selected there
    other = reordered_run(tiny_run_id)
    at.session_state[RUN_KEY] = other
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    moved = load_run(other).tracks["track_id"].to_numpy()[rows_of(atlas_args(at)["selected"])]
    assert sorted(moved) == sorted(run.tracks["track_id"].to_numpy()[piano[:3]])
    at.session_state[RUN_KEY] = tiny_run_id
    gesture(at, "clear", seq=2)
    assert atlas_args(at)["selected"] == b"" and not any(s.value.startswith("Selection") for s in at.subheader)


def reordered_run(tiny_run_id) -> str:
    """A run of the tiny dataset with the same embeddings, its tracks in reverse order (made once)."""
    other = "tiny-reordered"
    if (runs_dir() / other).exists():
        return other
    run = load_run(tiny_run_id)
    shutil.copytree(runs_dir() / tiny_run_id, runs_dir() / f".partial-{other}")
    order = np.arange(len(run.tracks))[::-1]
    folder = runs_dir() / f".partial-{other}"
    for name in ("tracks.parquet", "projections.parquet"):
        pd.read_parquet(folder / name).iloc[order].reset_index(drop=True).to_parquet(folder / name)
    np.save(folder / "embeddings.npy", run.embeddings[order])
    (folder / "passages.npy").unlink(missing_ok=True)
    folder.rename(runs_dir() / other)
    return other


def test_colour_by_agreement_with_another_run_and_its_neighbours_beside(tiny_run_id):
    other = reordered_run(tiny_run_id)  # the same space: every track keeps its neighbours (agreement 1)
    set_alias(other, "mirror")
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    picker = at.selectbox(key=f"map_colour_{tiny_run_id}")
    assert f"neighbour agreement with mirror · {other}" in picker.options  # the run's alias beside its id
    picker.set_value(f"agreement:{other}").run()
    args = atlas_args(at)
    assert args["continuous"] and args["legend"][1].startswith("1.00")
    assert set(np.frombuffer(args["codes"], dtype=np.uint8)) == {0}  # one value: the bottom of the scale
    gesture(at, "click", [3], seq=1)
    assert f"**In `{other}`**" in markdown_text(at) and f"**In `{tiny_run_id}`**" in markdown_text(at)
    mine = [i.split("**")[1].split(". ", 1)[1] for i in ranked_items(at)]
    assert mine[:5] == mine[5:10]  # the same space: the same neighbours in both runs, in the same order


def test_agreement_of_runs_too_large_for_the_page_comes_from_a_background_job(tiny_run_id, monkeypatch):
    import ui.atlas_layers

    other = reordered_run(tiny_run_id)
    monkeypatch.setattr(ui.atlas_layers, "AGREEMENT_IN_PAGE_MAX", 0)  # the tiny runs count as large
    stored = runs_dir() / tiny_run_id / "agreement"
    shutil.rmtree(stored, ignore_errors=True)
    clear_streamlit_caches()
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    at.selectbox(key=f"map_colour_{tiny_run_id}").set_value(f"agreement:{other}").run()
    assert not atlas_args(at)["continuous"] and "Not computed yet" in text_of(at)  # by label meanwhile
    at.button(key="map_agreement_job_start").click().run()
    at = after_the_job(at)
    assert list(stored.glob(f"{other}-k10.npz")), "the job stored no agreement"
    args = atlas_args(at)
    assert args["continuous"] and args["legend"][1].startswith("1.00") and "Not computed yet" not in text_of(at)


def test_the_selection_grows_from_lists_and_is_saved_as_a_collection(tiny_run_id):
    run = load_run(tiny_run_id)
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    gesture(at, "click", [2], seq=1)
    at.button(key="map_neighbour_actions_select").click().run()
    near = similar_tracks(run, 2, k=6)["row"]
    expected = sorted(int(r) for r in near if r != 2)
    assert rows_of(atlas_args(at)["selected"]) == expected
    assert "5 tracks added to the selection (5 now)." in text_of(at)
    button(at, "Add this track to the selection").click().run()
    assert rows_of(atlas_args(at)["selected"]) == sorted(expected + [2])
    # more like these: the tracks nearest the set, none of it, and they can join it
    at.toggle(key="map_group_more").set_value(True).run()
    more = more_like_these(run, sorted(expected + [2]), k=5)
    listed = [i.split("**")[1] for i in ranked_items(at)][-5:]
    assert listed == [f"{n + 1}. {Path(p).stem}" for n, p in enumerate(more["path"])]
    assert not set(more["row"]) & set(expected + [2])
    at.button(key="map_group_more_actions_select").click().run()
    assert rows_of(atlas_args(at)["selected"]) == sorted(expected + [2] + more["row"].tolist())
    # saved: a bad name is refused with nothing written, a good one shows in the picker
    at.text_input(key="map_collection_name").set_value("a/b")
    button(at, "Save as collection").click().run()
    assert "looks like a path" in at.error[0].value and col.list_collections("tiny").empty
    at.text_input(key="map_collection_name").set_value("Around two")
    button(at, "Save as collection").click().run()
    saved = col.list_collections("tiny")
    assert saved["name"].tolist() == ["Around two"] and saved["n_tracks"].tolist() == [11]
    assert at.selectbox(key=f"map_collection_{tiny_run_id}").value == saved["collection_id"][0]
    assert any(s.value == "Collection “Around two”: 11 tracks" for s in at.subheader)
    assert not any(s.value.startswith("Selection") for s in at.subheader)  # saved: the selection is cleared
    # a search's matches are ringed on the map and go to the collection in one step
    at.text_input(key=f"map_search_{tiny_run_id}").set_value("strings").run()
    strings = np.flatnonzero(run.tracks["label"] == "strings").tolist()
    assert sorted(rows_of(atlas_args(at)["highlighted"])) == strings
    at.selectbox(key="map_search_actions_collection").set_value(saved["collection_id"][0])
    at.button(key="map_search_actions_add").click().run()
    held = set(expected + [2] + more["row"].tolist())
    assert col.load_collection("tiny", saved["collection_id"][0]).n_tracks == len(held | set(strings))


def test_groups_left_out_and_a_collection_filter_grey_tracks_not_hide_them(tiny_run_id):
    run = load_run(tiny_run_id)
    kept = col.save_selection(run, "Two", [1, 6])
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    at.multiselect(key=f"map_groups_{tiny_run_id}_label").set_value(["piano"]).run()
    args = atlas_args(at)
    assert len(np.frombuffer(args["codes"], dtype=np.uint8)) == len(run.tracks)  # every track still drawn
    assert greyed_rows(args, len(run.tracks)) == np.flatnonzero(run.tracks["label"] != "piano").tolist()
    at.multiselect(key=f"map_groups_{tiny_run_id}_label").set_value(sorted(run.tracks["label"].unique())).run()
    at.selectbox(key=f"map_collection_{tiny_run_id}").set_value(kept.collection_id).run()
    at.toggle(key="map_only_collection").set_value(True).run()
    assert greyed_rows(atlas_args(at), len(run.tracks)) == [r for r in range(len(run.tracks)) if r not in (1, 6)]
    at.button(key=f"map_delete_{kept.collection_id}").click().run()
    assert not at.exception and col.list_collections("tiny").empty


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


def test_colour_by_a_tag_a_cluster_with_its_names_and_the_linked_histograms(tagged_run):
    run = load_run(tagged_run)
    at = open_page("pages/map.py", **{RUN_KEY: tagged_run})
    picker = at.selectbox(key=f"map_colour_{tagged_run}")
    assert picker.options[:2] == ["label", "cluster (k-means)"] and "tag: jazz" in picker.options
    assert "jazz 0.9" in atlas_args(at)["names"].decode()  # top-3 tags in every hover
    picker.set_value("tag:jazz").run()
    args = atlas_args(at)
    codes = np.frombuffer(args["codes"], dtype=np.uint8)
    piano = (run.tracks["label"] == "piano").to_numpy()
    assert args["continuous"] and codes[piano].min() > codes[~piano].max()
    assert "tag:jazz" in [h["name"] for h in args["histograms"]]
    at.selectbox(key=f"map_colour_{tagged_run}").set_value("cluster:kmeans").run()
    args = atlas_args(at)
    assert all(name.startswith("cluster ") for name in args["legend"])
    labels = args["labels"]  # [x, y, text, weight] at each cluster's centre, named from its tags
    assert labels and sum(w for *_, w in labels) == len(run.tracks)
    assert any("jazz" in text for _, _, text, _ in labels)
    names = [h["name"] for h in args["histograms"]]
    assert {"duration", "cluster", "label"} <= set(names)
    at.toggle(key="map_cluster_names").set_value(False).run()
    assert atlas_args(at)["labels"] == []


def test_a_tag_search_rings_the_most_likely_tracks_and_names_close_tags(tagged_run):
    at = open_page("pages/map.py", **{RUN_KEY: tagged_run})
    at.text_input(key=f"map_search_{tagged_run}").set_value("tag:Jazz").run()
    found = rows_of(atlas_args(at)["highlighted"])
    piano = np.flatnonzero(load_run(tagged_run).tracks["label"] == "piano").tolist()
    assert sorted(found[:4]) == piano  # most jazz-like first
    at.selectbox(key=f"map_search_pick_{tagged_run}").set_value(0).run()
    assert atlas_args(at)["focus"] == found[0]
    at.text_input(key=f"map_search_{tagged_run}").set_value("tag:piano").run()
    assert not at.exception and "no musicnn tag named 'piano'" in at.warning[0].value


@pytest.fixture(scope="module")
def big_run(module_artifacts) -> str:
    """A 100k-track run written directly (clustered embeddings, PCA stand-ins for every map)."""
    from benchmarks.scale_maps import synthetic_library, write_synthetic_run
    from core.search.projection import fit_pca

    n, run_id = 100_000, "synthetic-100k"
    x, tracks = synthetic_library(n, seed=3)
    pca, fit = fit_pca(x)
    fit = fit.fitted_on(np.arange(n))
    coords = pd.DataFrame({"track_id": tracks["track_id"]})
    for scale, method in enumerate(("pca", "tsne", "umap"), start=1):
        coords[f"{method}_x"], coords[f"{method}_y"] = pca[:, 0] * scale, pca[:, 1] * scale
    write_synthetic_run(module_artifacts / "runs", run_id, embeddings=x, tracks=tracks, coords=coords, fit=fit)
    return run_id


def test_100k_tracks_go_to_the_map_compactly_and_a_rerun_builds_no_layer_again(big_run, monkeypatch):
    import ui.atlas_layers

    built = []
    monkeypatch.setattr(ui.atlas_layers, "atlas_points",
                        lambda *args, real=ui.atlas_layers.atlas_points, **kw: built.append(1) or real(*args, **kw))
    at = open_page("pages/map.py", active_run_id=big_run, timeout=300)
    args = atlas_args(at)
    assert len(args["xy"]) == 4 * 100_000 and len(args["codes"]) == 100_000  # 5 bytes a track
    first = len(built)
    start = time.perf_counter()
    at.run()
    print(f"Map page rerun with 100,000 tracks, cached: {time.perf_counter() - start:.2f} s")
    gesture(at, "select", np.arange(0, 100_000, 10), seq=1)
    assert any(s.value == "Selection: 10000 tracks" for s in at.subheader)
    assert first >= 1 and len(built) == first  # the layer is the server's cached one, not built per rerun


def test_a_run_without_tags_says_why_and_computes_them_in_a_background_job(tiny_run_id, module_artifacts, tmp_path,
                                                                           monkeypatch):
    """Press, see the job's progress, find it again from a new session (a reload) while it runs, wait for it and
    run the page again: the tags are colour options and in the hovers, with no restart."""
    import os
    import signal

    from core import jobs

    built = module_artifacts / "datasets" / "tiny"
    run_folder = module_artifacts / "runs" / tiny_run_id
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))  # the job's process inherits it
    shutil.copytree(run_folder, tmp_path / "runs" / tiny_run_id)
    shutil.copytree(built, tmp_path / "datasets" / "tiny", ignore=shutil.ignore_patterns("reference", "tags.parquet"))
    clear_streamlit_caches()  # the layers cached by the tests above carry their planted tags
    at = open_page("pages/map.py", **{RUN_KEY: tiny_run_id})
    assert "musicnn tags of dataset 'tiny' are not computed yet" in text_of(at)
    assert not any(o.startswith("tag") for o in at.selectbox(key=f"map_colour_{tiny_run_id}").options)
    assert "jazz" not in atlas_args(at)["names"].decode()

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
    hovers = atlas_args(at)["names"].decode().split("\n")
    assert all(len(h.split(" · ")) == 3 for h in hovers)  # name · label · the top musicnn tags
    assert not any(b.label == "Compute tags" for b in at.button)


def test_the_focused_track_and_its_neighbours_are_liked_for_the_sidebars_listener(tiny_run_id):
    from core.listeners.store import ListenerStore

    clear_streamlit_caches()  # the server's query service (and its store) of this module's artifacts folder
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    gesture(at, "click", [4], seq=1)
    assert not [b for b in at.button if b.key and "_liked_" in b.key]  # nobody chosen: no buttons
    at.session_state["listener_profile"] = "map listener"
    at.run()
    at.button(key="map_focus_liked_4").click().run()
    near = [int(r) for r in similar_tracks(load_run(tiny_run_id), 4, k=6)["row"] if r != 4]
    at.button(key=f"map_near_disliked_{near[0]}").click().run()
    store = ListenerStore()
    me = store.listener("profile", "map listener")
    assert store.counts(me)["liked"] == 1 and store.counts(me)["disliked"] == 1
    assert at.button(key="map_focus_liked_4").disabled  # shown as liked
