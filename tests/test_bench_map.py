"""The map benchmark's synthetic runs (:mod:`benchmarks.map_runs`): built fast, opened as a run with every track a
point, each cluster a blob on the t-SNE and UMAP maps, reused while cached. The browser benchmark itself
(``python -m benchmarks.bench_map``) is not run here."""
from __future__ import annotations

import numpy as np

from benchmarks import map_runs
from benchmarks.bench_map import table, target_checks

N = 2_000


def test_a_synthetic_run_opens_with_every_track_a_point_in_its_clusters_blob(module_artifacts, monkeypatch):
    root = map_runs.synthetic_run(N, log=lambda text: None)
    assert root == module_artifacts / "bench" / "map" / str(N)
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(root))  # what the benchmark's server is given

    from core.analysis.maps import map_points
    from core.runs.folder import list_runs, load_run

    assert list_runs() == [map_runs.run_id(N)]
    run = load_run(map_runs.run_id(N))
    assert len(run.tracks) == N and run.embeddings.shape == (N, 128)
    np.testing.assert_allclose(np.linalg.norm(run.embeddings, axis=1), 1.0, atol=1e-5)
    for method in ("pca", "tsne", "umap"):
        points = map_points(run, method)
        assert len(points) == N and np.isfinite(points[["x", "y"]].to_numpy()).all()
    # the blobs: each cluster's tracks lie far closer to one another than to the map's other tracks
    points = map_points(run, "umap")
    cluster = run.tracks["artist"].str.removeprefix("artist ").astype(int).to_numpy()  # cluster % 997, N < 997^2
    big = np.bincount(cluster).argmax()
    inside = points.loc[cluster == big, ["x", "y"]].to_numpy()
    spread_in = np.linalg.norm(inside - inside.mean(axis=0), axis=1).mean()
    spread_all = np.linalg.norm(points[["x", "y"]].to_numpy() - inside.mean(axis=0), axis=1).mean()
    assert spread_in * 5 < spread_all, (spread_in, spread_all)


def test_a_cached_run_is_reused_and_a_stale_one_built_again(module_artifacts):
    root = map_runs.synthetic_run(N, log=lambda text: None)
    built = (root / "built.json").stat().st_mtime_ns
    messages = []
    assert map_runs.synthetic_run(N, log=messages.append) == root and not messages
    assert (root / "built.json").stat().st_mtime_ns == built
    (root / "built.json").write_text('{"n": 2000, "seed": 0, "version": 0}')  # written by an older benchmark
    map_runs.synthetic_run(N, log=messages.append)
    assert len(messages) == 1 and map_runs.is_built(root, N)
    assert not root.with_name(root.name + ".partial").exists()


def test_the_targets_read_the_figures_and_the_table_shows_each_map():
    figures = {"drawn_as": "x", "first_draw_s": 1.0, "warmup_draw_s": 2.0, "received_mb": 1.0,
               "pan_zoom": {"map_fps": 25.0, "fps": 30.0, "reruns": 0}, "lasso": {"round_trip_s": 0.5, "shown": 9, "expected": 9},
               "memory": {"js_heap_mb": 1, "renderer_rss_mb": 2, "gpu_rss_mb": 3, "server_rss_mb": 4}}
    results = {"100000": {"plotly": {**figures, "first_draw_s": 4.0}, "atlas": figures},
               "1000000": {"atlas": {**figures, "pan_zoom": {"map_fps": 25.0, "fps": 30.0, "reruns": 1}},
                           "plotly": {"error": "TimeoutError: ..."}}}
    checks = target_checks(results)
    assert checks["speedup_100k_vs_plotly"] == {"measured": 4.0, "target": 3.0, "met": True}
    assert checks["atlas_first_draw_1m_s"]["met"] is True
    assert checks["atlas_fps_1m"]["met"] is False  # a rerun during the pan is a miss whatever the frame rate
    assert target_checks({})["atlas_lasso_1m_s"] == {"measured": None, "target": 1.5, "met": None}
    text = table({"results": results})
    assert "| 1,000,000 | plotly | TimeoutError" in text and text.count("| atlas |") == 2
