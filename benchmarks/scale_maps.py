"""Maps at scale, a section of :mod:`benchmarks.bench_scale` (``--only maps``).

For each size, in a fresh process (so its peak memory is its own): synthetic clustered embeddings
(:func:`benchmarks.synthetic.synthetic_embeddings`), the map fit as a run does it (PCA on all, t-SNE and UMAP on at most
:data:`core.search.projection.FIT_SAMPLE` tracks, the rest placed), the quality of the placement (neighbourhood
preservation of held-out tracks), and the Map page's data: the cached loader (:func:`core.analysis.maps.map_points` of a
run folder written with those maps) and one redraw (:func:`core.analysis.maps.map_view` + the figure as JSON) beside the
naive page (every point as a WebGL point, what the page drew before).

Naive reference of the fit: at 10k, a fit on every track beside a fit on a fifth of them (the rest placed);
at 100k and 1M a fit on every track would take far longer than the benchmark's budget on 2 cores
(t-SNE and UMAP grow faster than linearly), so it is not run there and the result says so.

    .venv/bin/python -m benchmarks.scale_maps --sizes 10000,100000
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

QUALITY_QUERIES = 2000  # held-out tracks scored for neighbourhood preservation
SMALL_SAMPLE_SHARE = 5  # at 10k the sampled fit uses a fifth of the tracks (the default sample is all of them)
N_LABELS = 16


def synthetic_library(n: int, *, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Clustered embeddings and their track table (labels: cluster modulo :data:`N_LABELS`, like genres).

    Returns
    -------
    embeddings : np.ndarray [shape=(n, 128), dtype=float32]
    tracks : pd.DataFrame [shape=(n, 6)]
        ``track_id, path, label, duration_s, artist, title``.
    """
    from benchmarks.synthetic import synthetic_embeddings

    x, cluster = synthetic_embeddings(n, seed=seed)
    return x, synthetic_tracks(cluster)


def synthetic_tracks(cluster: np.ndarray) -> pd.DataFrame:
    """The track table of :func:`synthetic_library` for tracks of the given clusters (``cluster``
    [shape=(n,)], as :func:`benchmarks.synthetic.synthetic_embeddings` returns it)."""
    n = len(cluster)
    ids = np.char.add("t", np.arange(n).astype(str).astype(object).astype(str)).astype(object)
    return pd.DataFrame({
        "track_id": ids, "path": "/synthetic/" + pd.Series(ids) + ".mp3",
        "label": pd.array(np.char.add("genre", (cluster % N_LABELS).astype(str)), dtype="string"),
        "duration_s": 30.0, "artist": pd.array(np.char.add("artist ", (cluster % 997).astype(str)), dtype="string"),
        "title": pd.array(ids.astype(str), dtype="string")})


def write_synthetic_run(runs: Path, run_id: str, *, embeddings: np.ndarray, tracks: pd.DataFrame,
                        coords: pd.DataFrame, fit) -> Path:
    """A complete run folder ``runs/run_id`` (what the app opens) with a tiny untrained encoder as its model;
    ``fit`` is the maps' :class:`core.search.projection.MapFit`."""
    from core.audio.features import MelParams
    from core.model.encoder import Encoder, save_model

    folder = runs / run_id
    folder.mkdir(parents=True)
    tracks.to_parquet(folder / "tracks.parquet")
    np.save(folder / "embeddings.npy", embeddings.astype(np.float32))
    coords.to_parquet(folder / "projections.parquet")
    fit.save(folder)
    encoder = Encoder(widths=(4, 8), embedding_dim=embeddings.shape[1])
    save_model(folder / "model.pt", encoder)
    (folder / "metrics.json").write_text(json.dumps({}))
    (folder / "config.json").write_text(json.dumps({
        "run_id": run_id, "dataset": "synthetic", "created": "2026-01-01T00:00:00", "seed": 0,
        "mel_params": MelParams().to_dict(), "chunk_frames": 128, "model_args": encoder.model_args}))
    return folder


def fit_maps(x: np.ndarray, *, sample: int, seed: int = 0) -> tuple[dict, object, dict]:
    """What :func:`core.search.projection.fit_projections` does, timed step by step.

    Returns
    -------
    coords : dict of method -> np.ndarray [shape=(n, 2)]
    map_fit : core.search.projection.MapFit
    seconds : dict of step -> float
    """
    from core.search.projection import fit_pca, fit_sample, fit_tsne, fit_umap, place_rows

    seconds, started = {}, time.perf_counter()
    pca, map_fit = fit_pca(x)
    seconds["pca"] = time.perf_counter() - started
    rows = fit_sample(len(x), sample=sample, seed=seed)
    map_fit = map_fit.fitted_on(rows)
    coords = {"pca": pca}
    for method, fit in (("tsne", fit_tsne), ("umap", fit_umap)):
        started = time.perf_counter()
        coords[method] = fit(x[rows], seed=seed)
        seconds[f"{method}_fit"] = time.perf_counter() - started
    started = time.perf_counter()
    if len(rows) < len(x):
        coords.update(place_rows(x, rows=rows, fitted={m: coords[m] for m in ("tsne", "umap")}))
    seconds["place_rest"] = time.perf_counter() - started
    seconds["total"] = sum(seconds.values())
    return coords, map_fit, seconds


