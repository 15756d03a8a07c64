"""Helpers for page tests through Streamlit's AppTest: open a page via the router, read its charts and text."""
from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core import jobs

APP = Path(__file__).resolve().parent.parent / "app.py"
RUN_KEY = "active_run_id"


def open_page(page: str | None = None, *, timeout: float = 120, **state) -> AppTest:
    """The app with ``state`` in its session, switched to ``page`` (a path such as ``"pages/map.py"``)."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def unpacked(value):
    """Plotly sends numpy arrays as ``{"dtype", "bdata"[, "shape"]}`` (base64); anything else is returned as is."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return array.reshape([int(n) for n in value["shape"].split(",")]) if "shape" in value else array
    return value


def decode(value) -> np.ndarray:
    """A figure field as an array, whether plotly sent it packed or as a list."""
    return np.asarray(unpacked(value))


def charts(at: AppTest) -> list[dict]:
    """The page's plotly figures in page order, ``x``, ``y`` and ``customdata`` of every trace decoded."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    for spec in specs:
        for trace in spec["data"]:
            for field in ("x", "y", "customdata"):
                if field in trace:
                    trace[field] = unpacked(trace[field])
    return specs


def traces(spec: dict) -> dict[str, dict]:
    return {t.get("name"): t for t in spec["data"]}


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.info] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def ranked_items(at: AppTest) -> list[str]:
    """The "**1. name** · label · cosine **0.987** · links" lines of a neighbour list, in order."""
    return [m.value for m in at.markdown if re.match(r"\*\*\d+\. ", m.value)]


def n_players(at: AppTest) -> int:
    return len(at.get("audio"))


def active_jobs() -> list[dict]:
    """Background jobs (:mod:`core.jobs`) still queued or running."""
    return [j for j in jobs.list_jobs() if j["state"] in jobs.ACTIVE]


def after_the_job(at: AppTest, *, timeout: float = 240.0) -> AppTest:
    """Press-then-wait: the page shows a started job's progress; once every job has ended, the page again (as the
    page's own poll would run it)."""
    assert not at.exception, [e.message for e in at.exception]
    assert active_jobs() and at.get("progress"), "the page started no job"
    deadline = time.monotonic() + timeout
    while active_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not active_jobs(), f"jobs still running after {timeout} s"
    return at.run()


def atlas_event(kind: str, rows=(), *, seq: int, drag: str = "lasso", ranges: dict | None = None) -> bytes:
    """The bytes the atlas map's browser side sends for a finished gesture (the layout
    :func:`ui.atlas.decode_event` reads: header length, JSON header, padding to 4, uint32 rows)."""
    header = json.dumps({"kind": kind, "drag": drag, "seq": seq, "ranges": ranges or {}}).encode()
    head = len(header).to_bytes(4, "little") + header
    return head + b"\0" * (-len(head) % 4) + np.asarray(rows, dtype="<u4").tobytes()


def gesture(at: AppTest, kind: str, rows=(), *, seq: int, key: str = "map_atlas", **fields) -> AppTest:
    """Run the page as the browser does after a gesture on the atlas map of widget ``key``."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    states = WidgetStates()
    states.CopyFrom(at._tree.get_widget_states())
    ids = [e.proto.id for e in at.get("component_instance") if e.proto.id.endswith(f"-{key}")]
    assert ids, f"no atlas map {key!r} on the page: {text_of(at)[:600]}"
    widget = next((w for w in states.widgets if w.id == ids[0]), None) or states.widgets.add()
    widget.id = ids[0]
    widget.bytes_value = atlas_event(kind, rows, seq=seq, **fields)
    at._run(states)
    assert not at.exception, [e.message for e in at.exception]
    return at


def atlas_args(at: AppTest, key: str = "map_atlas") -> dict:
    """The arguments the page gave the atlas map ``key`` (JSON ones decoded; bytes ones as bytes)."""
    element = next(e for e in at.get("component_instance") if e.proto.id.endswith(f"-{key}"))
    args = json.loads(element.proto.json_args)
    args.update({a.key: a.bytes for a in element.proto.special_args if a.WhichOneof("value") == "bytes"})
    return args
