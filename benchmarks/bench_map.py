"""The map in a real browser at 10k to 1M tracks: the atlas map beside the Plotly map it replaced.

In headless Chromium (WebGL in software, SwiftShader, unless the machine gives Chromium a GPU: the results name
the renderer).

    .venv/bin/python -m benchmarks.bench_map [--sizes 10000,100000,1000000] [--only plotly,atlas,atlas-alone]
                                             [--compositing software|gpu] [--json]

For each size a synthetic run (:mod:`benchmarks.map_runs`: clustered embeddings, track table, blob-shaped maps;
built once and cached under ``<artifacts>/bench/map/``), and for each map a ``streamlit run`` of its script on a
free 127.0.0.1 port over that run, with one browser:

* ``warmup_draw_s``: the first request, on a cold server (the run and its points loaded and cached);
* ``first_draw_s``: the least of :data:`TRIES` requests, each in a new tab (a new session, the run cached): seconds
  from the navigation's start to every point drawn (Plotly: its scattergl traces hold every point, or the density image and its sample
  above :data:`core.analysis.maps.POINT_LIMIT`; the atlas: the flag its component sets once the points are drawn);
* ``first_draw_parts`` (of the first of those requests): when the page took its first websocket message (the
  Streamlit session is up) and its largest (the map's data), seconds after the request by the page's clock: the
  server's and Streamlit's share of the first draw; the rest is the browser's decoding and drawing (for the atlas,
  its own steps: the points received, decoded, the plot created, the kd-tree built, the library's first draw
  resolved, drawn);
* ``idle`` and ``pan_zoom``: requestAnimationFrame frames per second with no input for 1 s, then during ~3 s of
  scripted mouse drags and wheel steps; the Streamlit reruns the page asked for meanwhile (read from its
  websocket); how many new views the map showed (``map_fps``: the atlas's overlay frames, which follow every view,
  and how many of them drew every point, ``point_draws``: above its live limit the atlas moves the last image
  while the view moves and draws the points when it rests; plotly's "relayouting" and "relayout" events, each a
  full draw); and where
  the time went (the page's main thread as Chromium counts it; the CPU time of the renderer and of the GPU
  process, which runs WebGL in software);
* ``redraw``: the atlas redrawing every point once, timed to ``gl.finish()``: the least wall time, and the CPU time
  of the GPU process and the renderer per redraw (on this shared machine the CPU time is the steadier figure);
* ``lasso``: the fastest of :data:`TRIES` lassos (each in a new tab) around a vertical strip holding ~10 % of the
  points: seconds from mouse-up to the page
  showing the selection count that came back to Python, the count shown and the count of points drawn in the strip;
* ``memory``: the tab's JS heap, the renderer and GPU processes' RSS, the Streamlit server's RSS; and the bytes
  the page received on its websocket (the map's data).

The Plotly reference is :mod:`benchmarks.map_apps.plotly_map` (the map as the Map page drew it, alone). ``atlas`` is
the app's Map page when that page draws :mod:`ui.atlas` (else the component alone); ``atlas-alone`` the component
in :mod:`benchmarks.map_apps.atlas_map`, without the page around it. Chromium composites in software by default
(``--compositing gpu``: through SwiftShader, as it does unless told otherwise). One size at a time; every server
and browser is stopped, also on errors.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import map_browser as mb
from benchmarks.map_runs import run_id, synthetic_run

ROOT = mb.ROOT
LOGS = ROOT / "test-output" / "bench-map"
TRIES = 3  # first draws and lassos, each in a new tab: the least is reported (the machine's other work only adds)
GESTURE_S = 3.0
IDLE_S = 1.0
LASSO_SHARE = 0.10
WARMUP_TIMEOUT_MS = 300_000  # a cold server loads a 1M-track run and its points first
STEP_TIMEOUT_MS = 120_000
DRAGS = [(120, 0), (0, 90), (-120, 0), (0, -90)]  # four drags that bring the view back where it was
SELECTION = re.compile(r"Selection: ([\d,]+) track")
SELECTION_JS = r"""() => { const m = document.body.innerText.match(/Selection: ([\d,]+) track/);
  return m ? m[1] : null; }"""
SETTLED_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')
  && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0"""
