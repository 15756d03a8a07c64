"""The atlas's data at 10k to 1M tracks (:mod:`core.analysis.atlas`, :mod:`core.analysis.agreement`) and the
placement of tracks beyond the fitted sample on t-SNE / UMAP maps (:mod:`core.search.projection`), each beside a
naive reference in the same run (this machine is shared and noisy: read the ratios).

    .venv/bin/python -m benchmarks.bench_atlas [--only data,agreement,placement] [--sizes 10000,100000,1000000]
                                               [--agreement-sizes 10000,100000] [--placement 20000:5000]
                                               [--json]

Sections, each size in a process of its own (so its peak memory is its own):

* ``data``: a synthetic run (:func:`benchmarks.scale_maps.synthetic_library`, maps = each cluster a 2-D blob),
  with musicnn-like tags and a tempo feature in its dataset and a k-means-like clustering (the synthetic clusters
  folded into 12) stored as the Clusters page stores one; timed: :func:`core.analysis.atlas.map_histograms` with a
  tag, and the tempo codes alone beside a naive reference (a per-track Python loop, ``bisect`` per value),
  :func:`core.analysis.atlas.cluster_labels`, :func:`core.analysis.atlas.projection_quality` cold and cached.
* ``agreement``: two runs of the same tracks (the second's embeddings a noisy copy of the first's):
  :func:`core.analysis.agreement.track_agreement` cold (an IVF index above
  :data:`core.analysis.agreement.EXACT_GRAPH_MAX` shared tracks) and cached, beside the exact blocked search (up
  to 100k).
* ``placement``: ``N:M`` = N synthetic tracks, t-SNE and UMAP fitted on M of them (as a run does with
  :data:`core.search.projection.FIT_SAMPLE`), every unfitted track placed by the previous kernel (the weighted
  mean of all 10 neighbours, inverse squared cosine distance) and by today's
  :func:`core.search.projection.interpolate` (the same search and weights); neighbourhood preservation (k = 10)
  of 2,000 held-out tracks under each, and the seconds each placement of every unfitted track took.
"""
from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CLUSTERS = 12
QUERIES = 2000


CPU = {}  # CPU seconds of the last call of each name timed with _timed(..., name=): the wall time on a shared
# machine counts other people's work too


def _timed(fn, name: str | None = None):
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    if name:
        CPU[name] = round(time.process_time() - cpu, 3)
    return value, round(time.perf_counter() - started, 3)


def _blob_maps(cluster: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-50, 50, (int(cluster.max()) + 1, 2))
    return (centres[cluster] + rng.normal(size=(len(cluster), 2))).astype(np.float32)


def write_atlas_run(root: Path, n: int, *, seed: int = 0, embeddings: np.ndarray | None = None,
                    run_id: str = "synthetic") -> tuple[str, np.ndarray]:
    """A run folder with tags, a tempo feature and a stored clustering; returns the run id and its clusters."""
    from benchmarks.scale_maps import synthetic_library, write_synthetic_run
    from core.analysis.cluster_methods import feature_profile, label_mix
    from core.analysis.clusters import result_name
    from core.analysis.tags import TAGS
    from core.search.projection import fit_pca

    x, tracks = synthetic_library(n, seed=seed)
    x = x if embeddings is None else embeddings
    cluster = (pd.factorize(tracks["label"])[0] % CLUSTERS).astype(int)
    xy = _blob_maps(cluster, seed)
    pca, fit = fit_pca(x)
    fit = fit.fitted_on(np.arange(min(n, 50_000)))
    coords = pd.DataFrame({"track_id": tracks["track_id"], "pca_x": pca[:, 0], "pca_y": pca[:, 1],
                           "tsne_x": xy[:, 0], "tsne_y": xy[:, 1], "umap_x": xy[:, 0], "umap_y": xy[:, 1]})
    folder = write_synthetic_run(root / "runs", run_id, embeddings=x, tracks=tracks, coords=coords, fit=fit)
    rng = np.random.default_rng(seed)
    dataset = root / "datasets" / "synthetic"
    dataset.mkdir(parents=True, exist_ok=True)
    tempo = (90 + 8 * cluster + rng.normal(0, 5, n)).astype(np.float64)
    tempo[rng.random(n) < 0.01] = np.nan
    features = pd.DataFrame({"track_id": tracks["track_id"], "tempo_bpm": tempo,
                             "rms_mean": 0.05 + 0.01 * (cluster % 3) + rng.uniform(0, 0.005, n)})
    features.to_parquet(dataset / "features.parquet")
    likelihood = rng.uniform(0, 0.1, (n, len(TAGS))).astype(np.float32)
    likelihood[np.arange(n), cluster % len(TAGS)] = 0.7  # each cluster's own tag
    tags = pd.DataFrame(likelihood, columns=list(TAGS))
    tags.insert(0, "track_id", tracks["track_id"])
    tags.to_parquet(dataset / "tags.parquet")
    (dataset / "dataset.json").write_text(json.dumps({"kind": "imported"}))
    result = folder / "clusters" / result_name("kmeans", "embeddings")
    result.mkdir(parents=True)
    pd.DataFrame({"track_id": tracks["track_id"], "label": tracks["label"].astype(object), "cluster": cluster,
                  "centre_distance": rng.random(n), "pca_x": 0.0, "pca_y": 0.0}).to_parquet(result / "assignments.parquet")
    label_mix(cluster, tracks["label"].astype(object)).to_parquet(result / "label_mix.parquet")
    feature_profile(cluster, features[["tempo_bpm", "rms_mean"]]).to_parquet(result / "feature_profile.parquet")
    (result / "summary.json").write_text(json.dumps({"method": "kmeans", "input": "embeddings", "k": CLUSTERS}))
    return run_id, cluster


