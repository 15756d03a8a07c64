"""The app in a real browser: ``streamlit run app.py`` on a free local port, driven by headless Chromium.

Runs, Map (click a point) and Recommend (upload a file; record through Chromium's fake microphone playing a
WAV made here) are exercised the way a researcher would, and a screenshot of each step is saved under
``test-output/screenshots/``. Chromium is the Debian package (``scripts/install_browser.sh``); Playwright's
own browser download is not used. Where ``CI`` is set a missing browser fails the test, elsewhere it skips.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
SERVER_LOG = SHOTS.parent / "streamlit-server.log"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# closed network, running as root: no sandbox, no GPU, nothing that phones home
# WebGL (the atlas map) in software: SwiftShader through ANGLE (Chromium refuses it without the "unsafe" flag)
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"]
SERVER_START_S = 60
STEP_MS = 60_000
MIC_ATTEMPTS = 3


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def browser_missing() -> str | None:
    """Why the browser test cannot run here (no Chromium, no Playwright package), or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed"
    return None


MISSING = browser_missing()
# Locally a missing browser skips (the reason is printed by -rs); in CI the fixtures below fail instead.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(300),
              pytest.mark.skipif(MISSING is not None and not in_ci(), reason=f"browser test: {MISSING}")]


def wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{SERVER_LOG.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {SERVER_START_S} s:\n{SERVER_LOG.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def playwright_api():
    """Playwright's sync API, once Chromium and the Python package are known to be there."""
    if MISSING is not None:
        pytest.fail(f"{MISSING} (CI=true: the browser test must run; see scripts/install_browser.sh)")
    from playwright.sync_api import sync_playwright

    return sync_playwright


@contextlib.contextmanager
def streamlit_server(script: str = "app.py", env: dict | None = None):
    """``streamlit run SCRIPT`` (the app) on a free port of 127.0.0.1 over the tests' artifacts; stopped afterwards.

    ``env`` is added to this process's environment for the server.
    """
    SHOTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(SERVER_LOG, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=os.environ | (env or {}), start_new_session=True)
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(playwright_api, tiny_run_id):
    """One server for the module's tests (:func:`streamlit_server`)."""
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def mic_wav(tiny_run_id, tmp_path_factory) -> Path:
    """What the fake microphone plays: a library piano track, 48 kHz 16-bit mono (as a real mic delivers)."""
    import soxr

    from core.runs.folder import load_run

    tracks = load_run(tiny_run_id).tracks
    y, sr = sf.read(tracks.loc[tracks["label"] == "piano", "path"].iloc[0], dtype="float32")
    y48 = soxr.resample(y, sr, 48_000)
    path = tmp_path_factory.mktemp("mic") / "fake-mic.wav"
    sf.write(path, 0.8 * y48 / np.abs(y48).max(), 48_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser_context(playwright_api, mic_wav, tmp_path_factory):
    """Headless Chromium with a new empty profile, microphone allowed and fed from :func:`mic_wav`."""
    # The app is served on 127.0.0.1, so it offers only loopback ICE candidates (ui.webrtc.use_loopback_ice);
    # the browser offers loopback too, which also covers a machine with no interface but lo.
    args = CHROMIUM_ARGS + ["--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream",
                            "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-audio-capture={mic_wav}"]
    with playwright_api() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=args, viewport={"width": 1400, "height": 1700}, permissions=["microphone"])
        context.set_default_timeout(STEP_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    errors, console = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    opened = time.monotonic()
    page.on("console", lambda message: console.append(
        f"{time.monotonic() - opened:7.2f} s {message.type}: {message.text[:300]}"))
    page.console_messages = console
    yield page
    page.close()
    print("page errors:", errors)


def settle(page, text: str | None = None) -> None:
    """Wait for ``text`` (when given), then until the script has finished and the page is drawn."""
    if text:
        page.get_by_text(text).first.wait_for()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0", timeout=STEP_MS)
    page.wait_for_timeout(800)


def no_exception_shown(page) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, shown.first.inner_text()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_sidebar_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.locator("h1", has_text=title).wait_for()
    settle(page)


POINT_JS = """([chart, curve, index]) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[chart];
  const layout = gd._fullLayout, trace = gd._fullData[curve], box = gd.getBoundingClientRect();
  return [box.left + layout._size.l + layout.xaxis.d2p(trace.x[index]),
          box.top + layout._size.t + layout.yaxis.d2p(trace.y[index]), trace.name];
}"""


def ranked_items(page) -> list[str]:
    texts = page.locator('[data-testid="stMarkdownContainer"]').all_inner_texts()
    return [t for t in texts if re.match(r"^\d+\. .+ · similarity ", t)]


def test_runs_map_and_upload_in_a_real_browser(server, page, tiny_run_id):
    from playwright.sync_api import expect

    page.goto(server)
    settle(page, "Active run")
    no_exception_shown(page)
    # pick the run
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=tiny_run_id).click()
    settle(page, f"Active run: {tiny_run_id}")
    shot(page, "1-runs")

    open_sidebar_page(page, "Map")
    frame = atlas_frame(page)
    no_exception_shown(page)
    assert page.get_by_text(tiny_run_id).first.is_visible()
    shot(page, "2-map")
    # click a track's point: it becomes the focused track, playing, with its neighbours (not itself)
    from core.runs.folder import load_run

    run = load_run(tiny_run_id)
    row = int(run.projections["umap_x"].idxmin())  # the leftmost track: no other point lies on it
    x, y = on_map(page, frame, *run.projections.loc[row, ["umap_x", "umap_y"]])
    page.mouse.move(x - 4, y)  # a click opens the point under the mouse: hover it first, as a user does
    page.mouse.move(x, y)
    frame.wait_for_function(f"atlas.hover === {row}", timeout=STEP_MS)
    page.mouse.click(x, y)
    # not "nearest neighbours" alone: the hint shown before any click says it too
    settle(page, "nearest neighbours by cosine similarity")
    # players are lazily loaded components: wait for them rather than count them at once
    expect(page.locator('[data-testid="stAudio"]')).to_have_count(6, timeout=STEP_MS)
    items = ranked_items(page)
    assert len(items) == 5 and not any("this track" in i for i in items)
    assert page.locator("h3", has_text=Path(run.tracks["path"][row]).stem).count() == 1
    frame = atlas_frame(page)
    frame.wait_for_function(f"atlas.focus === {row} && atlas.linked.length === 5", timeout=STEP_MS)
    shot(page, "3-map-selected")
    page.locator('[data-testid="stButtonGroup"]').first.get_by_text("t-SNE", exact=True).click()
    settle(page)
    no_exception_shown(page)
    shot(page, "4-map-tsne")

    open_sidebar_page(page, "Recommend")
    from core.runs.folder import load_run

    query = Path(load_run(tiny_run_id).tracks["path"].iloc[0])
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(query))
    settle(page, "Top 5 most similar tracks")
    no_exception_shown(page)
    items = ranked_items(page)
    assert len(items) == 5 and items[0].startswith(f"1. {query.stem} ")
    atlas_frame(page).wait_for_function("atlas.query !== null", timeout=STEP_MS)  # the upload placed on the map
    shot(page, "5-recommend-upload")

    # a file that is not audio: a plain error, and the page keeps working
    bad = SHOTS.parent / "not-audio.wav"
    bad.write_text("this is not audio")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(bad))
    settle(page, "not a readable audio file")
    no_exception_shown(page)
    shot(page, "6-recommend-bad-upload")


