"""Recommend's multi-track query through AppTest: pick several library tracks by name (or add a collection's):
the tracks nearest all of them, none of them, on the map around their centre."""
from __future__ import annotations

import numpy as np
import pytest

from core.analysis import collections as col
from core.data.tracks import display_name
from core.runs.folder import load_run
from core.service.query import more_like_these
from tests.pagetest import atlas_args, open_page, ranked_items


@pytest.fixture(autouse=True)
def webrtc_without_server(monkeypatch):
    """streamlit-webrtc asks the live server for session info, which AppTest lacks (as in tests/test_pages.py)."""
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)


def test_several_picked_tracks_give_the_tracks_nearest_all_of_them(tiny_run_id):
    run = load_run(tiny_run_id)
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    assert "Pick one or more library tracks" in " ".join(i.value for i in at.info)
    at.text_input(key="recommend_multi_search").input("piano").run()
    picker = at.multiselect(key="recommend_multi")
    assert len(picker.options) == 4 and all("piano" in o for o in picker.options)
    rows = [int(r) for r in run.tracks.index[run.tracks["label"] == "piano"][:2]]
    picker.set_value(rows).run()
    at.text_input(key="recommend_multi_search").input("strings_1").run()  # a new search keeps the picks
    assert at.multiselect(key="recommend_multi").value == rows
    at.slider(key="recommend_k").set_value(4).run()
    assert not at.exception and not at.error
    expected = more_like_these(run, rows, k=4)
    items = ranked_items(at)
    assert len(items) == 4
    for item, (_, track) in zip(items, expected.iterrows()):
        assert item.startswith(f"**{track['rank']}. {display_name(track)}**")
    assert "mean cosine similarity to the 2 picked tracks" in " ".join(m.value for m in at.markdown)
    linked = np.frombuffer(atlas_args(at, "multi_map")["linked"], dtype="<u4")
    assert sorted(linked.tolist()) == sorted(expected["row"])


def test_a_collection_adds_its_tracks_to_the_picks(tiny_run_id):
    run = load_run(tiny_run_id)
    col.collections_path("tiny").unlink(missing_ok=True)
    saved = col.save_selection(run, "Three", [0, 5, 9])
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    at.selectbox(key="recommend_add_collection").set_value(saved.collection_id).run()
    assert not at.exception
    assert at.multiselect(key="recommend_multi").value == [0, 5, 9]
    assert len(ranked_items(at)) == 5
    assert not {0, 5, 9} & set(np.frombuffer(atlas_args(at, "multi_map")["linked"], dtype="<u4").tolist())
