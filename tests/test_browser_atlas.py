"""The atlas map in real headless Chromium (software WebGL): gestures reach Python as the right rows.

``streamlit run tests/apps/atlas_app.py`` on a free local port shows the map on 100,000 synthetic points in three
well separated clusters (seeded: the rows of each are known). Playwright draws a lasso around one cluster, clicks
an outlying point, brushes a histogram, switches to the box and draws one, presses Escape; the app writes every
event it receives to a JSON file, which the test reads. Screenshots go to ``test-output/screenshots/atlas-*.png``.
"""
from __future__ import annotations

import contextlib
import json
import time

import numpy as np
import pytest

from tests.apps.atlas_app import CENTRES, synthetic
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, browser_missing, in_ci, streamlit_server

N = 100_000
# WebGL in software: SwiftShader through ANGLE (Chromium refuses it without the "unsafe" flag)
GL_ARGS = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + ["--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                                                               "--ignore-gpu-blocklist"]
EVENT_S = 30
LIVE_LIMIT = 50_000  # below N: the path of a million points (the image moved while the view moves) is the one tested
MISSING = browser_missing()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.skipif(MISSING is not None and not in_ci(), reason=f"browser test: {MISSING}")]


@pytest.fixture(scope="module")
def data():
    return synthetic(N)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """The app's event file and a reader that waits for the next event."""
    path = tmp_path_factory.mktemp("atlas") / "event.json"

    def read() -> dict:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(path.read_text())
        return {"seq": None}

    def next_after(seq) -> dict:
        deadline = time.monotonic() + EVENT_S
        while time.monotonic() < deadline:
            event = read()
            if event["seq"] != seq:
                return event
            time.sleep(0.05)
        pytest.fail(f"no new atlas event reached Python within {EVENT_S} s")

    read.path, read.next_after = path, next_after
    return read


@pytest.fixture(scope="module")
def server(events):
    if MISSING is not None:
        pytest.fail(f"{MISSING} (CI=true: the browser test must run; see scripts/install_browser.sh)")
    env = {"ATLAS_N": str(N), "ATLAS_OUT": str(events.path), "ATLAS_LIVE_LIMIT": str(LIVE_LIMIT)}
    with streamlit_server("tests/apps/atlas_app.py", env) as url:
        yield url