def diagnosis(page, name: str) -> str:
    """What a failed browser step leaves to read in CI: a screenshot, the page's text, console and server log."""
    shot(page, name)
    return "\n".join([f"screenshot: {SHOTS / name}.png", "--- page text ---", page.inner_text("body")[-2000:],
                      "--- browser console ---", *page.console_messages[-40:],
                      "--- streamlit log ---", SERVER_LOG.read_text()[-4000:] if SERVER_LOG.exists() else "(none)"])


def recorded_seconds(page) -> float:
    text = " ".join(page.locator('[data-testid="stMarkdownContainer"]').all_inner_texts())
    found = re.search(r"Recording\s+([\d.]+) s", text)
    return float(found.group(1)) if found else 0.0


def record_five_seconds(page, recorder, *, attempts: int = MIC_ATTEMPTS) -> None:
    """Press Start and wait until 5 s are recorded. streamlit-webrtc's page ends the stream at the first
    'disconnected' of the peer connection, which a CPU-starved machine can cause before audio flows; the
    recorder then shows Start again and the page asks to press it, and so does this, up to twice more. Each failed
    attempt's diagnosis is printed and kept in ``test-output/microphone-attempts.log``."""
    start, stop = (recorder.get_by_role("button", name=name) for name in ("Start recording", "Stop"))
    failures = []
    for attempt in range(1, attempts + 1):
        start.click()
        stop.wait_for()  # the stream is signalling or playing
        deadline = time.monotonic() + 45
        while recorded_seconds(page) < 5.0 and time.monotonic() < deadline and not start.is_visible():
            page.wait_for_timeout(250)
        if recorded_seconds(page) >= 5.0:
            return
        failures.append(f"attempt {attempt}: " + diagnosis(page, f"7-recommend-recording-failed-{attempt}"))
        (SHOTS.parent / "microphone-attempts.log").write_text("\n\n".join(failures))
        print(failures[-1])
        if stop.is_visible():
            stop.click()
            start.wait_for()
        page.wait_for_timeout(2000)  # let a load spike pass before the next attempt
    pytest.fail(f"no audio arrived from the fake microphone in {attempts} attempts\n" + "\n\n".join(failures))


