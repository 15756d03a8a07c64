"""The Map's selection panel (ui/selection.py): "more like these" says so when nothing else is similar."""
from __future__ import annotations

import numpy as np

from core.base.paths import runs_dir
from core.runs.folder import load_run
from core.service.query import more_like_these
from tests.pagetest import gesture, open_page, text_of
from tests.run_copies import copy_run


def test_more_like_these_says_when_nothing_else_is_similar(tiny_run_id):
    run_id = copy_run(tiny_run_id, "tiny-nothing-similar")
    path = runs_dir() / run_id / "embeddings.npy"
    x = np.zeros_like(np.load(path))
    x[:, 0] = -1.0
    x[:2, 0] = 1.0  # the set points one way, every other track the opposite way: every cosine is -1
    np.save(path, x)
    assert (more_like_these(load_run(run_id), [0, 1], k=5)["score"] <= 0).all()
    at = open_page("pages/map.py", active_run_id=run_id)
    gesture(at, "select", [0, 1], seq=1)
    at.toggle(key="map_group_more").set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Nothing else in the library is similar to this set" in " ".join(w.value for w in at.warning), text_of(at)
