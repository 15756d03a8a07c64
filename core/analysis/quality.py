"""How far a run's 2-D map can be believed: trustworthiness at k = 10 (:func:`sklearn.manifold.trustworthiness`,
cosine in the embedding; 1 = every map neighbour is a true neighbour), on a seeded sample above
:data:`TRUST_SAMPLE` tracks (it builds an n x n distance matrix), cached in the run's ``quality/<method>.json``.

One measurement for every front end: the Map page's quality caption, the Compare page's maps and
``python -m core compare`` all read :func:`map_trust` (or its dict, :func:`projection_quality`), and each names
the projection it gives.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from core.base.errors import CompareError
from core.base.io import atomic_write_json
from core.runs.folder import Run
from core.search.exact import l2_normalise
from core.search.projection import METHODS

TRUST_K = 10  # neighbours whose intrusions are counted: the k of the neighbour lists the pages show
TRUST_SAMPLE = 2000  # trustworthiness builds dense n x n distance matrices in float64
QUALITY_FOLDER = "quality"
METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


@dataclasses.dataclass(frozen=True)
class Trust:
    """Trustworthiness of one run's ``method`` map: ``value`` in [0, 1] at ``k`` over ``n`` tracks (``sampled``
    of ``n_total``)."""

    value: float
    k: int
    n: int
    n_total: int
    method: str = ""

    @property
    def sampled(self) -> bool:
        return self.n < self.n_total

    def describe(self) -> str:
        where = f"a seeded sample of {self.n} of {self.n_total} tracks" if self.sampled else f"{self.n} tracks"
        return f"trustworthiness {self.value:.3f} (k={self.k}, {where})"

    def named(self) -> str:
        """:meth:`describe` with the projection first: "UMAP map: trustworthiness 0.972 (k=10, 200 tracks)"."""
        return f"{METHOD_TITLES.get(self.method, self.method)} map: {self.describe()}"


def map_trustworthiness(run: Run, method: str, *, k: int = TRUST_K, sample: int = TRUST_SAMPLE, seed: int = 0) -> Trust:
    """:func:`sklearn.manifold.trustworthiness` of the run's ``method`` map against its embeddings (cosine), at
    ``k`` neighbours (fewer for a library under ``2 k + 2`` tracks: sklearn needs k < n / 2); not cached."""
    from sklearn.manifold import trustworthiness

    if method not in METHODS:
        raise CompareError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    n_total = len(run.embeddings)
    rows = np.arange(n_total)
    if n_total > sample:
        rows = np.sort(np.random.default_rng(seed).choice(n_total, size=sample, replace=False))
    k = min(k, (len(rows) - 1) // 2)
    if k < 1:
        raise CompareError(f"run {run.run_id}: {len(rows)} tracks are too few to measure a map's trustworthiness")
    xy = run.projections[[f"{method}_x", f"{method}_y"]].to_numpy(np.float64)[rows]
    value = trustworthiness(l2_normalise(run.embeddings[rows], dtype=np.float64), xy, n_neighbors=k, metric="cosine")
    return Trust(value=float(value), k=k, n=len(rows), n_total=n_total, method=method)


def projection_quality(run: Run, method: str, *, sample: int = TRUST_SAMPLE, seed: int = 0, k: int = TRUST_K) -> dict:
    """:func:`map_trustworthiness` of the run's ``method`` map, cached in ``<run>/quality/<method>.json`` until
    the run's projections change (about 1 s for 2,000 tracks).

    Returns
    -------
    dict
        ``method``, ``value`` (in [0, 1]; 1 = every map neighbour is a true neighbour), ``k``, ``n`` (tracks
        measured), ``n_total``, ``sampled``, ``text`` (one line for the page), ``seconds`` (of the measurement).
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    stat = (Path(run.path) / "projections.parquet").stat()
    key = {"projections": [stat.st_mtime_ns, stat.st_size], "sample": sample, "seed": seed, "k": k}
    path = Path(run.path) / QUALITY_FOLDER / f"{method}.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["quality"]
    except (OSError, ValueError, KeyError, AttributeError):  # none yet, or unreadable: measure again
        pass
    started = time.perf_counter()
    trust = map_trustworthiness(run, method, k=k, sample=sample, seed=seed)
    quality = {**dataclasses.asdict(trust), "sampled": trust.sampled, "text": trust.describe(),
               "seconds": round(time.perf_counter() - started, 3)}
    atomic_write_json(path, {"key": key, "quality": quality})
    return quality


def map_trust(run: Run, method: str, *, sample: int = TRUST_SAMPLE, seed: int = 0, k: int = TRUST_K) -> Trust:
    """:func:`projection_quality` as a :class:`Trust` (measured once, then read from the run folder)."""
    q = projection_quality(run, method, sample=sample, seed=seed, k=k)
    return Trust(value=float(q["value"]), k=int(q["k"]), n=int(q["n"]), n_total=int(q["n_total"]), method=method)


def stored_qualities(run: Run) -> dict[str, dict]:
    """Projection -> the quality :func:`projection_quality` stored in the run folder, for every projection
    measured so far (an unreadable file is left out)."""
    found = {}
    for path in sorted((Path(run.path) / QUALITY_FOLDER).glob("*.json")):
        try:
            quality = json.loads(path.read_text())["quality"]
            found[path.stem] = {"value": float(quality["value"]), "n": int(quality["n"]), "k": int(quality["k"])}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
