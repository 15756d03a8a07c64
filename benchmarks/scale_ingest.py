"""Ingest and log-mel storage at scale, each figure beside its naive reference.

    flock /tmp/heavy.lock .venv/bin/python -m benchmarks.scale_ingest [--sizes 10000,100000] [--files 200]

Called by ``python -m benchmarks.bench_scale --only ingest`` through :func:`run`. Sections:

1. ``ingest``: 200 real files (../shared/data/emotify-dev, else synthetic MP3s) ingested by the local process
   pool (the reference) and by Ray (local, all cores; with and without its start-up); both datasets compared.
2. ``mel_store``: training's random chunk reads (128 frames of a random track, as ``ChunkSampler``) from shards
   vs one ``.npy`` per track (the old layout), with the page cache dropped for those files first (cold) and
   again warm; plus opening every track's log-mel.
3. ``index``: what a re-ingest holds for N tracks (10k ... 1M synthetic index lines of the real size, 90
   features each): read time and memory held by :func:`core.data.ingest._read_index` vs the naive read (every line
   a dict, the file read whole; only up to 100k), and opening ``mels/refs.parquet`` + 10,000 look-ups (dict vs
   pandas ``.loc``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TIMBRE_ARTIFACTS", tempfile.mkdtemp(prefix="timbre-bench-"))
NAIVE_INDEX_MAX = 100_000  # the naive read of 1M lines would need ~10 GB


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start  # unrounded: many tiny timings are summed


# --- 1. pool vs Ray -------------------------------------------------------------------------------------------

def ingest_engines(n_files: int = 200) -> dict:
    from benchmarks.bench_pipeline import mp3_library
    from core.data.dataset import load_dataset
    from core.data.engines import ray_session
    from core.data.ingest import IngestConfig, ingest

    folder = mp3_library(n_files, Path(tempfile.mkdtemp(prefix="scale-ingest-")) / "lib")
    pool, pool_s = _timed(lambda: ingest(folder, "scale_pool", config=IngestConfig()))
    cold, ray_cold_s = _timed(lambda: ingest(folder, "scale_ray_cold", config=IngestConfig(engine="ray")))
    with ray_session() as ray:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        warm, ray_warm_s = _timed(lambda: ingest(folder, "scale_ray", config=IngestConfig(engine="ray")))
    a, b = load_dataset("scale_pool"), load_dataset("scale_ray")
    same = (sorted(a.tracks["track_id"]) == sorted(b.tracks["track_id"])
            and all(np.array_equal(a.mel(t), b.mel(t)) for t in a.tracks["track_id"]))
    audio_min = pool.audio_seconds / 60
    return {
        "files": n_files, "tracks": pool.n_tracks, "audio_minutes": round(audio_min, 1), "cpus": os.cpu_count(),
        "ray_cpus": cpus, "pool_s": round(pool_s, 1), "ray_with_startup_s": round(ray_cold_s, 1), "ray_started_s": round(ray_warm_s, 1),
        "pool_files_per_s": round(pool.n_tracks / pool_s, 2),
        "ray_files_per_s": round(warm.n_tracks / ray_warm_s, 2),
        "ray_vs_pool": round(pool_s / ray_warm_s, 2), "ray_startup_s": round(ray_cold_s - ray_warm_s, 1),
        "identical_datasets": bool(same and cold.n_tracks == pool.n_tracks),
    }


# --- 2. shards vs one file per track --------------------------------------------------------------------------

def _evict(paths) -> None:
    """Drop these files from the page cache (the next read comes from disk)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _chunks(mels: list, n: int, frames: int, rng) -> float:
    """Chunks per second: ``n`` random (track, start) reads converted to float32, as training draws them."""
    start = time.perf_counter()
    for i in rng.integers(0, len(mels), size=n):
        mel = mels[i]
        s = int(rng.integers(0, mel.shape[1] - frames))
        np.asarray(mel[:, s:s + frames], dtype=np.float32)
    return round(n / (time.perf_counter() - start), 1)


def store_read(n_tracks: int = 2000, n_frames: int = 1292, n_mels: int = 128, n_chunks: int = 5000,
               frames: int = 128) -> dict:
    from core.data.shards import MelStore, ShardWriter, shard_numbers, shard_path, write_refs

    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="scale-store-"))
    old, new = folder / "old", folder / "new"
    old.mkdir(), new.mkdir()
    writer, lines = ShardWriter(new, first=0, max_seconds=float("inf")), []
    ids = [f"{i:016x}" for i in range(n_tracks)]
    write_s = {"old": 0.0, "shards": 0.0}
    for tid in ids:
        mel = rng.normal(-40, 15, size=(n_mels, n_frames)).astype(np.float16)
        write_s["old"] += _timed(lambda: np.save(old / f"{tid}.npy", mel))[1]
        added, took = _timed(lambda: writer.add({"track_id": tid, "n_frames": n_frames}, mel))
        lines += added
        write_s["shards"] += took
    lines += writer.flush()
    write_refs(new, lines)
    files = {"old": sorted(old.glob("*.npy")), "shards": [shard_path(new, n) for n in shard_numbers(new)]}

    def open_all(kind):
        if kind == "old":
            return [np.load(old / f"{t}.npy", mmap_mode="r") for t in ids]
        store = MelStore(new)
        return [store.mel(t) for t in ids]

    out = {"tracks": n_tracks, "frames_per_track": n_frames, "chunk_frames": frames, "chunks": n_chunks}
    for kind in ("old", "shards"):
        _evict(files[kind])
        mels, open_s = _timed(lambda: open_all(kind))
        cold = _chunks(mels, n_chunks, frames, np.random.default_rng(1))
        warm = _chunks(mels, n_chunks, frames, np.random.default_rng(2))
        out[kind] = {"files": len(files[kind]), "write_s": round(write_s[kind], 2), "open_all_s": round(open_s, 3),
                     "cold_chunks_per_s": cold, "warm_chunks_per_s": warm}
    out["cold_speedup"] = round(out["shards"]["cold_chunks_per_s"] / out["old"]["cold_chunks_per_s"], 2)
    out["open_speedup"] = round(out["old"]["open_all_s"] / max(out["shards"]["open_all_s"], 1e-6), 2)
    return out