MAPS = ("plotly", "atlas", "atlas-alone")
TARGETS = {  # what a size must reach, on the atlas map (2 cores, software WebGL)
    "atlas_first_draw_1m_s": 5.0, "atlas_fps_1m": 20.0, "atlas_lasso_1m_s": 1.5, "speedup_100k_vs_plotly": 3.0}


class PlotlyMap:
    """The Plotly reference: scattergl traces with every point up to the point limit, else a density image under
    a sample (as the Map page drew it); its lasso is offered only where the points are all drawn."""

    name = "plotly"
    script = "benchmarks/map_apps/plotly_map.py"
    DRAWN_JS = """(expected) => { const gd = document.querySelector('.js-plotly-plot');
      if (!gd || !gd._fullData || !gd._fullLayout || !gd._fullLayout._plots) return false;
      let n = 0, heat = false;
      for (const t of gd._fullData) { if (t.customdata) n += t.x.length; if (t.type === 'heatmap') heat = true; }
      return n === expected.points && heat === expected.density ? performance.now() : false; }"""
    AREA_JS = """(xs) => { const gd = document.querySelector('.js-plotly-plot'), layout = gd._fullLayout;
      gd.scrollIntoView({block: 'center'});
      const box = gd.getBoundingClientRect(), left = box.left + layout._size.l, top = box.top + layout._size.t;
      return {left, top, width: layout._size.w, height: layout._size.h,
              xs: xs.map(x => left + layout.xaxis.d2p(x))}; }"""

    def __init__(self, n: int):
        from core.analysis.maps import DENSITY_SAMPLE, POINT_LIMIT

        self.density = n > POINT_LIMIT
        self.points = min(DENSITY_SAMPLE, POINT_LIMIT) if self.density else n
        self.drawn_as = (f"density image under a {self.points:,}-point sample" if self.density
                         else f"{n:,} WebGL points (scattergl)")

    def address(self, url: str, *, drag: str) -> str:
        return f"{url}/?drag={drag}"

    def wait_drawn(self, page, *, timeout_ms: int) -> float:
        """Milliseconds from the navigation's start to every point drawn."""
        expected = {"points": self.points, "density": self.density}
        return page.wait_for_function(self.DRAWN_JS, arg=expected, polling="raf", timeout=timeout_ms).json_value()

    def area(self, page, xs=()) -> dict:
        """The plot area in page pixels, and ``xs`` (map units) as page x positions."""
        return page.evaluate(self.AREA_JS, [float(x) for x in xs])

    COUNT_JS = """([x0, x1]) => { const gd = document.querySelector('.js-plotly-plot'), layout = gd._fullLayout;
      const left = gd.getBoundingClientRect().left + layout._size.l; let n = 0;
      for (const t of gd._fullData) { if (!t.customdata) continue;
        for (const x of t.x) { const px = left + layout.xaxis.d2p(x); n += px >= x0 && px <= x1; } }
      return n; }"""

    def count_between(self, page, x0: float, x1: float) -> int:
        """The points drawn with a page x position in ``[x0, x1]``."""
        return page.evaluate(self.COUNT_JS, [x0, x1])

    def set_drag(self, page, mode: str) -> None:
        """Nothing to do: the drag mode comes with the address."""

    def frames_drawn(self, page) -> dict:
        """How many times the chart drew a new view since the first call (plotly's "relayouting" events while
        a drag pans, "relayout" when a wheel step zooms); each draws every point again."""
        views = page.evaluate("""() => { const gd = document.querySelector('.js-plotly-plot');
          if (gd.benchDraws === undefined) { gd.benchDraws = 0; const count = () => { gd.benchDraws++; };
            gd.on('plotly_relayouting', count); gd.on('plotly_relayout', count); }
          return gd.benchDraws; }""")
        return {"views": views, "point_draws": views}

    def phases(self, page) -> dict:
        return {}

    def redraw_ms(self, page) -> dict | None:
        return None

    def lasso_refused(self) -> str | None:
        if self.density:
            return "not offered: above the point limit the page draws a density image and offers a box (a zoom)"
        return None


