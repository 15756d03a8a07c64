"""The API's resident memory after bursts of large uploads, glibc's malloc as it is beside ours (api/memory.py).

    .venv/bin/python -m benchmarks.bench_api_memory [--run RUN] [--files 10] [--bursts 3] [--seconds 120] [--json]

One small FLAC that decodes to a lot (``--seconds`` at 192 kHz x 8 channels, a tone then quiet; 120 s is 737 MB
as float32) is made once. For each mode a fresh ``python -m api`` on 127.0.0.1 serves ``--run`` (default: the
newest run): its resident memory (VmRSS of the server process) is read idle after one warm-up query, then after
each burst of ``--files`` concurrent ``POST /runs/default/recommend`` uploads of that file (all answered, 2 s
settled). Modes: ``reference`` (``TIMBRE_API_MALLOC=default``: an arena per decoding thread, nothing trimmed),
``ours`` (arenas bounded, freed pages returned after each audio query).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODES = {"reference": {"TIMBRE_API_MALLOC": "default"}, "ours": {}}


def decompression_sized_flac(path: Path, *, seconds: int, sr: int = 192_000, channels: int = 8) -> Path:
    """``seconds`` of ``sr`` x ``channels`` as 16-bit FLAC: a 1 s tone every 10 s, silence between (a small
    file: FLAC stores silence in a few bytes a block)."""
    import soundfile as sf

    t = np.arange(sr) / sr
    with sf.SoundFile(path, "w", samplerate=sr, channels=channels, format="FLAC", subtype="PCM_16") as f:
        for second in range(seconds):
            block = 0.4 * np.sin(2 * np.pi * (220 + 20 * (second // 10)) * t) if second % 10 == 0 else 0.0 * t
            f.write(np.repeat(block[:, None].astype(np.float32), channels, axis=1))
    return path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(run: str, env: dict, log: Path):
    import httpx

    with socket.socket() as s:  # a free port of 127.0.0.1
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--run", run, "--log-level",
                               "warning"], cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              env={**os.environ, "TIMBRE_API_KEY": "", **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(url + "/health", timeout=2).raise_for_status()
            return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the API server did not come up; see {log}")


def burst(url: str, data: bytes, n: int) -> list[int]:
    import httpx

    def ask(_):
        return httpx.post(f"{url}/runs/default/recommend", files={"file": ("big.flac", data)}, data={"k": "3"},
                          timeout=600).status_code

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(ask, range(n)))


def measure(mode: str, run: str, flac: Path, *, files: int, bursts: int, log: Path) -> dict:
    server, url = start_server(run, MODES[mode], log)
    try:
        data = flac.read_bytes()
        statuses = burst(url, data, 1)  # warm-up: decoder libraries and the model's first pass loaded
        time.sleep(2)
        figures = {"idle_mb": round(rss_mb(server.pid))}
        after = []
        for _ in range(bursts):
            statuses += burst(url, data, files)
            time.sleep(2)
            after.append(round(rss_mb(server.pid)))
        figures.update(after_bursts_mb=after, growth_mb=after[-1] - figures["idle_mb"],
                       statuses=sorted(set(statuses)))
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="run to serve (default: the newest)")
    parser.add_argument("--files", type=int, default=10, help="concurrent uploads per burst")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=120, help="length of the upload at 192 kHz x 8 channels")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    from core.runs.folder import resolve_run

    run = str(resolve_run(args.run).path)
    folder = Path(tempfile.mkdtemp(prefix="bench-api-memory-"))
    flac = decompression_sized_flac(folder / "big.flac", seconds=args.seconds)
    out = {"upload_mb": round(flac.stat().st_size / 2**20, 2), "decoded_mb": round(args.seconds * 192_000 * 8 * 4 / 2**20),
           "files": args.files, "bursts": args.bursts}
    for mode in MODES:
        out[mode] = measure(mode, run, flac, files=args.files, bursts=args.bursts, log=folder / f"{mode}.log")
        if not args.json:
            print(mode, out[mode], flush=True)
    print(json.dumps(out) if args.json else f"upload {out['upload_mb']} MB, {out['decoded_mb']} MB decoded")


if __name__ == "__main__":
    main()