# --- 3. the re-ingest bookkeeping at 10k ... 1M tracks --------------------------------------------------------

def _index_line(i: int, names: list[str], rng) -> str:
    return json.dumps({
        "track_id": f"{i:016x}", "duration_s": 30.0, "n_frames": 1292, "samplerate": 44100, "channels": 2,
        "features": dict(zip(names, rng.normal(size=len(names)).round(6).tolist())), "features_version": 3,
        "relpath": f"genre{i % 16}/artist {i // 100}/track {i}.mp3",
        "path": f"/data/library/genre{i % 16}/artist {i // 100}/track {i}.mp3", "size": 480_000 + i,
        "mtime_ns": 1_700_000_000_000_000_000 + i,
        "key": json.dumps({"mel": {"sr": 22050, "n_fft": 2048, "hop_length": 512, "n_mels": 128}, "max_seconds": 600.0}),
        "shard": i // 1000, "start": (i % 1000) * 1292})


MEASURE = """
import json, resource, sys, time
from pathlib import Path
from core.data.ingest import _read_index
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
before = rss_mb()
start = time.perf_counter()
if sys.argv[2] == "slim":
    entries = _read_index(Path(sys.argv[1]))
else:  # what it did before: the file read whole, every line a dict
    entries = {}
    for raw in open(sys.argv[1]).read().splitlines():
        line = json.loads(raw)
        entries[line["track_id"]] = line
took = time.perf_counter() - start
print(json.dumps({"s": round(took, 2), "held_mb": round(rss_mb() - before), "n": len(entries),
                  "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def index_scale(n: int) -> dict:
    import pandas as pd

    from core.data.shards import REFS_FILE, MelStore

    rng = np.random.default_rng(0)
    names = [f"feature_{k}" for k in range(90)]
    folder = Path(tempfile.mkdtemp(prefix="scale-index-"))
    path = folder / "index.jsonl"
    with open(path, "w") as f:
        for i in range(n):
            f.write(_index_line(i, names, rng) + "\n")
    out = {"tracks": n, "index_mb": round(path.stat().st_size / 2**20)}
    for mode in ("slim",) + (("naive",) if n <= NAIVE_INDEX_MAX else ()):
        res = subprocess.run([sys.executable, "-c", MEASURE, str(path), mode], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        got = json.loads(res.stdout.splitlines()[-1])
        out[f"read_{mode}_s"], out[f"{mode}_held_mb"], out[f"{mode}_max_rss_mb"] = got["s"], got["held_mb"], got["max_rss_mb"]
    path.unlink()
    pd.DataFrame({"track_id": [f"{i:016x}" for i in range(n)], "shard": np.arange(n) // 1000,
                  "start": (np.arange(n) % 1000) * 1292, "n_frames": 1292}).to_parquet(folder / REFS_FILE)
    store, took = _timed(lambda: MelStore(folder))
    out["refs_open_s"] = round(took, 3)
    ids = [f"{i:016x}" for i in rng.integers(0, n, size=10_000)]
    _, took = _timed(lambda: [store._row[t] for t in ids])
    table = store.refs.set_index("track_id")
    _, naive = _timed(lambda: [table.loc[t, ["shard", "start", "n_frames"]] for t in ids[:200]])
    out["refs_lookup_us"] = round(took / len(ids) * 1e6, 2)
    out["naive_pandas_loc_lookup_us"] = round(naive / 200 * 1e6, 1)
    return out


def run(sizes: list[int], out: dict, *, n_files: int = 200) -> None:
    """Fill ``out`` with the three sections (see the module docstring)."""
    out["ingest"] = ingest_engines(n_files)
    out["mel_store"] = store_read()
    out["index"] = {str(n): index_scale(n) for n in sizes}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--only", default="ingest,store,index")
    args = parser.parse_args(argv)
    sizes, only, out = [int(s) for s in args.sizes.split(",") if s], args.only.split(","), {}
    if "ingest" in only:
        out["ingest"] = ingest_engines(args.files)
    if "store" in only:
        out["mel_store"] = store_read()
    if "index" in only:
        out["index"] = {str(n): index_scale(n) for n in sizes}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