def test_microphone_recording_in_a_real_browser(server, page):
    page.goto(f"{server}/recommend")
    settle(page, "How many similar tracks")
    page.get_by_role("tab", name="Record from the microphone").click()
    recorder = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
    record_five_seconds(page, recorder)
    meter = page.locator('[data-testid="stProgress"]').first.inner_text()
    level = float(re.search(r"input level (-?\d+) dBFS", meter).group(1))
    assert -40 < level < 0, meter
    shot(page, "7-recommend-recording")
    recorder.get_by_role("button", name="Stop").click()
    settle(page, "Top 5 most similar tracks")
    no_exception_shown(page)
    text = " ".join(page.locator('[data-testid="stMarkdownContainer"]').all_inner_texts())
    seconds = float(re.search(r"your recording \(([\d.]+) s\)", text).group(1))
    assert seconds >= 5.0
    items = ranked_items(page)
    assert len(items) == 5
    assert "piano" in items[0]  # the fake microphone plays a piano track of the library
    atlas_frame(page).wait_for_function("atlas.query !== null", timeout=STEP_MS)  # the recording on the map
    shot(page, "8-recommend-microphone")


LIVE_IDENTIFY_S = 25  # stream seconds within which the fake microphone's track should be named


def live_seconds(page) -> set[str]:
    return set(re.findall(r"(\d+) s into the stream: the last", page.inner_text("body")))


def test_live_listening_updates_while_it_plays(server, page, tiny_run_id):
    """While the fake microphone plays a library track, the page updates by itself every second (no press) with
    that track first and the trail of the last windows on the map (the same map, updated in place), it says
    "identified: <that track>" within :data:`LIVE_IDENTIFY_S` s of stream, and Stop keeps the last answer. Through
    WebRTC's Opus the fake microphone's 8 s loop of a synthetic track does not line up with its passages; its
    landmark fingerprints (built with the tiny run) do, and each repeat of the loop votes at its own time offset."""
    from core.data.tracks import display_name
    from core.runs.folder import load_run

    tracks = load_run(tiny_run_id).tracks
    expected = display_name(tracks.loc[tracks["label"] == "piano"].iloc[0])
    page.goto(f"{server}/recommend")
    settle(page, "How many similar tracks")
    page.get_by_role("tab", name="Record from the microphone").click()
    recorder = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
    record_five_seconds(page, recorder)
    seen, deadline = set(), time.monotonic() + LIVE_IDENTIFY_S
    while time.monotonic() < deadline and "identified: " not in page.inner_text("body"):
        seen |= live_seconds(page)
        page.wait_for_timeout(250)
    atlas_values(page, "window.keptByTest = true")  # the live map's window, marked
    marked = set(seen)
    for _ in range(12):
        seen |= live_seconds(page)
        page.wait_for_timeout(250)
    assert len(seen) >= 2, seen  # updates came one after another without a press
    assert seen - marked and True in atlas_values(page, "window.keptByTest === true")  # updated in place, not anew
    first = re.search(r"into the stream: the last \d+ s matched[^\n]*\n+(?:1\. )?(.+?) · \d\.\d+", page.inner_text("body"))
    assert first and first.group(1) == expected, diagnosis(page, "9-live-wrong-track")
    assert "landmarks of the first track at one time offset" in page.inner_text("body")  # the fingerprint stage
    trails = atlas_values(page, "window.atlas ? atlas.trail.length : 0")
    assert trails and max(trails) >= 1  # the trail of the last windows' places on the atlas map
    shot(page, "9-recommend-live")
    named = re.search(r"identified: (.+?) after (\d+) s", page.inner_text("body"))
    recorder.get_by_role("button", name="Stop").click()
    settle(page, "Last live answer")
    no_exception_shown(page)
    assert named is not None, diagnosis(page, "9-live-not-identified")
    assert named.group(1) == expected and int(named.group(2)) <= LIVE_IDENTIFY_S, named.group(0)
    assert f"identified: {expected}" in page.inner_text("body")  # Stop keeps the last answer