# the atlas's iframe and its window (the component exposes its state as ``window.atlas``)
FIND_ATLAS_JS = """const atlasFrame = () => { for (const f of document.querySelectorAll('iframe')) {
  try { if (f.contentWindow && f.contentWindow.atlas) return f; } catch (e) {} } return null; };"""


# frame pairs, each after gl.finish() (the GPU process has executed what came before), with a redraw of every
# point in them or without: the wall ms of each
FRAME_PAIRS_JS = """ const w = atlasFrame().contentWindow, a = w.atlas, gl = a.plot.get('renderer').regl._gl;
  const frame = () => new Promise(done => w.requestAnimationFrame(done)), out = [];
  for (let i = 0; i < repeats; i++) { await frame(); gl.finish(); const t = w.performance.now();
    if (redraw) { a.imageDirty = true; a.plot.redraw(); }  // marked: above the live limit an unchanged view is not drawn
    await frame(); await frame(); gl.finish(); out.push(w.performance.now() - t); }
  return out; }"""


class AtlasMap:
    """The atlas map (:mod:`ui.atlas`): every point drawn in its iframe by regl-scatterplot; drawn when the
    component's ``window.atlas.timings.drawn`` is set for all ``n`` points (its clock moved to the page's)."""

    DRAWN_JS = "(n) => { " + FIND_ATLAS_JS + """ const f = atlasFrame(); if (!f) return false;
      const w = f.contentWindow, a = w.atlas;
      return a.n === n && a.timings.drawn ? w.performance.timeOrigin + a.timings.drawn - performance.timeOrigin
                                         : false; }"""
    AREA_JS = "(xs) => { " + FIND_ATLAS_JS + """ const f = atlasFrame(), w = f.contentWindow;
      f.scrollIntoView({block: 'center'});
      const frame = f.getBoundingClientRect(), gl = w.document.getElementById('gl').getBoundingClientRect();
      return {left: frame.left + gl.left, top: frame.top + gl.top, width: gl.width, height: gl.height,
              xs: xs.map(x => frame.left + w.atlas.screenOfPoint(x, 0)[0])}; }"""
    DRAG_JS = "(mode) => { " + FIND_ATLAS_JS + """ const w = atlasFrame().contentWindow;
      if (w.atlas.drag === mode) return false;
      w.document.querySelector(`#toolbar [data-drag="${mode}"]`).click(); return true; }"""

    def __init__(self, n: int, *, page: bool):
        self.n, self.page, self.name = n, page, "atlas" if page else "atlas-alone"
        self.script = "app.py" if page else "benchmarks/map_apps/atlas_map.py"
        self.drawn_as = f"{n:,} WebGL points (regl-scatterplot, " + ("the Map page)" if page else "alone)")

    def address(self, url: str, *, drag: str) -> str:
        return f"{url}/map" if self.page else url

    def wait_drawn(self, page, *, timeout_ms: int) -> float:
        return page.wait_for_function(self.DRAWN_JS, arg=self.n, polling="raf", timeout=timeout_ms).json_value()

    def area(self, page, xs=()) -> dict:
        return page.evaluate(self.AREA_JS, [float(x) for x in xs])

    def set_drag(self, page, mode: str) -> None:
        """The drag mode from the map's toolbar (a "drag" event: the page reruns once, before any measuring)."""
        if page.evaluate(self.DRAG_JS, mode):
            page.wait_for_timeout(300)
            page.wait_for_function(SETTLED_JS, timeout=STEP_TIMEOUT_MS)

    COUNT_JS = "([x0, x1]) => { " + FIND_ATLAS_JS + """ const f = atlasFrame(), w = f.contentWindow, a = w.atlas;
      const left = f.getBoundingClientRect().left + w.document.getElementById('gl').getBoundingClientRect().left;
      let n = 0; for (let i = 0; i < a.n; i++) { const px = left + a.xScale(a.x[i]); n += px >= x0 && px <= x1; }
      return n; }"""

    def count_between(self, page, x0: float, x1: float) -> int:
        return page.evaluate(self.COUNT_JS, [x0, x1])

    def lasso_refused(self) -> str | None:
        return None

    def frames_drawn(self, page) -> dict:
        """How many new views the map has shown (its overlays follow each; above the component's live limit the
        last image of the points moves with them) and how many times it drew every point."""
        return page.evaluate("() => { " + FIND_ATLAS_JS + """ const t = atlasFrame().contentWindow.atlas.timings;
          return {views: t.frames || 0, point_draws: t.rendered || 0}; }""")

    def phases(self, page) -> dict:
        """The component's own steps of the first draw (its ``timings``), in seconds after the navigation's start:
        the points' bytes received, decoded, the plot created, the kd-tree built, the first draw done, drawn."""
        return page.evaluate("() => { " + FIND_ATLAS_JS + """ const w = atlasFrame().contentWindow, out = {};
          for (const step of ['received', 'loaded', 'created', 'indexed', 'resolved', 'drawn']) { const t = w.atlas.timings[step];
            if (t !== undefined) out[step] = Math.round(w.performance.timeOrigin + t - performance.timeOrigin) / 1e3; }
          return out; }""")

    def redraw_ms(self, page, *, repeats: int = 8) -> dict:
        """One redraw of every point, alone: frame pairs with a redraw against frame pairs without, each ended
        by ``gl.finish()``; the least wall ms of ``repeats`` (other processes only ever add) and the CPU ms the
        GPU process and the renderer spent per redraw (what a machine with nothing else running would wait)."""
        runs = {}
        for redraw in (False, True):
            procs = mb.browser_processes()
            before = {role: mb.cpu_seconds(procs[role]) for role in ("gpu", "renderer")}
            wall = page.evaluate("async ([repeats, redraw]) => { " + FIND_ATLAS_JS + FRAME_PAIRS_JS, [repeats, redraw])
            runs[redraw] = {"wall": min(wall), **{role: (mb.cpu_seconds(procs[role]) - before[role]) * 1e3 / repeats
                                                  for role in before}}
        return {"redraw_ms": round(runs[True]["wall"] - runs[False]["wall"], 1),
                "cpu_ms": {role: round(runs[True][role] - runs[False][role], 1) for role in ("gpu", "renderer")}}


