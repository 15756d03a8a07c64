"""The Compare page's tables and neighbour lists through AppTest: no "None" for what a reference run lacks, the
opened track's 10 nearest are 10 rows, and ties among the most-changed tracks are said."""
from __future__ import annotations

import json
import re

from core.base.paths import runs_dir
from tests.pagetest import charts, markdown_text, open_page
from tests.run_copies import copy_run


def reference_like(run_id: str) -> str:
    """A copy of ``run_id`` whose config says it is the frozen musicnn reference (no training settings)."""
    new_id = copy_run(run_id, "zz-reference-like")
    path = runs_dir() / new_id / "config.json"
    config = json.loads(path.read_text())
    config["kind"] = "reference"
    config.pop("train", None)
    path.write_text(json.dumps(config))
    return new_id


def test_a_reference_run_shows_dashes_not_none_and_the_opened_tracks_ten_nearest(tiny_run_id):
    other = reference_like(tiny_run_id)
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    at.multiselect(key="compare_runs").set_value([tiny_run_id, other]).run()
    assert not at.exception, [e.message for e in at.exception]
    scores, differences = at.dataframe[0].value, at.dataframe[1].value
    assert scores.set_index("run").loc[other, "epochs"] == "—"
    for table in (scores, differences):
        assert not table.astype(str).isin(["None", "nan", "<NA>"]).any().any(), table
    assert (differences == "—").any().any()  # the training settings the reference run does not have
    text = markdown_text(at)
    assert text.count("nearest shared tracks") == 2 and "*this track*" not in text
    ranks = [int(r) for r in re.findall(r"^\*\*(\d+)\. ", text, flags=re.M)]
    assert ranks == [*range(1, 11)] * 2  # 10 nearest: 10 rows, ranked from 1, in each run
    loss, _, per_label = charts(at)[:3]  # one colour per run on every chart of the page
    assert [t["line"]["color"] for t in loss["data"]] == [t["marker"]["color"] for t in per_label["data"]]
    assert len({t["line"]["color"] for t in loss["data"]}) == 2


def test_ties_among_the_most_changed_tracks_are_said(tiny_run_id):
    twin = copy_run(tiny_run_id, "zz-identical-twin")  # the same space: every track's Jaccard is 1
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    at.multiselect(key="compare_runs").set_value([tiny_run_id, twin]).run()
    assert not at.exception, [e.message for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert "12 tracks have a Jaccard of at most 1.00 (the listed 10 all have that value)" in captions
    assert "not a ranking" in captions
