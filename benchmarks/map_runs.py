"""Synthetic runs for the map benchmark (:mod:`benchmarks.bench_map`), built fast and cached.

A run of ``n`` tracks: the clustered 128-d unit embeddings of :func:`benchmarks.synthetic.synthetic_embeddings`, the
track table of :func:`benchmarks.scale_maps.synthetic_tracks`, the real PCA, and for t-SNE and UMAP no fit at all:
each cluster is a 2-D Gaussian blob at a random centre (what a fitted map of clustered embeddings looks like), so a
million-track run is written in about a minute. Each size is an artifacts folder of its own,
``<artifacts>/bench/map/<n>/`` holding ``runs/synthetic-map-<n>``, so a server pointed at it (``TIMBRE_ARTIFACTS``)
opens that run and nothing else; it is built once and reused while its ``built.json`` matches.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

BUILD_VERSION = 1  # raise when what is written changes: cached runs of another version are built again
MAP_SPAN = 100.0  # blob centres fall in [-MAP_SPAN / 2, MAP_SPAN / 2]^2, about the extent of a UMAP map
BLOB_SIGMA = (0.4, 2.0)  # each cluster's spread, drawn uniformly: tight and loose clusters, as on real maps
IN_PROCESS_MAX = 50_000  # smaller runs are built in the caller's process (a spawned one takes seconds to start)


def run_id(n: int) -> str:
    return f"synthetic-map-{n}"


def cache_root(n: int) -> Path:
    """The artifacts folder of the ``n``-track run (under the project's artifacts, ``TIMBRE_ARTIFACTS``-aware)."""
    from core.base.paths import artifacts_dir

    return artifacts_dir() / "bench" / "map" / str(n)


def blob_coords(cluster: np.ndarray, *, seed: int) -> np.ndarray:
    """Each track at its cluster's 2-D Gaussian blob.

    Parameters
    ----------
    cluster : np.ndarray [shape=(n,), dtype=int]
    seed : int

    Returns
    -------
    np.ndarray [shape=(n, 2), dtype=float32]
    """
    rng = np.random.default_rng(seed)
    k = int(cluster.max()) + 1
    centres = rng.uniform(-MAP_SPAN / 2, MAP_SPAN / 2, (k, 2)).astype(np.float32)
    sigma = rng.uniform(*BLOB_SIGMA, k).astype(np.float32)
    noise = rng.standard_normal((len(cluster), 2), dtype=np.float32)
    return centres[cluster] + noise * sigma[cluster, None]


def build_run(n: int, root: Path, *, seed: int = 0) -> Path:
    """Write the ``n``-track run under ``root`` (its artifacts folder), atomically: built in ``root.partial``,
    then renamed. Returns ``root``."""
    from benchmarks.scale_maps import synthetic_tracks, write_synthetic_run
    from benchmarks.synthetic import synthetic_embeddings
    from core.search.projection import FIT_SAMPLE, fit_pca

    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    x, cluster = synthetic_embeddings(n, seed=seed)
    pca, fit = fit_pca(x)
    fit = fit.fitted_on(np.arange(min(n, FIT_SAMPLE)))
    tracks = synthetic_tracks(cluster)
    coords = pd.DataFrame({"track_id": tracks["track_id"], "pca_x": pca[:, 0], "pca_y": pca[:, 1]})
    for offset, method in enumerate(("tsne", "umap"), start=1):
        xy = blob_coords(cluster, seed=seed + offset)
        coords[f"{method}_x"], coords[f"{method}_y"] = xy[:, 0], xy[:, 1]
    write_synthetic_run(partial / "runs", run_id(n), embeddings=x, tracks=tracks, coords=coords, fit=fit)
    (partial / "built.json").write_text(json.dumps({"n": n, "seed": seed, "version": BUILD_VERSION}))
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def is_built(root: Path, n: int, *, seed: int = 0) -> bool:
    try:
        built = json.loads((root / "built.json").read_text())
    except (OSError, ValueError):
        return False
    return built == {"n": n, "seed": seed, "version": BUILD_VERSION} and (root / "runs" / run_id(n)).is_dir()


def synthetic_run(n: int, *, seed: int = 0, log=print) -> Path:
    """The artifacts folder of the cached ``n``-track run, built first when it is missing or stale (above
    :data:`IN_PROCESS_MAX` tracks in a process of its own, so its memory is returned)."""
    root = cache_root(n)
    if is_built(root, n, seed=seed):
        return root
    log(f"building a synthetic run of {n:,} tracks in {root} ...")
    if n <= IN_PROCESS_MAX:
        return build_run(n, root, seed=seed)
    worker = multiprocessing.get_context("spawn").Process(target=build_run, args=(n, root), kwargs={"seed": seed})
    worker.start()
    worker.join()
    if worker.exitcode != 0 or not is_built(root, n, seed=seed):
        raise RuntimeError(f"building the synthetic {n:,}-track run in {root} failed (exit code {worker.exitcode})")
    return root