def pan_and_zoom(page, area: dict, *, seconds: float) -> dict:
    """Drags and wheel steps over the map's centre for ``seconds``; the frames the page produced meanwhile."""
    cx, cy = area["left"] + area["width"] / 2, area["top"] + area["height"] / 2
    page.evaluate(mb.FRAMES_START_JS)
    end, gestures = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        dx, dy = DRAGS[gestures % len(DRAGS)]
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + dx, cy + dy, steps=8)
        page.mouse.up()
        page.mouse.wheel(0, -240 if gestures % 4 < 2 else 240)  # two steps in, two out
        gestures += 1
    return {**mb.frame_figures(page.evaluate(mb.FRAMES_STOP_JS)), "gestures": gestures}


def idle_frames(page, *, seconds: float) -> dict:
    page.evaluate(mb.FRAMES_START_JS)
    page.wait_for_timeout(seconds * 1e3)
    return mb.frame_figures(page.evaluate(mb.FRAMES_STOP_JS))


def lasso_strip(root: Path, n: int) -> tuple[float, float]:
    """A vertical strip of the run's UMAP map holding ~:data:`LASSO_SHARE` of its tracks: its left and right edge
    (map units)."""
    import pandas as pd

    x = pd.read_parquet(root / "runs" / run_id(n) / "projections.parquet", columns=["umap_x"])["umap_x"].to_numpy()
    left, right = np.quantile(x, [0.5 - LASSO_SHARE / 2, 0.5 + LASSO_SHARE / 2])
    return float(left), float(right)


