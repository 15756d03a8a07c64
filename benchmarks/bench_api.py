"""REST API benchmark: recommend for a 30 s MP3 against a 10,000-track run, over HTTP and by calling core directly.

    .venv/bin/python -m benchmarks.bench_api [--files 8] [--library 10000] [--workers 1 2] [--clients 20]

1. sequential: one client, ``POST /runs/default/recommend`` (upload, temp file, decode, embed, search, JSON)
   against ``python -m api`` on 127.0.0.1, each request beside a direct ``core.service.query.recommend_file`` call in
   this process (the run loaded once), in the main thread and in a worker thread as the server calls it;
   overhead = (HTTP median - direct median) / direct median;
2. concurrent: ``--clients`` clients at once, ``--rounds`` requests each: throughput, latency median / max,
   and how many requests got a 200 (none may be lost).

The run reuses ``bench_pipeline``: a few MP3s (emotify-dev when present) ingested and trained for one epoch (the
default architecture), then a copy with 10,000 random unit embeddings (``fake_library``).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# first: importing bench_pipeline sets TIMBRE_ARTIFACTS to a temp folder
from benchmarks.bench_pipeline import ROOT, fake_library, mp3_library, timed


def build_run(n_files: int, n_tracks: int):
    """A ``n_tracks`` run with the default model, and a 30 s stereo 44.1 kHz MP3 query."""
    import soundfile as sf

    from core.audio.decode import load_audio
    from core.data.ingest import IngestConfig, ingest
    from core.runs.build import train_run
    from core.runs.folder import load_run
    from core.training.config import TrainConfig

    folder = mp3_library(n_files, Path(tempfile.mkdtemp()) / "mp3")
    ingest(folder, "bench_api", config=IngestConfig(features=False))
    big = fake_library(load_run(train_run("bench_api", cfg=TrainConfig(epochs=1))), n_tracks)
    query = Path(tempfile.mkdtemp()) / "query30.mp3"
    y = load_audio(sorted(folder.rglob("*.mp3"))[0], sr=44100, max_seconds=30.0)
    sf.write(query, np.stack([y, y], axis=1), 44100, format="MP3")
    return big, query


def summary(seconds: list[float]) -> dict:
    return {"n": len(seconds), "median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3)}


def direct_call(run, query: Path):
    """The core call the endpoint makes, in this process (the run loaded and warmed once)."""
    from core.service.query import recommend_file
    from core.service.service import warm_up

    warm_up(run)
    return lambda: recommend_file(run, query, k=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_id: str, workers: int, log: Path):
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--run", run_id, "--workers",
                               str(workers), "--log-level", "warning"], cwd=ROOT, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT, env={**os.environ, "TIMBRE_API_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(url + "/health", timeout=2).raise_for_status()
            # with several workers /health may be answered by one that is ready: ask a few times
            if all(httpx.get(url + "/health", timeout=60).status_code == 200 for _ in range(2 * workers)):
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the API server did not come up; see {log}")


def stop(server) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def bench_http(url: str, data: bytes, direct, *, repeats: int, clients: int, rounds: int) -> dict:
    """Sequential requests, each beside a direct call (alternated, so both see the same machine load), then
    ``clients`` concurrent clients."""
    import httpx

    def post(client) -> tuple[int, float]:
        start = time.perf_counter()
        try:
            response = client.post(url + "/runs/default/recommend", files={"file": ("query30.mp3", data)},
                                   data={"k": "5"}, timeout=300)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        return status, time.perf_counter() - start

    with httpx.Client() as client:
        post(client)  # warm-up (connection, first request of the worker)
        sequential, direct_s, direct_thread_s = [], [], []
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            for _ in range(repeats):
                direct_s.append(timed(direct)[1])
                # as the server runs it: FastAPI calls a sync endpoint in a worker thread (torch's OpenMP
                # threads behave differently there on a loaded machine, so both baselines are reported)
                direct_thread_s.append(thread.submit(timed, direct).result()[1])
                sequential.append(post(client))

    def one_client(_) -> list[tuple[int, float]]:
        with httpx.Client() as client:
            return [post(client) for _ in range(rounds)]

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [r for batch in pool.map(one_client, range(clients)) for r in batch]
    wall = time.perf_counter() - start
    ok = [s for status, s in results if status == 200]
    return {"direct": summary(direct_s), "direct_in_worker_thread": summary(direct_thread_s),
            "sequential": summary([s for _, s in sequential]) | {"ok": sum(st == 200 for st, _ in sequential)},
            "concurrent": summary([s for _, s in results]) | {
                "clients": clients, "requests": len(results), "ok": len(ok),
                "wall_s": round(wall, 2), "requests_per_s": round(len(results) / wall, 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8, help="MP3 files the run's model is trained on")
    parser.add_argument("--library", type=int, default=10_000, help="tracks in the run queried")
    parser.add_argument("--repeats", type=int, default=15, help="sequential requests (and direct calls)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=2, help="requests per concurrent client")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to try")
    parser.add_argument("--out", default=None, help="write the figures as JSON here too")
    args = parser.parse_args()

    run, query = build_run(args.files, args.library)
    results: dict = {"machine": f"{os.cpu_count()} cores", "library_tracks": args.library, "query": "30 s MP3 44.1 kHz stereo"}
    direct = direct_call(run, query)
    data = query.read_bytes()
    for workers in args.workers:
        server, url = start_server(run.run_id, workers, Path(tempfile.mkdtemp()) / "server.log")
        try:
            figures = bench_http(url, data, direct, repeats=args.repeats, clients=args.clients, rounds=args.rounds)
        finally:
            stop(server)
        for baseline in ("direct", "direct_in_worker_thread"):
            base = figures[baseline]["median_s"]
            figures[f"overhead_pct_vs_{baseline}"] = round(100 * (figures["sequential"]["median_s"] - base) / base, 1)
        results[f"http_{workers}_workers"] = figures
        print(f"http, {workers} worker(s)", json.dumps(figures), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
