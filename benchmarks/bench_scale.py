"""Libraries of 10k to 1M tracks: search, maps and ingest, each figure beside a naive reference
measured in the same run (this machine is shared and noisy: the ratios hold, the absolute times drift).

    .venv/bin/python -m benchmarks.bench_scale [--only index,maps,ingest] [--sizes 10000,100000,1000000]
                                               [--queries 200] [--json results.json]

Sections:

* ``index`` (here): for each size, in a subprocess of its own (so its peak memory is its own), synthetic
  embeddings (:func:`benchmarks.synthetic.synthetic_embeddings`: a long-tailed mixture of Gaussians on the sphere, d=128)
  and a track table (8 labels with shares from 30 % to 1 %) written as a run folder; then

  - ``build_s``: :func:`core.search.ann.index_run` (IVF-Flat training, adding, nprobe calibration, writing);
  - ``ann_ms``: one query (a library track plus a little noise) through :meth:`AnnIndex.search`, median and p95;
  - ``exact_ms`` (the naive reference): exact numpy on the pre-normalised library, ``q @ X.T`` then
    ``argpartition``, the same queries;
  - ``recall_at_10`` of the index against that exact answer;
  - end to end through ``core.service.query.similar_tracks(run, row, k=10)`` (the call behind the Map page, the API's
    neighbours and the bot): with the run's index (``e2e_ms``) and with the index taken away (``e2e_exact_ms``,
    the code path before the index), and with a label filter through the index (a 30 % label) and exactly (a
    1 % label);
  - ``peak_rss_mb`` of the subprocess (ru_maxrss), beside the embeddings' own size and the index file's.

* ``maps`` and ``ingest``: :mod:`benchmarks.scale_maps` and :mod:`benchmarks.scale_ingest`, each
  ``run(sizes, out)``; a section whose module is missing is skipped with a note.

Run from the repository root, as a module (the benchmarks are a package beside ``core``).

Heavy runs (100k, 1M) go under ``flock /tmp/heavy.lock`` on the shared machine.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the repository: where `-m benchmarks...` runs
LABELS = {"rock": 0.30, "electronic": 0.22, "pop": 0.17, "hiphop": 0.12, "jazz": 0.09, "classical": 0.06,
          "folk": 0.03, "blues": 0.01}


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"median": round(float(np.median(ms)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def timed(fn, items) -> tuple[list, list[float]]:
    """``fn(item)`` for each item, with the wall time of each call."""
    results, times = [], []
    for item in items:
        start = time.perf_counter()
        results.append(fn(item))
        times.append(time.perf_counter() - start)
    return results, times


def write_synthetic_run(folder: Path, x: np.ndarray, *, seed: int) -> None:
    """A run folder that ``core.runs.folder.load_run`` opens: tracks and embeddings real, the model and maps empty
    stand-ins (a search never reads them)."""
    import pandas as pd

    n = len(x)
    rng = np.random.default_rng(seed)
    labels = rng.choice(list(LABELS), size=n, p=list(LABELS.values()))
    ids = np.char.add("t", np.arange(n).astype(str))
    pd.DataFrame({"track_id": ids, "path": np.char.add(np.char.add("/music/", ids), ".mp3"), "label": labels,
                  "duration_s": 30.0, "artist": np.char.add("artist ", (np.arange(n) % 9973).astype(str)),
                  "title": np.char.add("song ", ids)}).to_parquet(folder / "tracks.parquet", index=False)
    np.save(folder / "embeddings.npy", x)
    (folder / "config.json").write_text(json.dumps({"seed": seed}))
    (folder / "metrics.json").write_text("{}")
    for name in ("model.pt", "projections.parquet", "projection.npz"):
        (folder / name).write_bytes(b"")


def index_section(n: int, *, queries: int, seed: int = 0) -> dict:
    """Every figure of the index section for one library size (run in a subprocess of its own)."""
    from benchmarks.synthetic import synthetic_embeddings

    out: dict = {"n_tracks": n}
    start = time.perf_counter()
    x, _ = synthetic_embeddings(n, seed=seed)
    out["generate_s"] = round(time.perf_counter() - start, 2)
    out["embeddings_mb"] = round(x.nbytes / 1e6, 1)
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(n, queries, replace=False)
    q = x[rows] + rng.normal(0, 0.03, (queries, x.shape[1])).astype(np.float32)

    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        return _index_figures(root / "runs" / f"synthetic-{n}", x, q, rows, out, seed=seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # 1 GB at 1M


def _index_figures(folder: Path, x: np.ndarray, q: np.ndarray, rows: np.ndarray, out: dict, *, seed: int) -> dict:
    from core.runs.folder import load_run
    from core.search.ann import index_run, recall_at
    from core.search.exact import cosine_topk
    from core.service.query import similar_tracks

    folder.mkdir(parents=True)
    write_synthetic_run(folder, x, seed=seed)
    start = time.perf_counter()
    ann = index_run(folder, x, force=True, seed=seed)
    out["build_s"] = round(time.perf_counter() - start, 2)
    out["index"] = {k: ann.meta[k] for k in ("kind", "nlist", "nprobe", "calibration", "build_seconds")}
    out["index_file_mb"] = round((folder / "index.faiss").stat().st_size / 1e6, 1)

    found, t_ann = timed(lambda v: ann.search(v[None], k=10)[0][0], q)
    truth, t_exact = timed(lambda v: cosine_topk(x, v[None], k=10, normalised=True)[0][0], q)
    out["ann_ms"], out["exact_ms"] = percentiles(t_ann), percentiles(t_exact)
    out["recall_at_10"] = round(recall_at(np.array(found), np.array(truth)), 4)
    ann = None  # the run below loads its own copy, as a server does

    os.environ["TIMBRE_ARTIFACTS"] = str(folder.parent.parent)
    run = load_run(folder)
    run.index, run.tracks  # noqa: B018  loaded once, as a server's warm-up does
    few = rows[:20]  # the exact end-to-end path takes about a second a query at 1M
    _, t_e2e = timed(lambda r: similar_tracks(run, int(r), k=10), rows)
    _, t_big = timed(lambda r: similar_tracks(run, int(r), k=10, labels="rock"), rows)
    _, t_small = timed(lambda r: similar_tracks(run, int(r), k=10, labels="blues"), rows)
    index = run.index
    run.index = None  # the code path without an index: exact over the whole library
    _, t_e2e_exact = timed(lambda r: similar_tracks(run, int(r), k=10), few)
    run.index = index
    out["e2e_ms"], out["e2e_exact_ms"] = percentiles(t_e2e), percentiles(t_e2e_exact)
    out["filter_30pct_ms"], out["filter_1pct_ms"] = percentiles(t_big), percentiles(t_small)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_index(sizes: list[int], out: dict, *, queries: int) -> None:
    for n in sizes:
        print(f"index: {n:,} tracks ...", flush=True)
        done = subprocess.run([sys.executable, "-m", "benchmarks.bench_scale", "--_index-size", str(n),
                               "--queries", str(queries)], cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            out.setdefault("index", {})[str(n)] = {"error": done.stderr.strip().splitlines()[-1:]}
            print(done.stderr, file=sys.stderr)
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        out.setdefault("index", {})[str(n)] = figures
        print_index(figures)


def print_index(f: dict) -> None:
    speed = f["exact_ms"]["median"] / max(f["ann_ms"]["median"], 1e-9)
    print(f"  build {f['build_s']} s ({f['index']['nlist']} lists, nprobe {f['index']['nprobe']}); "
          f"query {f['ann_ms']['median']} ms median / {f['ann_ms']['p95']} p95 vs exact numpy "
          f"{f['exact_ms']['median']} / {f['exact_ms']['p95']} ms ({speed:.0f}x); recall@10 {f['recall_at_10']}")
    print(f"  similar_tracks end to end {f['e2e_ms']['median']} ms (exact path {f['e2e_exact_ms']['median']} ms); "
          f"label filter 30 % {f['filter_30pct_ms']['median']} ms, 1 % {f['filter_1pct_ms']['median']} ms")
    print(f"  peak RSS {f['peak_rss_mb']} MB (embeddings {f['embeddings_mb']} MB, index file "
          f"{f['index_file_mb']} MB)", flush=True)


def run_module(name: str, sizes: list[int], out: dict) -> None:
    """``benchmarks.<name>``'s ``run(sizes, out)``, or a note when that module is not there."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as missing:
        if missing.name != f"benchmarks.{name}":
            raise
        print(f"{name}: benchmarks/{name}.py is not there yet, section skipped")
        out[name] = {"skipped": f"benchmarks/{name}.py missing"}
        return
    module.run(sizes, out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="index,maps,ingest", help="comma-separated sections")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated library sizes")
    parser.add_argument("--queries", type=int, default=200, help="queries per size (index section)")
    parser.add_argument("--json", default=None, help="also write every figure to this JSON file")
    parser.add_argument("--_index-size", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._index_size:  # the subprocess of one size
        print(json.dumps(index_section(args._index_size, queries=args.queries)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - {"index", "maps", "ingest"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}: choose from index, maps, ingest")
    out: dict = {"sizes": sizes, "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for section in sections:
        if section == "index":
            run_index(sizes, out, queries=args.queries)
        else:
            run_module(f"scale_{section}", sizes, out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
