"""Nearest-neighbour search that holds at 1M tracks: exact cosine for small libraries, a FAISS IVF index above.

Why IVF-Flat (inverted lists of the L2-normalised vectors, inner product) rather than HNSW:

* the scores it returns are exact cosines (the lists hold the full vectors), so a hit reads the same as with
  exact search, and a library track always finds itself (its own list is the one probed first);
* a label filter is a faiss ``IDSelector`` on the same index: lists are scanned only for the allowed rows;
* it builds in under a minute at 1M x 128 on 2 cores (HNSW's graph takes several) and adds only the row ids
  to the vectors' memory.

``nprobe`` (how many lists a query scans) is calibrated when the index is built: the smallest value whose
recall@10 against exact search, on a sample of library tracks as queries, reaches :data:`TARGET_RECALL`.

A run's index lives in its folder as ``index.faiss`` (``faiss.write_index``: a faiss binary, never a pickle)
with ``index.json`` beside it (parameters, calibration, build time, the library size it was built for).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from core.base.errors import RunError
from core.base.io import atomic_write_json
from core.search.exact import cosine_topk, l2_normalise

# Below this many tracks a query is exact numpy. Measured with `python -m benchmarks.bench_scale` on this machine (2 cores,
# d=128): exact numpy 0.24 ms at 10k, 1.5 ms at 100k, 34 ms at 1M (the run's exact path, which also normalises
# the library per query: 4 / 40 / 520 ms); the IVF index 0.06 / 0.12 / 0.34 ms at recall@10 >= 0.996, built
# in 0.2 / 1.5 / 20 s. At 50k the exact path stays ~20 ms, fine for a page, and exact answers need no build.
EXACT_MAX_TRACKS = 50_000


# A label filter keeping at most this many rows is searched exactly over them (~2 ms at 5k rows); above it through
# the index, scanning as many more lists as the filter is rarer (see AnnIndex.search).
FILTER_EXACT_MAX_ROWS = 5_000


TARGET_RECALL = 0.97  # calibration aims above the 0.95 asked for: a sample's recall scatters by ~0.01


INDEX_FILE, INDEX_META = "index.faiss", "index.json"


NPROBE_STEPS = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def _faiss():
    import faiss  # imported on first use: small libraries never pay for it

    return faiss


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: ~sqrt(n) (1,000 at 1M), at least 39 training points per list.

    Measured at 1M x 128 on 2 busy cores: 4 sqrt(n) lists (faiss's usual advice) took 386 s to build, over the
    5 min budget, for a query time we do not need (0.6 ms); sqrt(n) lists build in well under a minute and a
    query scanning 16 of them (~16k vectors) still takes about a millisecond."""
    return int(max(1, min(np.sqrt(n), n // 39)))


@dataclasses.dataclass
class AnnIndex:
    """A built or loaded IVF index over a library's L2-normalised embeddings (row i = library row i)."""

    index: object  # faiss.IndexIVFFlat
    meta: dict

    @property
    def nprobe(self) -> int:
        return int(self.meta["nprobe"])

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, *, k: int, rows: np.ndarray | None = None,
               nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows of each query by cosine, best first.

        Parameters
        ----------
        queries : np.ndarray [shape=(m, d)]
        k : int
        rows : np.ndarray [shape=(r,), dtype=int64] or None
            Only these library rows may be returned (a label filter: a faiss selector, the lists skip the other
            rows). A filter keeping a share ``r / n`` of the library scans ``n / r`` times the calibrated lists,
            so that about as many candidates are compared as without it (recall holds), and widens further until
            every query has ``min(k, r)`` hits, so a filter never returns fewer than it could.
        nprobe : int or None
            Lists to scan; default the calibrated value (scaled up for a filter, as above).

        Returns
        -------
        indices : np.ndarray [shape=(m, k), dtype=int64]
        scores : np.ndarray [shape=(m, k), dtype=float32]
        """
        faiss = _faiss()
        q = np.ascontiguousarray(l2_normalise(np.atleast_2d(queries)))
        share = 1.0 if rows is None else max(len(rows), 1) / self.ntotal
        probe = int(nprobe or np.ceil(self.nprobe / share))
        want = min(k, self.ntotal if rows is None else len(rows))
        selector, bits = (None, None) if rows is None else _bitmap_selector(rows, self.ntotal)
        while True:
            params = faiss.SearchParametersIVF(nprobe=min(probe, self.index.nlist), sel=selector)
            sims, idx = self.index.search(q, want, params=params)
            if (idx >= 0).all() or probe >= self.index.nlist:
                return idx.astype(np.int64), sims.astype(np.float32)
            probe *= 4  # a filter whose rows are rare in the scanned lists: scan more lists


def _bitmap_selector(rows: np.ndarray, n: int):
    """A faiss selector of ``rows`` out of ``n`` as a bitmap (n/8 bytes, built in about a millisecond at 1M;
    a hashed ``IDSelectorBatch`` of 300k rows takes tens). The bitmap is returned too: faiss does not own it."""
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    bits = np.packbits(mask, bitorder="little")
    return _faiss().IDSelectorBitmap(n, _faiss().swig_ptr(bits)), bits


def build_index(embeddings: np.ndarray, *, nlist: int | None = None, seed: int = 0,
                target_recall: float = TARGET_RECALL, calibration_queries: int = 300,
                train_per_list: int = 64) -> AnnIndex:
    """Build an IVF-Flat inner-product index of the normalised rows and calibrate its ``nprobe``.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    nlist : int or None
        Inverted lists; default :func:`default_nlist`.
    seed : int
        Seeds the k-means training sample and the calibration queries.
    target_recall : float
        ``nprobe`` is the smallest of :data:`NPROBE_STEPS` whose recall@10 against exact search reaches this.
    calibration_queries : int
        Library rows used as calibration queries.
    train_per_list : int
        k-means trains on ``nlist * train_per_list`` sampled rows (all rows when fewer).

    Returns
    -------
    AnnIndex
    """
    faiss = _faiss()
    started = time.perf_counter()
    x = np.ascontiguousarray(l2_normalise(embeddings))
    n, d = x.shape
    nlist = int(nlist or default_nlist(n))
    rng = np.random.default_rng(seed)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample = x if n <= nlist * train_per_list else x[np.sort(rng.choice(n, nlist * train_per_list, replace=False))]
    index.train(sample)
    index.add(x)
    built = time.perf_counter() - started
    ann = AnnIndex(index=index, meta={"kind": "IVFFlat", "metric": "inner_product_l2_normalised",
                                      "n_tracks": n, "dim": d, "nlist": nlist, "seed": seed, "nprobe": nlist})
    queries = x[rng.choice(n, min(calibration_queries, n), replace=False)]
    ann.meta.update(calibrate(ann, x, queries, target_recall=target_recall))
    ann.meta.update(build_seconds=round(built, 2), total_seconds=round(time.perf_counter() - started, 2),
                    faiss_version=faiss.__version__)
    return ann


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true top-k rows (``truth`` [shape=(m, k)]) that ``found`` [shape=(m, k)] holds."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def calibrate(ann: AnnIndex, library: np.ndarray, queries: np.ndarray, *, target_recall: float,
              k: int = 10) -> dict:
    """The smallest ``nprobe`` step whose recall@k on ``queries`` reaches ``target_recall`` (else the largest
    step tried), with the recall measured at it."""
    k = min(k, len(library))
    truth = exact_topk(library, queries, k=k)
    steps = [p for p in NPROBE_STEPS if p < ann.index.nlist] + [ann.index.nlist]
    for probe in steps:
        recall = recall_at(ann.search(queries, k=k, nprobe=probe)[0], truth)
        if recall >= target_recall:
            break
    return {"nprobe": int(probe), "calibration": {"recall_at_10": round(recall, 4), "queries": len(queries),
                                                  "target_recall": target_recall}}


def exact_topk(library: np.ndarray, queries: np.ndarray, *, k: int, batch: int = 32) -> np.ndarray:
    """Exact top-``k`` rows [shape=(m, k)] of the queries, in batches: 300 queries x 1M similarities at once
    would be 1.2 GB (and as much again to sort them)."""
    lib = l2_normalise(library)
    return np.vstack([cosine_topk(lib, queries[i:i + batch], k=k, normalised=True)[0]
                      for i in range(0, len(queries), batch)])


def write_index(ann: AnnIndex, folder: Path) -> None:
    """``index.faiss`` and ``index.json`` into ``folder``, each replaced atomically (the JSON last: a reader
    checks the sizes it records)."""
    faiss = _faiss()
    folder = Path(folder)
    tmp = folder / f".{INDEX_FILE}.{os.getpid()}.tmp"
    try:
        faiss.write_index(ann.index, str(tmp))
        os.replace(tmp, folder / INDEX_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_json(folder / INDEX_META, ann.meta)


def read_index(folder: Path, *, n_tracks: int, dim: int) -> AnnIndex | None:
    """The index stored in a run folder, None when there is none; :class:`RunError` when it does not match
    the run's embeddings (rebuild it with ``python -m core index --run RUN``)."""
    folder = Path(folder)
    if not (folder / INDEX_FILE).exists() or not (folder / INDEX_META).exists():
        return None
    meta = json.loads((folder / INDEX_META).read_text())
    index = _faiss().read_index(str(folder / INDEX_FILE))
    if (index.ntotal, index.d) != (n_tracks, dim) or (meta.get("n_tracks"), meta.get("dim")) != (n_tracks, dim):
        raise RunError(f"{folder / INDEX_FILE}: built for {index.ntotal} x {index.d} embeddings, the run has "
                       f"{n_tracks} x {dim}; rebuild it with `python -m core index --run {folder}`")
    return AnnIndex(index=index, meta=meta)


def needs_index(n_tracks: int, *, threshold: int | None = None) -> bool:
    """Whether a library of ``n_tracks`` is searched through an index (above :data:`EXACT_MAX_TRACKS`)."""
    return n_tracks > (EXACT_MAX_TRACKS if threshold is None else threshold)


def search(embeddings: np.ndarray, queries: np.ndarray, *, k: int, index: AnnIndex | None = None,
           rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` library rows per query by cosine: through ``index`` when given, exact otherwise; with ``rows``
    only those rows are candidates (exact over them when they are at most :data:`FILTER_EXACT_MAX_ROWS`).

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    queries : np.ndarray [shape=(m, d)]
    k : int
    index : AnnIndex or None
    rows : np.ndarray [shape=(r,), dtype=int64] or None

    Returns
    -------
    indices : np.ndarray [shape=(m, min(k, r)), dtype=int64]
        Library rows, best first.
    scores : np.ndarray [shape=(m, min(k, r)), dtype=float32]
    """
    queries = np.atleast_2d(queries)
    if rows is not None and (index is None or len(rows) <= FILTER_EXACT_MAX_ROWS):
        rows = np.asarray(rows, dtype=np.int64)
        idx, sims = cosine_topk(embeddings[rows], queries, k=k)
        return rows[idx], sims
    if index is None:
        return cosine_topk(embeddings, queries, k=k)
    return index.search(queries, k=k, rows=rows)


def index_run(folder: Path, embeddings: np.ndarray, *, force: bool = False, seed: int = 0) -> AnnIndex | None:
    """Build and store the index of the run in ``folder`` when its library is above :data:`EXACT_MAX_TRACKS`
    tracks (or with ``force``); returns it, or None when the run is searched exactly and no index was built
    (an old index of a small run is removed, so that what is searched is what this call says)."""
    folder = Path(folder)
    if not (force or needs_index(len(embeddings))):
        for name in (INDEX_FILE, INDEX_META):
            (folder / name).unlink(missing_ok=True)
        return None
    ann = build_index(embeddings, seed=seed)
    write_index(ann, folder)
    return ann
