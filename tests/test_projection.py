"""core.projection: scikit-learn's PCA against a plain SVD, stored arrays only, placement on every map."""
from __future__ import annotations

import io

import numpy as np
import pytest

from core.projection import fit_pca, fit_projections, place


def svd_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: centre, SVD, the first two right singular vectors (the hand-written PCA this replaced)."""
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return (x - mean) @ vt[:2].T, vt[:2]


@pytest.mark.parametrize("n, d, dtype", [(3, 5, np.float64), (40, 16, np.float32), (300, 128, np.float32),
                                         (10, 300, np.float64)])
def test_pca_matches_the_svd_up_to_the_sign_of_each_axis(rng, n, d, dtype):
    x = (rng.normal(size=(n, d)) * rng.uniform(0.1, 5.0, d)).astype(dtype)
    coords, arrays = fit_pca(x)
    ref_coords, ref_axes = svd_pca(x.astype(np.float64))
    signs = np.sign(np.sum(arrays["pca_components"] * ref_axes, axis=1))  # each axis may come out flipped
    assert (np.abs(signs) == 1).all()
    ref_coords, ref_axes = ref_coords * signs, ref_axes * signs[:, None]
    tol = 1e-6 if dtype == np.float64 else 1e-4  # stored as float32; float32 input: the SVD runs in float32
    assert np.abs(arrays["pca_components"] - ref_axes).max() < tol
    assert np.abs(coords - ref_coords).max() <= tol * np.abs(ref_coords).max()
    axes = arrays["pca_components"]
    assert (axes[np.arange(2), np.abs(axes).argmax(axis=1)] > 0).all()  # the largest coefficient is positive


def test_pca_arrays_are_plain_float32_and_load_without_pickle(rng):
    x = rng.normal(size=(20, 8)).astype(np.float32)
    _, arrays = fit_pca(x)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        assert sorted(stored.files) == ["pca_components", "pca_mean"]
        assert stored["pca_components"].shape == (2, 8) and stored["pca_mean"].dtype == np.float32


def test_a_single_track_sits_at_the_origin():
    coords, arrays = fit_pca(np.ones((1, 4), np.float32))
    assert (coords == 0).all() and (arrays["pca_components"] == 0).all()


def test_projections_and_placement(rng):
    x = rng.normal(size=(40, 16)).astype(np.float32)
    coords, arrays = fit_projections(x, track_ids=[f"t{i}" for i in range(40)], seed=0)
    assert list(coords.columns) == ["track_id", "pca_x", "pca_y", "tsne_x", "tsne_y", "umap_x", "umap_y"]
    where = place(x[:2], library=x, coords=coords, arrays=arrays)
    assert np.allclose(where["pca"], coords[["pca_x", "pca_y"]].to_numpy()[:2], atol=1e-4)
    assert np.allclose(where["umap"][0], coords[["umap_x", "umap_y"]].to_numpy()[0], atol=0.1)
