"""The WebSocket ``/runs/{run}/listen`` against a real ``python -m api`` (uvicorn on 127.0.0.1): a library track
streamed as 16 kHz PCM is identified, and every bound (rate, stream length, open connections, the API key)
refuses with a message that says why."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from core.audio.decode import load_audio
from core.base.paths import REPO_ROOT as ROOT
from core.runs.folder import load_run
from tests.processes import free_port, stop

RATE = 16_000
KEY = "listen-test-key"


@pytest.fixture(scope="module")
def server(tiny_run_id, tmp_path_factory):
    """``python -m api`` on the tiny run with room for 2 live streams of 12 s, and an API key."""
    run = load_run(tiny_run_id)
    port, log_dir = free_port(), tmp_path_factory.mktemp("api-listen")
    env = {**os.environ, "TIMBRE_API_KEY": KEY}
    with open(log_dir / "server.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--run", str(run.path),
                                    "--listen-slots", "2", "--listen-seconds", "12", "--log-level", "warning"],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield f"ws://127.0.0.1:{port}", run
    finally:
        stop(process)


def wait_ready(url: str, process, *, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            httpx.get(url + "/health", headers={"X-API-Key": KEY}, timeout=2.0).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url}/health within {seconds:g} s")


def pcm(y: np.ndarray) -> bytes:
    return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()


def open_stream(url: str, query: str = f"rate={RATE}&channels=1&k=3", *, key: str = KEY):
    return connect(f"{url}/runs/default/listen?{query}", additional_headers={"X-API-Key": key}, open_timeout=30,
                   close_timeout=5)


def messages(socket) -> list[dict]:
    out = []
    try:
        while True:
            out.append(json.loads(socket.recv(timeout=60)))
    except Exception:  # the server closed the stream
        return out


def test_a_streamed_library_track_is_identified(server):
    url, run = server
    y = load_audio(run.tracks["path"].iloc[5], sr=RATE)
    with open_stream(url) as socket:
        ready = json.loads(socket.recv(timeout=30))
        assert ready["type"] == "ready" and ready["rate"] == RATE and ready["max_seconds"] == 12
        assert ready["fingerprints"] is True
        for i in range(0, len(y), RATE // 5):  # 200 ms frames, as fast as the server takes them
            socket.send(pcm(y[i:i + RATE // 5]))
        socket.send("stop")
        updates = messages(socket)
    assert {u["type"] for u in updates} == {"update"} and len(updates) >= 6
    seconds = [u["seconds"] for u in updates]  # one update per second of audio at most, the last at the end
    assert min(np.diff(seconds[:-1])) >= 1.0 and seconds[-1] == pytest.approx(8.0, abs=0.05)
    last = updates[-1]
    assert len(last["top"]) == 3 and last["top"][0]["track_id"] == run.tracks["track_id"].iloc[5]
    assert last["identified"] == run.tracks["track_id"].iloc[5] and last["identified_seconds"] <= 8
    assert last["top"][0]["votes"] >= 10 * max(last["top"][1]["votes"], 1)  # the fingerprint stage, through the API
    assert set(last["positions"]) == {"pca", "tsne", "umap"}


def test_bounds_refuse_with_a_reason(server):
    url, run = server
    with open_stream(url, "rate=100&channels=1") as socket:
        assert "rate must be" in messages(socket)[0]["detail"]
    with open_stream(url) as socket:  # 12 s at most per connection
        socket.recv(timeout=30)
        second = pcm(np.zeros(RATE))
        for _ in range(13):
            try:
                socket.send(second)
            except Exception:
                break
        got = messages(socket)
    assert got[-1]["type"] == "error" and "stream too long" in got[-1]["detail"]
    assert socket.close_code == 1009
    with open_stream(url) as a, open_stream(url) as b:  # two slots: a third is busy
        a.recv(timeout=30), b.recv(timeout=30)
        with open_stream(url) as c:
            refused = messages(c)
        assert "already listens to 2 streams" in refused[0]["detail"] and c.close_code == 1013
    with pytest.raises(InvalidStatus):  # the API key holds for WebSockets too
        open_stream(url, key="wrong").recv(timeout=10)
    with open_stream(url) as socket:
        socket.recv(timeout=30)
        socket.send(b"\x00\x01\x02")  # not whole 16-bit frames
        assert "whole frames" in messages(socket)[0]["detail"]
