"""ui.atlas, the Python side of the map component: quantisation, the bytes both ways, argument checks, the build.

The browser side is driven in real Chromium by tests/test_browser_atlas.py; here the event bytes are made by
the component's own encoder (src/protocol.js run in node, where node is installed) and decoded by Python.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ui.atlas as atlas
from ui.atlas import AtlasEvent, Histogram, atlas_map, atlas_points, decode_event, mask_bytes, rows_bytes

FRONTEND = Path(atlas.__file__).resolve().parent / "frontend"
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd")


def points(n: int = 1000, seed: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n) * 30 - 5, rng.uniform(-2, 7, size=n), rng.integers(0, 3, n)


def event_bytes(header: dict, rows: list[int]) -> bytes:
    """An event laid out as src/protocol.js lays it out (used where node is not installed)."""
    head = json.dumps(header).encode()
    pad = -(4 + len(head)) % 4
    return len(head).to_bytes(4, "little") + head + b"\0" * pad + np.asarray(rows, dtype="<u4").tobytes()


def test_quantisation_round_trip_is_within_one_step_of_the_bounds():
    x, y, codes = points(5000)
    built = atlas_points(x, y, codes, palette=PALETTE, legend=("a", "b", "c"), key="k")
    x0, x1, y0, y1 = built.bounds
    assert (x0, x1, y0, y1) == (x.min(), x.max(), y.min(), y.max())
    back = built.positions()
    assert np.abs(back[:, 0] - x).max() <= (x1 - x0) / atlas.QUANT_STEPS
    assert np.abs(back[:, 1] - y).max() <= (y1 - y0) / atlas.QUANT_STEPS
    assert built.n == 5000 and len(built.xy) + len(built.codes) == 5 * 5000  # 5 bytes per point
    assert np.array_equal(np.frombuffer(built.codes, np.uint8), codes)


def test_one_point_and_a_line_get_a_unit_span():
    built = atlas_points(np.array([2.0, 2.0]), np.array([1.0, 3.0]), np.array([0, 1]), palette=PALETTE[:2],
                         legend=("a", "b"), key="k")
    assert built.bounds == (2.0, 3.0, 1.0, 3.0)
    assert np.allclose(built.positions(), [[2, 1], [2, 3]])


def test_names_kept_up_to_the_limit_and_dropped_above(monkeypatch):
    x, y, codes = points(50)
    names = [f"track {i}" for i in range(50)]
    assert atlas_points(x, y, codes, palette=PALETTE, legend="abc", names=names, key="k").names == tuple(names)
    monkeypatch.setattr(atlas, "NAMES_LIMIT", 49)
    assert atlas_points(x, y, codes, palette=PALETTE, legend="abc", names=names, key="k").names is None


@pytest.mark.parametrize("change, message", [
    ({"y": np.zeros(3)}, "one value per point"),
    ({"x": np.full(1000, np.nan)}, "finite"),
    ({"palette": ("red", "#00ff00", "#0000ff")}, "#rrggbb"),
    ({"codes": np.full(1000, 3)}, "0..2"),
    ({"codes": np.full(1000, 0.5)}, "integers"),
    ({"legend": ("a", "b")}, "one legend name per palette colour"),
    ({"continuous": True}, "(low, high) legend"),
    ({"key": ""}, "key"),
    ({"names": ["one"]}, "one name per point"),
])
def test_atlas_points_refuses_bad_input_with_the_reason(change, message):
    x, y, codes = points()
    kwargs = dict(x=x, y=y, codes=codes, palette=PALETTE, legend=("a", "b", "c"), key="k") | change
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        atlas_points(**kwargs)


def test_continuous_codes_use_all_256_values():
    x, y, _ = points(256)
    built = atlas_points(x, y, np.arange(256), palette=("#000000", "#ffffff"), legend=("low", "high"),
                         continuous=True, key="k")
    assert built.continuous and np.frombuffer(built.codes, np.uint8).max() == 255


def test_rows_and_mask_bytes_layout():
    assert np.array_equal(np.frombuffer(rows_bytes([0, 7, 99], n=100, name="selected"), "<u4"), [0, 7, 99])
    assert rows_bytes(None, n=10, name="selected") == b""
    with pytest.raises(ValueError, match="selected rows must lie in 0..9"):
        rows_bytes([10], n=10, name="selected")
    mask = np.random.default_rng(1).random(37) < 0.3
    packed = mask_bytes(mask, n=37)
    # the browser reads bit i as (byte[i >> 3] >> (i & 7)) & 1
    assert [(packed[i >> 3] >> (i & 7)) & 1 for i in range(37)] == mask.astype(int).tolist()
    with pytest.raises(ValueError, match="bool mask"):
        mask_bytes(np.ones(36, bool), n=37)


@pytest.mark.parametrize("header_len_pad", range(4))
def test_decode_event_reads_every_header_padding(header_len_pad):
    header = {"kind": "select", "ranges": {"tempo": [1, 3]}, "drag": "lasso", "seq": 10 ** 12, "x": "y" * header_len_pad}
    event = decode_event(event_bytes(header, [0, 5, 70_000, 2 ** 32 - 1]))
    assert isinstance(event, AtlasEvent)
    assert event.kind == "select" and event.drag == "lasso" and event.seq == 10 ** 12
    assert event.ranges == {"tempo": [1, 3]}
    assert event.rows.dtype == np.int64 and event.rows.tolist() == [0, 5, 70_000, 2 ** 32 - 1]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the JS encoder is not run")
def test_decode_event_reads_what_the_component_encodes():
    script = ("import {encodeEvent} from './src/protocol.js';"
              "const e = encodeEvent('click', Uint32Array.from([123456]), {cluster: [0, 2]}, 'box');"
              "process.stdout.write(Buffer.from(e.bytes).toString('hex') + ' ' + e.seq);")
    out = subprocess.run(["node", "--input-type=module", "-e", script], cwd=FRONTEND, capture_output=True, text=True,
                         timeout=30, check=True).stdout.split()
    event = decode_event(bytes.fromhex(out[0]))
    assert (event.kind, event.rows.tolist(), event.ranges, event.drag, event.seq) == (
        "click", [123456], {"cluster": [0, 2]}, "box", int(out[1]))


def test_decode_event_refuses_broken_bytes():
    assert decode_event(None) is None and decode_event(b"") is None
    with pytest.raises(ValueError, match="too short"):
        decode_event(b"\x01")
    with pytest.raises(ValueError, match="overruns"):
        decode_event((500).to_bytes(4, "little") + b"{}")
    with pytest.raises(ValueError, match="unknown kind"):
        decode_event(event_bytes({"kind": "wave", "drag": "lasso", "seq": 1}, []))


def test_atlas_map_refuses_bad_arguments_before_drawing():
    x, y, codes = points(100)
    built = atlas_points(x, y, codes, palette=PALETTE, legend="abc", key="k")
    with pytest.raises(ValueError, match="drag must be one of"):
        atlas_map(built, key="m", drag="zoom")
    with pytest.raises(ValueError, match="focus row 100"):
        atlas_map(built, key="m", focus=100)
    with pytest.raises(ValueError, match="histogram 'tempo' has 99 codes"):
        atlas_map(built, key="m", histograms=[Histogram("tempo", bytes(99), ("slow", "fast"))])
    with pytest.raises(ValueError, match="highlighted rows"):
        atlas_map(built, key="m", highlighted=[-1])
    with pytest.raises(ValueError, match=r"unknown render options \['gpu'\]"):
        atlas_map(built, key="m", render_options={"gpu": True})


def test_ranges_are_clipped_to_the_histograms_shown():
    hists = [Histogram("tempo", bytes(10), ("a", "b", "c"))]
    assert atlas._ranges({"tempo": [5, 1], "gone": [0, 1]}, hists) == {"tempo": [1, 2]}


def source_hash() -> str:
    """The walk of build.mjs's sourceHash: sorted names, each as "name\\nsize\\n" + bytes."""
    names = sorted([f"src/{p.name}" for p in (FRONTEND / "src").iterdir()] + ["build.mjs", "package.json", "package-lock.json"])
    digest = hashlib.sha256()
    for name in names:
        data = (FRONTEND / name).read_bytes()
        digest.update(f"{name}\n{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


def test_committed_build_is_built_from_the_current_sources():
    build = FRONTEND / "build"
    assert (build / "atlas.js").stat().st_size > 50_000
    assert (build / "source-hash.txt").read_text().strip() == source_hash(), \
        "ui/atlas/frontend/build is stale: run `npm ci && npm run build` in ui/atlas/frontend and commit build/"
    html = (build / "index.html").read_text()
    assert 'src="atlas.js"' in html and "http" not in html  # nothing from a CDN, no external fonts
    assert "regl-scatterplot" in (FRONTEND / "LICENSES.md").read_text()


def test_the_test_app_runs_under_apptest(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ATLAS_N", "3000")
    app = AppTest.from_file(str(Path(__file__).parent / "apps" / "atlas_app.py"), default_timeout=60).run()
    assert not app.exception
    assert "3000 points" in app.markdown[0].value