NEXT_FRAME_JS = "() => new Promise(done => requestAnimationFrame(() => done()))"


def draw_lasso(page, corners: list[tuple[float, float]]) -> float:
    """Press, drag through ``corners`` in small steps, release; returns the time (perf_counter) of the release.
    Chromium hands mouse moves to the page once a frame (coalesced): each corner waits for a frame, so the lasso
    keeps its corners however slowly the map draws."""
    page.mouse.move(*corners[0])
    page.mouse.down()
    for corner in corners[1:] + corners[:1]:
        page.mouse.move(*corner, steps=12)
        page.evaluate(NEXT_FRAME_JS)
    released = time.perf_counter()
    page.mouse.up()
    return released


def lasso_once(context, target, url: str, strip: tuple[float, float]) -> dict:
    """One lasso around ``strip`` (map units) in a new tab: the round trip, the count shown and expected."""
    page = context.new_page()
    try:
        page.goto(target.address(url, drag="lasso"))
        target.wait_drawn(page, timeout_ms=STEP_TIMEOUT_MS)
        page.wait_for_function(SETTLED_JS, timeout=STEP_TIMEOUT_MS)
        target.set_drag(page, "lasso")
        area = target.area(page, list(strip))
        x0, x1 = round(area["xs"][0]), round(area["xs"][1])  # a mouse event's position is whole pixels
        expected = target.count_between(page, x0, x1)  # the points drawn between the strip's edges now
        top, bottom = area["top"] + 2, area["top"] + area["height"] - 2
        middle = (top + bottom) / 2  # the press on the left edge: no overlay (toolbar, legend) there
        released = draw_lasso(page, [(x0, middle), (x0, top), (x1, top), (x1, bottom), (x0, bottom)])
        shown = page.wait_for_function(SELECTION_JS, polling="raf", timeout=STEP_TIMEOUT_MS).json_value()
        seconds = time.perf_counter() - released
        return {"round_trip_s": round(seconds, 3), "shown": int(shown.replace(",", "")), "expected": expected}
    finally:
        page.close()


def measure_lasso(context, target, url: str, root: Path, n: int) -> dict:
    """:data:`TRIES` lassos, each in a new tab; the fastest round trip (the machine's other work only adds), all
    of them, and the counts of the fastest."""
    refused = target.lasso_refused()
    if refused:
        return {"skipped": refused}
    tries = [lasso_once(context, target, url, lasso_strip(root, n)) for _ in range(TRIES)]
    best = min(tries, key=lambda t: t["round_trip_s"])
    return {**best, "tries_s": [t["round_trip_s"] for t in tries]}


def first_draws(context, target, url: str, tries: int) -> list[float]:
    """Seconds to every point drawn, each in a new tab (a new session on the warm server)."""
    seconds = []
    for _ in range(tries):
        page = context.new_page()
        try:
            page.goto(target.address(url, drag="pan"))
            seconds.append(round(target.wait_drawn(page, timeout_ms=STEP_TIMEOUT_MS) / 1e3, 2))
            page.wait_for_function(SETTLED_JS, timeout=STEP_TIMEOUT_MS)
        finally:
            page.close()
    return seconds


