"""core.search.projection: scikit-learn's PCA against a plain SVD, stored arrays only, placement on every map."""
from __future__ import annotations

import numpy as np
import pytest

from core.search.projection import (
    FIT_SAMPLE,
    TSNE_THREADS_FROM,
    MapFit,
    fit_pca,
    fit_projections,
    fit_sample,
    fit_tsne,
    neighbourhood_preservation,
    place,
    robust_positions,
)


def svd_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: centre, SVD, the first two right singular vectors (the hand-written PCA this replaced)."""
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return (x - mean) @ vt[:2].T, vt[:2]


@pytest.mark.parametrize("n, d, dtype", [(3, 5, np.float64), (40, 16, np.float32), (300, 128, np.float32),
                                         (10, 300, np.float64)])
def test_pca_matches_the_svd_up_to_the_sign_of_each_axis(rng, n, d, dtype):
    x = (rng.normal(size=(n, d)) * rng.uniform(0.1, 5.0, d)).astype(dtype)
    coords, fit = fit_pca(x)
    ref_coords, ref_axes = svd_pca(x.astype(np.float64))
    signs = np.sign(np.sum(fit.pca_components * ref_axes, axis=1))  # each axis may come out flipped
    assert (np.abs(signs) == 1).all()
    ref_coords, ref_axes = ref_coords * signs, ref_axes * signs[:, None]
    tol = 1e-6 if dtype == np.float64 else 1e-4  # stored as float32; float32 input: the SVD runs in float32
    assert np.abs(fit.pca_components - ref_axes).max() < tol
    assert np.abs(coords - ref_coords).max() <= tol * np.abs(ref_coords).max()
    axes = fit.pca_components
    assert (axes[np.arange(2), np.abs(axes).argmax(axis=1)] > 0).all()  # the largest coefficient is positive


def test_the_pca_fit_is_plain_float32_arrays_that_load_without_pickle(rng, tmp_path):
    x = rng.normal(size=(20, 8)).astype(np.float32)
    coords, fit = fit_pca(x)
    fit.save(tmp_path)
    with np.load(tmp_path / "projection.npz", allow_pickle=False) as stored:
        assert sorted(stored.files) == ["pca_components", "pca_mean"]
        assert stored["pca_components"].shape == (2, 8) and stored["pca_mean"].dtype == np.float32
    loaded = MapFit.load(tmp_path)
    assert loaded.fit_rows is None and np.array_equal(loaded.pca_components, fit.pca_components)
    assert np.allclose(loaded.pca(x), coords, atol=1e-5)


def test_a_single_track_sits_at_the_origin():
    coords, fit = fit_pca(np.ones((1, 4), np.float32))
    assert (coords == 0).all() and (fit.pca_components == 0).all()


def test_projections_and_placement(rng):
    x = rng.normal(size=(40, 16)).astype(np.float32)
    coords, fit = fit_projections(x, track_ids=[f"t{i}" for i in range(40)], seed=0)
    assert list(coords.columns) == ["track_id", "pca_x", "pca_y", "tsne_x", "tsne_y", "umap_x", "umap_y"]
    where = place(x[:2], library=x, coords=coords, fit=fit)
    assert np.allclose(where["pca"], coords[["pca_x", "pca_y"]].to_numpy()[:2], atol=1e-4)
    assert np.allclose(where["umap"][0], coords[["umap_x", "umap_y"]].to_numpy()[0], atol=0.1)


def manifold(rng, n: int, d: int = 32) -> np.ndarray:
    """``n`` points of a noisy 2-D sheet folded into ``d`` dimensions: neighbours in ``d`` dimensions are
    neighbours on the sheet, so a good 2-D map can keep them."""
    z = rng.uniform(-1, 1, size=(n, 2))
    w, b = rng.normal(size=(2, d)) * 2.0, rng.uniform(0, 2 * np.pi, d)
    return (np.cos(z @ w + b) + 0.05 * rng.normal(size=(n, d)) + 1.0).astype(np.float32)


def test_a_sampled_fit_places_held_out_tracks_near_their_true_neighbours(rng):
    """t-SNE and UMAP fitted on 120 of 300 tracks: each of the other 180 lands among its 10 most similar fitted
    tracks about as well as when all 300 are fitted (a random map keeps 10/120 = 8 %)."""
    n, m = 300, 120
    x, ids = manifold(rng, n), [f"t{i}" for i in range(n)]
    full, _ = fit_projections(x, track_ids=ids, seed=0)
    sampled, fit = fit_projections(x, track_ids=ids, seed=0, sample=m)
    rows = fit.fit_rows
    rest = np.setdiff1d(np.arange(n), rows)
    assert len(rows) == m and (np.diff(rows) > 0).all()
    assert np.array_equal(full[["pca_x", "pca_y"]], sampled[["pca_x", "pca_y"]])  # PCA sees every track
    for method in ("tsne", "umap"):
        scores = {}
        for name, coords in (("full", full), ("sampled", sampled)):
            xy = coords[[f"{method}_x", f"{method}_y"]].to_numpy()
            scores[name] = neighbourhood_preservation(x[rest], x[rows], query_xy=xy[rest], library_xy=xy[rows])
        assert min(scores.values()) >= 0.6, (method, scores)
        assert scores["sampled"] >= scores["full"] - 0.08, (method, scores)


def test_tracks_outside_the_sample_are_placed_as_queries_are(rng, tmp_path):
    """The fitted tracks keep their fitted position; every other track sits where :func:`place` puts a query
    with the same embedding on the fitted tracks' maps."""
    n, m = 60, 20
    x = manifold(rng, n, d=8)
    coords, fit = fit_projections(x, track_ids=[f"t{i}" for i in range(n)], seed=3, sample=m)
    rows = fit.fit_rows
    assert np.array_equal(rows, fit_sample(n, sample=m, seed=3))
    rest = np.setdiff1d(np.arange(n), rows)
    where = place(x[rest], library=x[rows], coords=coords.iloc[rows], fit=fit)
    for method in ("tsne", "umap"):
        np.testing.assert_allclose(coords[[f"{method}_x", f"{method}_y"]].to_numpy()[rest], where[method],
                                   rtol=1e-5, atol=1e-5)
    fit.save(tmp_path)  # what a run stores: arrays only
    with np.load(tmp_path / "projection.npz", allow_pickle=False) as stored:
        assert sorted(stored.files) == ["fit_rows", "pca_components", "pca_mean"]
    assert np.array_equal(MapFit.load(tmp_path).fit_rows, rows)


