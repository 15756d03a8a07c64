"""The browser side of :mod:`benchmarks.bench_map`: a Streamlit server and headless Chromium, both always stopped,
and the measurements every map shares (a frame counter, Streamlit reruns seen on the websocket, memory).

Each map (the Plotly reference, the atlas) is a :class:`MapTarget`: where its script runs, how to tell that every
point is drawn, where to drag and how to draw a lasso on it.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# closed network, running as root: no sandbox; WebGL through ANGLE on SwiftShader (software), said in the results
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
# Chromium composites the page through SwiftShader too unless told otherwise: on 2 cores that costs more than the
# map's own drawing (idle 7 fps against 39 fps with the software compositor, measured at 10k points)
COMPOSITING = {"software": ["--disable-gpu-compositing"], "gpu": []}
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_S = 90

GL_JS = """() => { const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return 'no WebGL 2'; const info = gl.getExtension('WEBGL_debug_renderer_info');
  return info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER); }"""
# requestAnimationFrame timestamps while a gesture runs: the frames the page produced
FRAMES_START_JS = """() => { const b = window.__benchFrames = {times: [], stop: false};
  const tick = t => { if (b.stop) return; b.times.push(t); requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""
FRAMES_STOP_JS = "() => { const b = window.__benchFrames; b.stop = true; return b.times; }"


@contextlib.contextmanager
def streamlit_server(script: str, artifacts: Path, log: Path):
    """``streamlit run script`` on a free port of 127.0.0.1 over ``artifacts``; yields ``(url, process)`` and
    stops the server afterwards, also on errors."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TIMBRE_ARTIFACTS": str(artifacts), "PYTHONPATH": str(ROOT)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port), "--server.address",
             "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_healthy(url, proc, log)
        yield url, proc
    finally:
        stop(proc)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def chromium(*, timeout_ms: int, compositing: str = "software"):
    """Headless Debian Chromium through Playwright (``compositing``: a key of :data:`COMPOSITING`); yields a
    browser context, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS + COMPOSITING[compositing])
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(timeout_ms)
            yield context
        finally:
            browser.close()


class Reruns:
    """The Streamlit reruns a page asks for, read from the BackMsgs it sends on its websocket, and the bytes it
    receives (the map's data arrives that way)."""

    def __init__(self, page):
        from streamlit.proto.BackMsg_pb2 import BackMsg

        self._parse, self.sent, self.received = BackMsg.FromString, [], []
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        socket.on("framesent", self._sent)
        socket.on("framereceived", self._received)

    def _sent(self, payload) -> None:
        if isinstance(payload, bytes):
            with contextlib.suppress(Exception):
                self.sent.append((time.perf_counter(), self._parse(payload).WhichOneof("type")))

    def _received(self, payload) -> None:
        self.received.append((time.perf_counter(), len(payload)))

    @property
    def received_bytes(self) -> int:
        return sum(size for _, size in self.received)

    def count(self, since: float) -> int:
        return sum(kind == "rerun_script" and at >= since for at, kind in self.sent)


# Each websocket message as the page takes it (its own clock, ms after the navigation's start, and its bytes):
# Playwright's frame events reach Python later, the more so the larger the frame (its payload is copied there).
MESSAGES_JS = """(() => { const Socket = window.WebSocket; window.__benchMessages = [];
  window.WebSocket = class extends Socket { constructor(...args) { super(...args);
    this.addEventListener('message', (e) => window.__benchMessages.push(
      [performance.now(), e.data.byteLength ?? e.data.size ?? e.data.length])); } }; })();"""


def arrivals(page) -> dict:
    """Seconds after the navigation's start until the page took its first websocket message (the session is up)
    and its largest (the map's data), by the page's own clock (:data:`MESSAGES_JS` installed before it loaded)."""
    messages = page.evaluate("() => window.__benchMessages || []")
    if not messages:
        return {"connected_s": None, "data_s": None}
    largest = max(messages, key=lambda item: item[1])[0]
    return {"connected_s": round(messages[0][0] / 1e3, 2), "data_s": round(largest / 1e3, 2)}


def frame_figures(times: list[float]) -> dict:
    """Frames per second and the longest frame from requestAnimationFrame timestamps (ms)."""
    if len(times) < 2:
        return {"fps": 0.0, "frames": len(times), "longest_frame_ms": None}
    gaps = [b - a for a, b in zip(times, times[1:])]
    return {"fps": round((len(times) - 1) / (times[-1] - times[0]) * 1e3, 1), "frames": len(times),
            "longest_frame_ms": round(max(gaps), 1)}


def browser_processes() -> dict[str, list[psutil.Process]]:
    """This process's Chromium children by role: ``renderer``, ``gpu`` and ``other`` (browser, utilities)."""
    roles: dict[str, list[psutil.Process]] = {"renderer": [], "gpu": [], "other": []}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.cmdline())
            if "chrom" not in proc.name().lower() and "chrom" not in cmd:
                continue
            role = "renderer" if "--type=renderer" in cmd else "gpu" if "--type=gpu-process" in cmd else "other"
            roles[role].append(proc)
    return roles


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return round(total / 1e6, 1)


def page_metrics(cdp) -> dict[str, float]:
    """Chromium's ``Performance.getMetrics`` of a page (JSHeapUsedSize, TaskDuration, ScriptDuration, ...)."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


class CpuWindow:
    """Where the time of a gesture went: the page's main thread (tasks, script, layout, paint as Chromium counts
    them) and the CPU time of the renderer and GPU processes (SwiftShader rasterises in the GPU process)."""

    def __init__(self, cdp):
        self.cdp = cdp

    def __enter__(self):
        self.roles = browser_processes()
        self.metrics = page_metrics(self.cdp)
        self.cpu = {role: cpu_seconds(procs) for role, procs in self.roles.items()}
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.started
        after = page_metrics(self.cdp)
        busy = {key: round(after[key] - self.metrics[key], 2) for key in
                ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration") if key in after}
        self.figures = {"wall_s": round(wall, 2), "main_thread_s": busy,
                        "cpu_s": {role: round(cpu_seconds(procs) - self.cpu[role], 2)
                                  for role, procs in self.roles.items()}}


def memory(cdp, server: subprocess.Popen) -> dict:
    """The tab's JS heap, the browser's renderer and GPU processes' RSS, the Streamlit server's RSS (MB)."""
    roles = browser_processes()
    return {"js_heap_mb": round(page_metrics(cdp)["JSHeapUsedSize"] / 1e6, 1), "renderer_rss_mb":
            rss_mb(roles["renderer"]), "gpu_rss_mb": rss_mb(roles["gpu"]),
            "server_rss_mb": rss_mb([psutil.Process(server.pid)])}
