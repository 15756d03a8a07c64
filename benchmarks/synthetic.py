"""Synthetic embeddings for benchmarks and tests."""
from __future__ import annotations

import numpy as np

from core.search.exact import l2_normalise


def synthetic_embeddings(n: int, *, dim: int = 128, n_clusters: int | None = None, seed: int = 0,
                         spread: float = 0.07, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors standing in for a library's embeddings (benchmarks and tests): a mixture of
    Gaussians on the sphere with cluster sizes of a long-tailed (Dirichlet) distribution and a spread that
    varies per cluster (0.5x to 1.5x ``spread`` per dimension), like genres and sub-styles, not uniform noise.

    Returns
    -------
    x : np.ndarray [shape=(n, dim), dtype=dtype]
        L2-normalised rows, in random order.
    cluster : np.ndarray [shape=(n,), dtype=int64]
        The cluster of each row.
    """
    rng = np.random.default_rng(seed)
    n_clusters = n_clusters or max(2, int(np.sqrt(n)))
    centres = l2_normalise(rng.normal(size=(n_clusters, dim)))
    cluster = rng.choice(n_clusters, size=n, p=rng.dirichlet(np.full(n_clusters, 0.7)))
    scale = (spread * rng.uniform(0.5, 1.5, n_clusters)).astype(dtype)
    x = np.empty((n, dim), dtype=dtype)
    for start in range(0, n, 100_000):  # in blocks: a float64 copy of 1M x 128 is 1 GB
        part = slice(start, start + 100_000)
        noise = rng.standard_normal((len(cluster[part]), dim), dtype=np.float32) * scale[cluster[part], None]
        x[part] = l2_normalise(centres[cluster[part]] + noise, dtype=dtype)
    return x, cluster.astype(np.int64)