def measure_map(target, n: int, root: Path, *, compositing: str) -> dict:
    """Every figure of one map at one size: a server and a browser of their own, stopped afterwards."""
    out: dict = {"drawn_as": target.drawn_as, "load_average": round(os.getloadavg()[0], 1)}
    log = LOGS / f"{target.name}-{n}.log"
    with mb.streamlit_server(target.script, root, log) as (url, server), mb.chromium(
            timeout_ms=STEP_TIMEOUT_MS, compositing=compositing) as context:
        context.add_init_script(mb.MESSAGES_JS)
        page = context.new_page()
        try:
            out["gl"] = page.evaluate(mb.GL_JS)
            page.goto(target.address(url, drag="pan"))
            out["warmup_draw_s"] = round(target.wait_drawn(page, timeout_ms=WARMUP_TIMEOUT_MS) / 1e3, 2)
            page.wait_for_function(SETTLED_JS, timeout=WARMUP_TIMEOUT_MS)
        finally:
            page.close()
        page = context.new_page()
        try:
            reruns = mb.Reruns(page)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(target.address(url, drag="pan"))
            tries = [round(target.wait_drawn(page, timeout_ms=STEP_TIMEOUT_MS) / 1e3, 2)]
            page.wait_for_function(SETTLED_JS, timeout=STEP_TIMEOUT_MS)
            out["received_mb"] = round(reruns.received_bytes / 1e6, 2)
            out["first_draw_parts"] = {**mb.arrivals(page), **target.phases(page)}
            target.set_drag(page, "pan")
            with mb.CpuWindow(cdp) as window:
                out["idle"] = idle_frames(page, seconds=IDLE_S)
            out["idle"]["cpu_s"] = window.figures["cpu_s"]
            area, drawn = target.area(page), target.frames_drawn(page)
            started = time.perf_counter()
            with mb.CpuWindow(cdp) as window:
                gesture = pan_and_zoom(page, area, seconds=GESTURE_S)
            page.wait_for_timeout(500)  # a rerun asked for at the gesture's end is sent by now
            after = target.frames_drawn(page)
            views, draws = after["views"] - drawn["views"], after["point_draws"] - drawn["point_draws"]
            out["pan_zoom"] = {**gesture, "map_views": views, "map_fps": round(views / window.figures["wall_s"], 1),
                               "point_draws": draws, "cpu_ms_per_point_draw": {
                                   role: round(cpu * 1e3 / max(draws, 1), 1) for role, cpu in window.figures["cpu_s"].items()},
                               "reruns": reruns.count(started), **window.figures}
            out["redraw"] = target.redraw_ms(page)
            out["memory"] = mb.memory(cdp, server)
        finally:
            page.close()
        tries += first_draws(context, target, url, TRIES - 1)
        out["first_draw_s"], out["first_draw_tries_s"] = min(tries), tries
        out["lasso"] = measure_lasso(context, target, url, root, n)
    return out


def atlas_page() -> bool:
    """Whether the app's Map page draws the atlas."""
    return "ui.atlas" in (ROOT / "pages" / "map.py").read_text()


def map_target(name: str, n: int):
    """The map to measure: ``plotly``; ``atlas`` (the Map page, or the atlas alone while that page does not draw
    it); ``atlas-alone`` (the component in :mod:`benchmarks.map_apps.atlas_map`, without the page around it)."""
    if name == "plotly":
        return PlotlyMap(n)
    return AtlasMap(n, page=name == "atlas" and atlas_page())


def measure_size(n: int, maps: list[str], *, compositing: str) -> dict:
    root = synthetic_run(n, log=lambda text: print(text, file=sys.stderr, flush=True))
    figures = {}
    for name in maps:
        if name != "plotly" and importlib.util.find_spec("ui.atlas") is None:
            figures[name] = {"skipped": "ui.atlas is not there"}
            continue
        target = map_target(name, n)
        print(f"{name}: {n:,} tracks ...", file=sys.stderr, flush=True)
        try:
            figures[name] = measure_map(target, n, root, compositing=compositing)
        except Exception as error:  # one map's failure is a result too; the other maps still run
            figures[name] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
        print(json.dumps({name: {str(n): figures[name]}}), file=sys.stderr, flush=True)
    return figures