def atlas_values(page, expression: str, *, tries: int = 20) -> list:
    """``expression`` in every atlas map's frame; a frame that goes while it is asked (a live update draws its map
    again) is asked again at the next try, until one answers."""
    from playwright.sync_api import Error as PlaywrightError

    for _ in range(tries):
        values = []
        for frame in page.frames:
            if "timbre_atlas" not in frame.url:
                continue
            try:
                values.append(frame.evaluate(expression))
            except PlaywrightError:  # detached by the next update
                pass
        if values:
            return values
        page.wait_for_timeout(250)
    return []


def atlas_frame(page):
    """The atlas map's frame once every point is drawn (it is drawn again after a rerun that changed its points)."""
    frame = page.wait_for_selector("iframe[title*=timbre_atlas]", timeout=STEP_MS).content_frame()
    frame.wait_for_function("window.atlas && window.atlas.timings.drawn", timeout=STEP_MS)
    return frame


def on_map(page, frame, x: float, y: float) -> tuple[float, float]:
    """Where the atlas draws the projection point (x, y) now, in page pixels."""
    box = page.locator("iframe[title*=timbre_atlas]").bounding_box()
    fx, fy = frame.evaluate(f"window.atlas.screenOfPoint({float(x)}, {float(y)})")
    return box["x"] + fx, box["y"] + fy


def draw_lasso(page, corners) -> None:
    """Press, drag through ``corners`` in small steps (the lasso follows the mouse) and release."""
    page.mouse.move(*corners[0])
    page.mouse.down()
    for corner in corners[1:] + corners[:1]:
        page.mouse.move(*corner, steps=12)
    page.mouse.up()


def shown_selection(page) -> int:
    """How many points the atlas map shows selected, once it is drawn."""
    return atlas_frame(page).evaluate("atlas.plot.get('selectedPoints').length")


def test_a_lasso_on_the_map_is_kept_across_projections_and_pages_and_saved_as_a_collection(server, page, tiny_run_id):
    """Draw a lasso round the left part of the map: the selection stays while the projection and the page change;
    saved as a collection, it is found again after a reload. No request leaves this machine."""
    from core.analysis import collections as col
    from core.runs.folder import load_run

    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1",
                                                                                "data:", "blob:", "about:")) else None)
    col.collections_path("tiny").unlink(missing_ok=True)
    # through the router, as a user comes in: the first request of a fresh server straight to /map would run the
    # page in Streamlit's old pages/ mode for one run (ui.nav)
    page.goto(server)
    settle(page, "Active run")
    open_sidebar_page(page, "Map")
    frame = atlas_frame(page)
    no_exception_shown(page)
    umap = load_run(tiny_run_id).projections[["umap_x", "umap_y"]].to_numpy()
    (x0, y0), (x1, y1) = umap.min(axis=0), umap.max(axis=0)
    cut = x0 + 0.6 * (x1 - x0)
    inside = int((umap[:, 0] < cut).sum())
    assert 1 <= inside < len(umap)
    pad = 0.05 * max(x1 - x0, y1 - y0)
    corners = [on_map(page, frame, x, y) for x, y in
               [(x0 - pad, y0 - pad), (cut, y0 - pad), (cut, y1 + pad), (x0 - pad, y1 + pad)]]
    draw_lasso(page, corners)
    heading = f"Selection: {inside} track{'s' * (inside != 1)}"
    try:
        settle(page, heading)
    except Exception:
        pytest.fail(diagnosis(page, "9-map-lasso-failed"))
    no_exception_shown(page)
    assert shown_selection(page) == inside
    shot(page, "9-map-lasso")
    page.locator('[data-testid="stButtonGroup"]').first.get_by_text("PCA", exact=True).click()
    settle(page, heading)
    assert shown_selection(page) == inside  # another projection, the same tracks
    open_sidebar_page(page, "Recommend")
    open_sidebar_page(page, "Map")
    settle(page, heading)
    assert shown_selection(page) == inside  # back from another page, still there
    shot(page, "10-map-selection-kept")

    page.get_by_label("Collection name", exact=True).fill("Lasso set")
    page.get_by_role("button", name="Save as collection").click()
    saved_heading = f"Collection “Lasso set”: {inside} track{'s' * (inside != 1)}"
    settle(page, saved_heading)
    no_exception_shown(page)
    assert col.list_collections("tiny")["name"].tolist() == ["Lasso set"]
    shot(page, "10-map-collection-saved")

    page.reload()
    settle(page, "Find tracks")
    assert page.get_by_text(saved_heading).count() == 0  # a new session: nothing chosen yet
    picker = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Collection", exact=True))
    picker.click()
    page.get_by_role("option", name=f"Lasso set ({inside})").click()
    settle(page, saved_heading)
    no_exception_shown(page)
    shot(page, "11-map-collection-after-reload")
    assert not outside, outside[:5]