def test_below_the_sample_size_every_track_is_fitted():
    assert np.array_equal(fit_sample(5, sample=5), np.arange(5))
    assert np.array_equal(fit_sample(7, sample=FIT_SAMPLE), np.arange(7))
    picked = fit_sample(1000, sample=100, seed=1)
    assert len(np.unique(picked)) == 100 and np.array_equal(picked, fit_sample(1000, sample=100, seed=1))
    assert not np.array_equal(picked, fit_sample(1000, sample=100, seed=2))


def test_neighbourhood_preservation_scores_a_perfect_and_a_shuffled_map(rng):
    xy = rng.uniform(size=(300, 2))
    x = np.column_stack([xy, np.ones(300)]).astype(np.float32)  # cosine neighbours = planar neighbours, nearly
    perfect = neighbourhood_preservation(x[:50], x[50:], query_xy=xy[:50], library_xy=xy[50:], k=5)
    shuffled = neighbourhood_preservation(x[:50], x[50:], query_xy=xy[:50], library_xy=rng.permutation(xy[50:]), k=5)
    assert perfect > 0.6 and shuffled < 0.15


def test_placement_stays_on_the_island_holding_most_of_a_tracks_neighbours(rng):
    """Six neighbours on one island, four on another: the plain weighted mean, (4, 0), is empty map between
    them; the robust mean stays on the six's island, and a copy of a library track still sits on that track."""
    positions = np.array([[[0.0, 0.0]] * 6 + [[10.0, 0.0]] * 4]) + rng.normal(0, 0.1, (1, 10, 2))
    weights = np.ones((1, 10))
    assert np.allclose(np.einsum("mk,mkd->md", weights / 10, positions), [[4.0, 0.0]], atol=0.2)
    placed = robust_positions(positions, weights)
    assert placed.shape == (1, 2) and placed.dtype == np.float32 and np.hypot(*placed[0]) < 0.3
    weights[0, 8] = 1e18  # cosine 1 to a track on the small island
    assert np.allclose(robust_positions(positions, weights)[0], positions[0, 8], atol=1e-5)
    assert np.allclose(robust_positions(positions[:, :2], weights[:, :2], keep=5)[0],
                       positions[0, :2].mean(axis=0), atol=1e-5)  # fewer neighbours than kept: all of them


def test_a_seeded_umap_fit_warns_nothing(rng):
    import warnings

    from core.search.projection import fit_umap

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_umap(rng.standard_normal((40, 8)).astype(np.float32), seed=0)
    assert not [w for w in caught if "n_jobs" in str(w.message)], [str(w.message) for w in caught]


def test_t_sne_of_a_small_library_runs_on_one_thread(monkeypatch):
    """openTSNE's threads meet at every gradient step: for a few hundred tracks that wait is the whole fit on a
    busy machine (the demo's 48 tracks: 60 s on two threads, 0.5 s on one)."""
    import openTSNE

    asked = []
    real = openTSNE.TSNE

    def recording(**kwargs):
        asked.append(kwargs["n_jobs"])
        return real(**kwargs)

    monkeypatch.setattr(openTSNE, "TSNE", recording)
    x = np.random.default_rng(0).normal(size=(48, 16)).astype(np.float32)
    assert fit_tsne(x, seed=0).shape == (48, 2) and asked == [1]
    assert TSNE_THREADS_FROM > 2000  # 2,000 tracks: 30 s on one thread against 48 s on two, at load 8