def target_checks(results: dict) -> dict:
    """Each target of :data:`TARGETS` with the figure measured and whether it is met (None: not measured)."""
    def figure(name, n, *path):
        value = results.get(str(n), {}).get(name, {})
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return value if isinstance(value, (int, float)) else None

    checks = {}
    draw = figure("atlas", 1_000_000, "first_draw_s")
    checks["atlas_first_draw_1m_s"] = (draw, draw is not None and draw <= TARGETS["atlas_first_draw_1m_s"])
    fps, reruns = figure("atlas", 1_000_000, "pan_zoom", "map_fps"), figure("atlas", 1_000_000, "pan_zoom", "reruns")
    checks["atlas_fps_1m"] = (fps, fps is not None and fps >= TARGETS["atlas_fps_1m"] and reruns == 0)
    lasso = figure("atlas", 1_000_000, "lasso", "round_trip_s")
    checks["atlas_lasso_1m_s"] = (lasso, lasso is not None and lasso <= TARGETS["atlas_lasso_1m_s"])
    plotly, atlas = figure("plotly", 100_000, "first_draw_s"), figure("atlas", 100_000, "first_draw_s")
    speedup = round(plotly / atlas, 1) if plotly and atlas else None
    checks["speedup_100k_vs_plotly"] = (speedup, speedup is not None and speedup >= TARGETS["speedup_100k_vs_plotly"])
    return {name: {"measured": value, "target": TARGETS[name], "met": met if value is not None else None}
            for name, (value, met) in checks.items()}


def table(out: dict) -> str:
    """The figures as a Markdown table (the README's)."""
    lines = ["| tracks | map | drawn as | first draw (cold server) | pan / zoom: views drawn / s, page fps (reruns) | "
             "lasso ~10 % | tab JS heap / renderer / GPU process | server RSS | received |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, maps in out["results"].items():
        for name, f in maps.items():
            if "first_draw_s" not in f:
                lines.append(f"| {int(n):,} | {name} | {f.get('skipped') or f.get('error')} | | | | | | |")
                continue
            lasso = f["lasso"]
            lasso_text = (f"{lasso['round_trip_s']} s ({lasso['shown']:,} of {lasso['expected']:,})"
                          if "round_trip_s" in lasso else lasso.get("skipped", lasso.get("error", "")))
            m, p = f["memory"], f["pan_zoom"]
            lines.append(f"| {int(n):,} | {name} | {f['drawn_as']} | {f['first_draw_s']} s ({f['warmup_draw_s']} s) | "
                         f"{p['map_fps']}, {p['fps']} ({p['reruns']}) | {lasso_text} | {m['js_heap_mb']} / {m['renderer_rss_mb']} / "
                         f"{m['gpu_rss_mb']} MB | {m['server_rss_mb']} MB | {f['received_mb']} MB |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated track counts")
    parser.add_argument("--only", default="plotly,atlas",
                        help=f"comma-separated maps: {', '.join(MAPS)} (the atlas component without the Map page)")
    parser.add_argument("--compositing", choices=sorted(mb.COMPOSITING), default="software",
                        help="Chromium's compositor: software (default), or through SwiftShader as WebGL is")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object")
    args = parser.parse_args(argv)
    # a SIGTERM unwinds like an error, so every server and browser is still stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    maps = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(maps) - set(MAPS)
    if unknown:
        parser.error(f"unknown maps {sorted(unknown)}: choose from {', '.join(MAPS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict = {"sizes": sizes, "cpus": os.cpu_count(), "chromium": mb.CHROMIUM, "compositing": args.compositing,
                 "results": {}}
    for n in sizes:  # one size at a time: its run, server and browser are gone before the next
        out["results"][str(n)] = measure_size(n, maps, compositing=args.compositing)
    out["gl"] = next((f["gl"] for maps_ in out["results"].values() for f in maps_.values() if "gl" in f), None)
    out["targets"] = target_checks(out["results"])
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"WebGL renderer: {out['gl']}; {args.compositing} compositing; {out['cpus']} CPUs")
        print(table(out))
        for name, check in out["targets"].items():
            print(f"{name}: {check['measured']} (target {check['target']}): "
                  f"{'met' if check['met'] else 'not met' if check['met'] is False else 'not measured'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