@pytest.mark.parametrize("path, title, next_title", [("runs", "Runs", "Map"), ("map", "Map", "Runs")])
def test_a_first_request_straight_to_a_page_shows_the_apps_navigation(playwright_api, browser_context, tiny_run_id,
                                                                      path, title, next_title):
    """A server's very first request runs a page in Streamlit's old pages/ mode (file names as the menu); the page
    switches to the app's navigation in that same run (ui.nav.require_router), at the same address, with no "page
    not found"."""
    with streamlit_server() as url:  # a server of its own: no session has called st.navigation yet
        page = browser_context.new_page()
        try:
            page.goto(f"{url}/{path}")
            page.locator("h1", has_text=title).wait_for()
            settle(page)
            shot(page, f"first-request-{path}")
            menu = page.locator('[data-testid="stSidebarNav"]').inner_text().splitlines()
            assert {"Runs", "Map", "Compare runs", "Classifiers", "Clusters"} <= set(menu)
            assert "app" not in menu and path not in menu  # the old menu: app, classifiers, ..., runs
            assert page.get_by_text("Page not found").count() == 0 and page.url == f"{url}/{path}"
            page.get_by_text("Active run", exact=True).wait_for()  # the router's sidebar run picker
            no_exception_shown(page)

            open_sidebar_page(page, next_title)  # the next click goes where it says
            no_exception_shown(page)
            page.goto(url)  # the address / leads to the Runs page at its own address
            page.locator("h1", has_text="Runs").wait_for()
            settle(page)
            assert page.url == f"{url}/runs"
        finally:
            page.close()


def test_the_api_docs_list_every_operation_in_a_real_browser(browser_context, tiny_run_id, tmp_path):
    """``python -m api``'s /docs, served offline, draws every operation of its OpenAPI 3.1 schema (Swagger UI 4
    drew none: "Unable to render this definition")."""
    import json

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "api.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--run", tiny_run_id,
                                 "--log-level", "warning"], cwd=ROOT, env={**os.environ, "TIMBRE_API_KEY": ""},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    page = browser_context.new_page()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "api.log").read_text()[-3000:]
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/openapi.json", timeout=2) as response:
                    schema = json.load(response)
                    break
            time.sleep(0.5)
        assert schema["openapi"].startswith("3.1")
        expected = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
        page.goto(f"{url}/docs")
        page.locator(".opblock").first.wait_for()
        shown = page.evaluate("""() => [...document.querySelectorAll('.opblock-summary')].map(s => [
            s.querySelector('.opblock-summary-method').innerText.trim(),
            s.querySelector('.opblock-summary-path').getAttribute('data-path')])""")
        assert {tuple(row) for row in shown} == expected and len(shown) == len(expected)
        assert "Unable to render this definition" not in page.content()
        page.screenshot(path=str(tmp_path / "api-docs.png"), full_page=True)
    finally:
        page.close()
        stop(proc)