def quality(x: np.ndarray, coords: dict, *, fitted: np.ndarray, held_out: np.ndarray) -> dict:
    """Neighbourhood preservation (k=10) of ``held_out`` rows among ``fitted`` rows on the t-SNE and UMAP maps."""
    from core.search.projection import neighbourhood_preservation

    return {m: round(neighbourhood_preservation(x[held_out], x[fitted], query_xy=coords[m][held_out],
                                                library_xy=coords[m][fitted]), 3) for m in ("tsne", "umap")}


def page_load(runs: Path, run_id: str) -> dict:
    """The Map page's data: the cached loader cold (run folder to points), then one redraw of the default view
    beside the naive figure (every point drawn)."""
    import os

    from core.analysis.maps import map_points, map_view
    from core.runs.folder import load_run
    from ui.figures import map_figure

    os.environ["TIMBRE_ARTIFACTS"] = str(runs.parent)
    started = time.perf_counter()
    run = load_run(run_id)
    points = map_points(run, "umap")
    loader = time.perf_counter() - started
    started = time.perf_counter()
    view = map_view(points)
    spec = map_figure(view.points, method="umap", density=view.density, library=points).to_json()
    redraw = time.perf_counter() - started
    started = time.perf_counter()
    naive = map_figure(points, method="umap").to_json()
    naive_redraw = time.perf_counter() - started
    return {"loader_s": round(loader, 2), "redraw_s": round(redraw, 2), "figure_mb": round(len(spec) / 1e6, 1),
            "drawn_as": "density" if view.density is not None else "points",
            "naive_redraw_s": round(naive_redraw, 2), "naive_figure_mb": round(len(naive) / 1e6, 1)}


def measure(n: int) -> dict:
    """Every figure of one size (run in a process of its own)."""
    from core.search.projection import FIT_SAMPLE, fit_sample

    x, tracks = synthetic_library(n)
    sample = FIT_SAMPLE if n > FIT_SAMPLE else n // SMALL_SAMPLE_SHARE
    coords, map_fit, seconds = fit_maps(x, sample=sample)
    fitted = map_fit.fit_rows
    rest = np.setdiff1d(np.arange(n), fitted)
    held_out = np.sort(np.random.default_rng(1).choice(rest, min(QUALITY_QUERIES, len(rest)), replace=False))
    out = {"n": n, "fit_sample": int(len(fitted)), "sampled_fit_s": {k: round(v, 1) for k, v in seconds.items()},
           "sampled_quality": quality(x, coords, fitted=fitted, held_out=held_out)}
    if n <= FIT_SAMPLE:  # the naive reference: every track fitted
        full, _, full_seconds = fit_maps(x, sample=n)
        out["full_fit_s"] = {k: round(v, 1) for k, v in full_seconds.items()}
        out["full_quality"] = quality(x, full, fitted=fitted, held_out=held_out)
    else:
        out["full_fit_s"] = f"not run: t-SNE and UMAP of {n:,} tracks exceed the benchmark's time on 2 cores"
    assert np.array_equal(fitted, fit_sample(n, sample=sample))
    frame = pd.DataFrame({"track_id": tracks["track_id"]})
    for method, xy in coords.items():
        frame[f"{method}_x"], frame[f"{method}_y"] = xy[:, 0], xy[:, 1]
    root = Path(tempfile.mkdtemp(prefix="scale-maps-"))
    try:
        write_synthetic_run(root / "runs", "synthetic", embeddings=x, tracks=tracks, coords=frame, fit=map_fit)
        del x, coords
        out["page"] = page_load(root / "runs", "synthetic")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    return out


def _measure_into(n: int, queue) -> None:
    queue.put(measure(n))


def run(sizes: list[int], out: dict) -> None:
    """Fill ``out["maps"][str(n)]`` with :func:`measure` of each size, each in a fresh process."""
    results = out.setdefault("maps", {})
    context = multiprocessing.get_context("spawn")
    for n in sizes:
        queue = context.Queue()
        worker = context.Process(target=_measure_into, args=(n, queue))
        worker.start()
        results[str(n)] = queue.get()
        worker.join()
        print(json.dumps({str(n): results[str(n)]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated track counts")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    out: dict = {}
    run([int(s) for s in args.sizes.split(",")], out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