@pytest.fixture(scope="module")
def atlas(server, tmp_path_factory):
    """(page, frame, iframe box) with the map drawn; the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=GL_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(60_000)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server)
        iframe = page.wait_for_selector("iframe[title*=timbre_atlas]")
        frame = iframe.content_frame()
        frame.wait_for_function("window.atlas && window.atlas.timings.drawn")
        page.wait_for_timeout(300)
        page.screenshot(path=SHOTS / "atlas-drawn.png")
        yield page, frame, iframe.bounding_box()
        browser.close()
        assert not errors, errors


def on_page(atlas, x: float, y: float) -> tuple[float, float]:
    """Where the map draws the projection point (x, y) now, in page pixels."""
    _, frame, box = atlas
    fx, fy = frame.evaluate(f"window.atlas.screenOfPoint({x}, {y})")
    return box["x"] + fx, box["y"] + fy


def outermost(data, cluster_id: int) -> int:
    """The row of a cluster farthest from its centre: nothing else is drawn near it, so a click finds it."""
    xy, cluster = data
    rows = np.flatnonzero(cluster == cluster_id)
    return int(rows[np.argmax(np.linalg.norm(xy[rows] - CENTRES[cluster_id], axis=1))])


def test_the_map_draws_every_point_with_its_overlays(atlas):
    _, frame, _ = atlas
    # the hover names and the contours are loaded once the points are drawn, never before
    frame.wait_for_function("atlas.timings.contoured")
    state = frame.evaluate("({n: atlas.n, contours: atlas.contours.length, labels: atlas.labelsShown,"
                           " gl: !!atlas.plot, drawn: atlas.timings.drawn, contoured: atlas.timings.contoured,"
                           " names: atlas.names.length, last: atlas.names[atlas.n - 1]})")
    assert state["n"] == N and state["gl"] and state["contours"] > 0
    assert state["contoured"] >= state["drawn"]
    assert (state["names"], state["last"]) == (N, f"track {N - 1}")
    assert state["labels"] == 3  # three clusters far apart: every name fits


def test_lasso_around_a_cluster_returns_exactly_its_rows(atlas, data, events):
    page, frame, _ = atlas
    xy, cluster = data
    before = events()["seq"]
    cx, cy = CENTRES[0]
    # zoom in on the cluster first: the image is moved while the wheel turns, the points drawn again at rest,
    # and the lasso must still meet the points where they are drawn
    page.mouse.move(*on_page(atlas, cx, cy))
    for _ in range(3):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(30)
    frame.wait_for_function("atlas.timings.deferred > 0 && !atlas.deferring && document.getElementById('gl').style.transform === ''")
    ring = [on_page(atlas, cx + 6 * np.cos(a), cy + 6 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 40)]
    page.mouse.move(*ring[0])
    page.mouse.down()
    for point in ring[1:]:
        page.mouse.move(*point, steps=2)
    page.mouse.up()
    event = events.next_after(before)
    assert event["kind"] == "select"
    assert np.array_equal(np.sort(event["rows"]), np.flatnonzero(cluster == 0))
    # Python keeps the selection and sends it back: the map still shows it after the rerun
    frame.wait_for_function(f"atlas.plot.get('selectedPoints').length === {int((cluster == 0).sum())}")
    page.screenshot(path=SHOTS / "atlas-lasso.png")


def test_click_on_a_point_returns_its_row(atlas, data, events):
    page, frame, box = atlas
    row = outermost(data, 1)
    fx, fy = frame.evaluate(f"atlas.screenOf({row})")
    before = events()["seq"]
    page.mouse.move(box["x"] + fx - 4, box["y"] + fy)
    page.mouse.move(box["x"] + fx, box["y"] + fy)
    frame.wait_for_function(f"atlas.hover === {row}")
    page.mouse.click(box["x"] + fx, box["y"] + fy)
    event = events.next_after(before)
    assert (event["kind"], event["rows"]) == ("click", [row])
    frame.wait_for_function(f"atlas.focus === {row}")  # the app made it the focus: drawn as a star


def test_histogram_brush_greys_the_others_and_returns_its_range(atlas, data, events):
    page, frame, _ = atlas
    _, cluster = data
    bars = frame.query_selector_all(".hist canvas")[0].bounding_box()  # "cluster": left, right, top
    before = events()["seq"]
    page.mouse.move(bars["x"] + bars["width"] * 0.72, bars["y"] + 40)
    page.mouse.down()
    page.mouse.move(bars["x"] + bars["width"] * 0.95, bars["y"] + 40, steps=4)
    page.mouse.up()
    event = events.next_after(before)
    assert (event["kind"], event["ranges"]) == ("filter", {"cluster": [2, 2]})
    assert frame.evaluate("atlas.greyed") == int((cluster != 2).sum())
    greyed = np.array(frame.evaluate("Array.from(atlas.grey.subarray(0, 2000))"), bool)
    assert np.array_equal(greyed, cluster[:2000] != 2)
    page.screenshot(path=SHOTS / "atlas-brush.png")
    # a click inside the brushed range removes it
    before = event["seq"]
    page.mouse.click(bars["x"] + bars["width"] * 0.9, bars["y"] + 40)
    event = events.next_after(before)
    assert (event["kind"], event["ranges"]) == ("filter", {})
    frame.wait_for_function("atlas.greyed === 0")


def test_box_mode_selects_the_rows_in_the_box_and_escape_clears(atlas, data, events):
    page, frame, box = atlas
    _, cluster = data
    before = events()["seq"]
    frame.click("#toolbar [data-drag=box]")
    event = events.next_after(before)
    assert (event["kind"], event["drag"]) == ("drag", "box")
    cx, cy = CENTRES[2]
    page.mouse.move(*on_page(atlas, cx - 7, cy - 7))
    page.mouse.down()
    page.mouse.move(*on_page(atlas, cx + 7, cy + 7), steps=5)
    page.mouse.up()
    event = events.next_after(event["seq"])
    assert event["kind"] == "select" and event["drag"] == "box"
    assert np.array_equal(np.sort(event["rows"]), np.flatnonzero(cluster == 2))
    # the selection is the dark part of each histogram's bars, and stays so after Python's rerun
    top = int((cluster == 2).sum())
    frame.wait_for_function(f"atlas.pySelected && atlas.pySelected.byteLength === {4 * top}")
    assert frame.evaluate("Array.from(atlas.hists.items[0].sel)") == [0, 0, top]
    page.screenshot(path=SHOTS / "atlas-box.png")
    # a plain click is a click in the box mode too
    row = outermost(data, 1)
    fx, fy = frame.evaluate(f"atlas.screenOf({row})")
    page.mouse.move(box["x"] + fx - 4, box["y"] + fy)
    page.mouse.move(box["x"] + fx, box["y"] + fy)
    frame.wait_for_function(f"atlas.hover === {row}")
    page.mouse.click(box["x"] + fx, box["y"] + fy)
    event = events.next_after(event["seq"])
    assert (event["kind"], event["rows"], event["drag"]) == ("click", [row], "box")
    page.keyboard.press("Escape")
    event = events.next_after(event["seq"])
    assert (event["kind"], event["rows"]) == ("clear", [])