def naive_codes(values: np.ndarray, edges) -> list[int]:
    """The histogram codes one track at a time (the reference for :func:`core.analysis.atlas.binned_codes`)."""
    return [255 if v != v else bisect.bisect_right(edges, v) for v in values.tolist()]


def measure_data(n: int) -> dict:
    from core.analysis.atlas import TEMPO_EDGES, binned_codes, cluster_labels, dataset_feature, map_histograms, projection_quality
    from core.runs.folder import load_run

    root = Path(tempfile.mkdtemp(prefix="bench-atlas-"))
    os.environ["TIMBRE_ARTIFACTS"] = str(root)
    try:
        (run_id, _), build = _timed(lambda: write_atlas_run(root, n))
        run = load_run(run_id)
        _ = run.tracks, run.projections  # the page's cached run: what is timed is the atlas's own work
        hist, hist_s = _timed(lambda: map_histograms(run, tag="rock"), "histograms")
        hist_again, hist_again_s = _timed(lambda: map_histograms(run, tag="rock"), "histograms_warm")
        tempo = dataset_feature(run, "tempo_bpm")
        codes, codes_s = _timed(lambda: binned_codes(tempo, TEMPO_EDGES))
        naive, naive_s = _timed(lambda: naive_codes(tempo, list(TEMPO_EDGES)))
        assert np.array_equal(np.asarray(naive, dtype=np.uint8), codes) and np.array_equal(codes, hist[0]["codes"])
        labels, labels_s = _timed(lambda: cluster_labels(run, "kmeans", "umap"), "cluster_labels")
        _, quality_s = _timed(lambda: projection_quality(run, "umap"), "quality")
        quality, cached_s = _timed(lambda: projection_quality(run, "umap"))
        return {"n": n, "build_s": build, "histograms_s": hist_s, "histograms_warm_s": hist_again_s,
                "histograms": [h["name"] for h in hist_again], "tempo_codes_s": codes_s, "naive_tempo_codes_s": naive_s,
                "cluster_labels_s": labels_s, "labels": [lab["text"] for lab in labels[:3]],
                "quality_s": quality_s, "quality_cached_s": cached_s, "trustworthiness": round(quality["value"], 3),
                "cpu_s": dict(CPU),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure_agreement(n: int) -> dict:
    import core.analysis.agreement as agreement
    from core.analysis.agreement import neighbour_graph, track_agreement
    from core.analysis.compare import jaccard
    from core.runs.folder import load_run

    root = Path(tempfile.mkdtemp(prefix="bench-agreement-"))
    os.environ["TIMBRE_ARTIFACTS"] = str(root)
    try:
        a, _ = write_atlas_run(root, n, run_id="a")
        x = load_run(a).embeddings
        noisy = x + np.random.default_rng(1).normal(0, 0.02, x.shape).astype(np.float32)
        b, _ = write_atlas_run(root, n, run_id="b", embeddings=noisy)
        scores, cold = _timed(lambda: track_agreement(a, b), "agreement")
        _, cached = _timed(lambda: track_agreement(a, b))
        out = {"n": n, "agreement_s": cold, "cached_s": cached, "mean_jaccard": round(float(np.nanmean(scores)), 3),
               "index": n > agreement.EXACT_GRAPH_MAX, "cpu_s": dict(CPU)}
        if n <= 100_000:  # the reference: every neighbour found exactly, in blocks (the same path below the threshold)
            threshold, agreement.EXACT_GRAPH_MAX = agreement.EXACT_GRAPH_MAX, n
            try:
                exact, exact_s = _timed(lambda: jaccard(neighbour_graph(x), neighbour_graph(noisy)))
            finally:
                agreement.EXACT_GRAPH_MAX = threshold
            out.update(exact_s=exact_s, mean_jaccard_exact=round(float(exact.mean()), 3))
        out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def previous_kernel(queries: np.ndarray, library: np.ndarray, maps: dict) -> dict:
    """Placement as it was: :func:`core.search.projection.interpolate` (the same search and weights) with the
    plain weighted mean of all 10 neighbours in place of :func:`core.search.projection.robust_positions`."""
    import core.search.projection as projection

    def plain_mean(positions: np.ndarray, weights: np.ndarray, **_) -> np.ndarray:
        return np.einsum("mk,mkd->md", weights / weights.sum(axis=1, keepdims=True), positions).astype(np.float32)

    robust, projection.robust_positions = projection.robust_positions, plain_mean
    try:
        return projection.interpolate(queries, library=library, maps=maps)
    finally:
        projection.robust_positions = robust


def measure_placement(n: int, fitted: int) -> dict:
    from benchmarks.synthetic import synthetic_embeddings
    from core.search.projection import fit_sample, fit_tsne, fit_umap, interpolate, neighbourhood_preservation

    x, _ = synthetic_embeddings(n, seed=0)
    rows = fit_sample(n, sample=fitted, seed=0)
    rest = np.setdiff1d(np.arange(n), rows)
    held = np.sort(np.random.default_rng(1).choice(rest, min(QUERIES, len(rest)), replace=False))
    maps, fit_s = {}, {}
    for method, fit in (("tsne", fit_tsne), ("umap", fit_umap)):
        maps[method], fit_s[method] = _timed(lambda fit=fit: fit(x[rows], seed=0))
    lib = x[rows]

    def score(placed: dict) -> dict:
        return {m: round(neighbourhood_preservation(x[held], lib, query_xy=placed[m], library_xy=maps[m]), 3)
                for m in maps}

    before, before_s = _timed(lambda: previous_kernel(x[rest], lib, maps))
    after, after_s = _timed(lambda: interpolate(x[rest], library=lib, maps=maps))
    at = np.searchsorted(rest, held)
    return {"n": n, "fitted": int(len(rows)), "fit_s": fit_s,
            "previous": {**score({m: v[at] for m, v in before.items()}), "place_rest_s": before_s},
            "now": {**score({m: v[at] for m, v in after.items()}), "place_rest_s": after_s},
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def _into(queue, fn, *args) -> None:
    queue.put(fn(*args))


def _fresh(fn, *args) -> dict:
    """``fn(*args)`` in a fresh process (its peak memory its own)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_into, args=(queue, fn, *args))
    worker.start()
    result = queue.get()
    worker.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="data,agreement,placement")
    parser.add_argument("--sizes", default="10000,100000", help="data section: comma-separated track counts")
    parser.add_argument("--agreement-sizes", default="10000,100000")
    parser.add_argument("--placement", default="20000:5000", help="N:M pairs (tracks : fitted), comma-separated")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    args = parser.parse_args()
    only, out = set(args.only.split(",")), {}
    sections = [("data", measure_data, [(int(s),) for s in args.sizes.split(",")]),
                ("agreement", measure_agreement, [(int(s),) for s in args.agreement_sizes.split(",")]),
                ("placement", measure_placement,
                 [tuple(int(v) for v in pair.split(":")) for pair in args.placement.split(",")])]
    for name, fn, cases in sections:
        if name not in only:
            continue
        for case in cases:
            result = _fresh(fn, *case)
            out.setdefault(name, {})[":".join(map(str, case))] = result
            print(json.dumps({name: result}), flush=True)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
