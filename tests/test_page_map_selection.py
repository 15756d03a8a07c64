"""The Map page's sets through AppTest: a lasso or box drawn over points opens the selection panel (count, labels,
play list, downloads, more like these), which saves a collection; a collection is shown, filtered, renamed and
deleted; a box on a density map still zooms (tests/test_page_map_scale.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.analysis import collections as col
from core.data.tracks import display_name
from core.runs.folder import load_run
from core.service.query import more_like_these
from tests.pagetest import charts, markdown_text, open_page, ranked_items, text_of


@pytest.fixture(autouse=True)
def no_collections(tiny_run_id):
    col.collections_path("tiny").unlink(missing_ok=True)
    yield


def draw(at, rows, *, shape: str = "lasso"):
    """What the browser sends when a lasso (or a box) is drawn around the points of ``rows``."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    states = WidgetStates()
    states.CopyFrom(at._tree.get_widget_states())
    widget = states.widgets.add()
    widget.id = at.get("plotly_chart")[0].proto.id
    points = [{"customdata": int(r), "curve_number": 0, "point_index": i, "x": 0, "y": 0} for i, r in enumerate(rows)]
    outline = {"x": [0.0, 1.0, 1.0], "y": [0.0, 0.0, 1.0]} if shape == "lasso" else {"x": [0.0, 1.0], "y": [0.0, 1.0]}
    widget.string_value = json.dumps({"selection": {"points": points, "point_indices": list(range(len(rows))),
                                                    "box": [outline] if shape == "box" else [],
                                                    "lasso": [outline] if shape == "lasso" else []}})
    at._run(states)
    assert not at.exception, [e.message for e in at.exception]
    return at


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_lasso_opens_the_selection_panel_and_saves_a_collection(tiny_run_id):
    run = load_run(tiny_run_id)
    piano = np.flatnonzero(run.tracks["label"] == "piano")
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    assert charts(at)[0]["layout"]["dragmode"] == "pan"
    at.button_group(key="map_drag").set_value("lasso").run()
    assert charts(at)[0]["layout"]["dragmode"] == "lasso"
    draw(at, list(piano[:3]) + [piano[0]])
    assert at.selectbox(key=f"map_pick_{tiny_run_id}").value is None  # a lasso selects a set, not one track
    text = markdown_text(at)
    assert any(s.value == "Selection: 3 tracks" for s in at.subheader)
    assert "**Labels:** piano 3 (100%)" in text
    assert {b.label for b in at.download_button} >= {"Download M3U playlist", "Download CSV"}
    m3u = next(b for b in at.download_button if b.label == "Download M3U playlist")
    assert m3u.proto.label and "map_group_m3u" in m3u.proto.id
    # more like these: the nearest tracks to the set, none of it
    at.toggle(key="map_group_more").set_value(True).run()
    items = ranked_items(at)
    expected = more_like_these(run, piano[:3], k=5)
    assert len(items) == 5 and items[0].startswith(f"**1. {display_name(expected.iloc[0])}** ·")
    # a bad name: a plain error, nothing saved
    at.text_input(key="map_collection_name").set_value("a/b")
    button(at, "Save as collection").click().run()
    assert "looks like a path" in at.error[0].value and col.list_collections("tiny").empty
    at.text_input(key="map_collection_name").set_value("Calm piano")
    button(at, "Save as collection").click().run()
    assert not at.exception
    saved = col.list_collections("tiny")
    assert saved["name"].tolist() == ["Calm piano"] and saved["n_tracks"].tolist() == [3]
    assert at.selectbox(key=f"map_collection_{tiny_run_id}").value == saved["collection_id"][0]
    assert any(s.value == "Collection “Calm piano”: 3 tracks" for s in at.subheader)
    # a new session (a reload) finds it in the picker
    fresh = open_page("pages/map.py", active_run_id=tiny_run_id)
    picker = fresh.selectbox(key=f"map_collection_{tiny_run_id}")
    assert "Calm piano (3)" in picker.options
    picker.set_value(saved["collection_id"][0]).run()
    assert any(s.value == "Collection “Calm piano”: 3 tracks" for s in fresh.subheader)


def test_a_collection_filters_the_map_and_is_renamed_and_deleted(tiny_run_id):
    run = load_run(tiny_run_id)
    kept = col.save_selection(run, "Two", [1, 6])
    col.save_selection(run, "Other", [2])
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    at.selectbox(key=f"map_collection_{tiny_run_id}").set_value(kept.collection_id).run()
    at.toggle(key="map_only_collection").set_value(True).run()
    drawn = np.concatenate([t["customdata"] for t in charts(at)[0]["data"] if t.get("customdata") is not None])
    assert sorted(drawn.tolist()) == [1, 6]
    at.text_input(key=f"map_rename_name_{kept.collection_id}").set_value("other")
    button(at, "Rename").click().run()
    assert "already a collection named 'other'" in at.error[0].value
    at.text_input(key=f"map_rename_name_{kept.collection_id}").set_value("Pair")
    button(at, "Rename").click().run()
    assert col.load_collection("tiny", kept.collection_id).name == "Pair"
    assert any(s.value == "Collection “Pair”: 2 tracks" for s in at.subheader)
    at.button(key=f"map_delete_{kept.collection_id}").click().run()
    assert not at.exception
    assert col.list_collections("tiny")["name"].tolist() == ["Other"]
    assert at.selectbox(key=f"map_collection_{tiny_run_id}").value is None
    assert "Choose **Lasso select**" in text_of(at)


def test_an_empty_lasso_says_so_and_cannot_be_saved(tiny_run_id):
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    draw(at, [], shape="box")
    assert any(s.value == "Selection: 0 tracks" for s in at.subheader)
    at.text_input(key="map_collection_name").set_value("Nothing")
    button(at, "Save as collection").click().run()
    assert "selection is empty" in at.error[0].value and col.list_collections("tiny").empty
    button(at, "Clear the selection").click().run()
    assert not any(s.value.startswith("Selection") for s in at.subheader)


def test_a_collection_is_a_colour_of_the_map(tiny_run_id):
    run = load_run(tiny_run_id)
    col.save_selection(run, "Four", [0, 3, 5, 8])
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    picker = at.selectbox(key=f"map_colour_{tiny_run_id}")
    assert "collection: Four" in picker.options  # as colour_title shows it
    picker.set_value("collection:Four").run()
    assert not at.exception
    drawn = {t["name"]: t for t in charts(at)[0]["data"] if t.get("customdata") is not None}
    assert sorted(drawn["Four"]["customdata"].tolist()) == [0, 3, 5, 8]
    assert len(drawn["the rest"]["customdata"]) == len(run.tracks) - 4
    assert drawn["the rest"]["marker"]["color"] == "#a3a3a3"  # the rest is grey
