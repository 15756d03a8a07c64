"""Neighbour agreement per track between two runs of the same tracks, for colouring a map by where two
embedding spaces differ.

Each track's score is the Jaccard overlap of its 10 nearest neighbours in the two runs (cosine, among the tracks
both runs hold, matched by ``track_id``): :mod:`core.analysis.compare`'s shared tracks, neighbour sets and
Jaccard, on every shared track rather than a sample. Above :data:`EXACT_GRAPH_MAX` shared tracks the neighbours
are searched through an IVF index (recall@10 about 0.97), below exactly, in blocks.

Results are cached in the first run's folder, ``<run>/agreement/<other run>-k<k>.npz``, until either run's
tracks or embeddings change.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis.compare import NEIGHBOURS, SAMPLE, jaccard, neighbour_sets, shared_tracks
from core.base.errors import CompareError
from core.base.io import atomic_write_bytes
from core.base.paths import runs_dir
from core.base.progress import Progress, or_silent
from core.runs.folder import Run, list_runs, load_run
from core.search.exact import l2_normalise

AGREEMENT_FOLDER = "agreement"


# Above this many shared tracks the neighbours are searched through an IVF index, below exactly (faiss
# IndexFlatIP): at 100k the exact all-pairs search took 513 s on the loaded 2-core machine and the IVF one 646 s
# (its k-means, calibration and 100k small searches cost more than one BLAS product saves); at 1M exact would be
# 100 times the 100k cost, the IVF search about 0.33 ms a track (benchmarks.bench_scale).
EXACT_GRAPH_MAX = 200_000


JACCARD_BLOCK = 100_000  # rows per block of the Jaccard (it compares k x k ids per row at once)


BLOCK = 2048  # queries per block of the neighbour search: a block's similarities are BLOCK x n float32


def _without_self(idx: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """``k`` neighbours per row of ``idx`` [shape=(m, k + 1)] without the row's own index ``own`` [shape=(m,)]
    (the last one dropped where the row itself was not found: a duplicate vector may outrank it)."""
    keep = idx != own[:, None]
    keep[keep.sum(axis=1) > k, -1] = False
    return idx[keep].reshape(len(idx), k)


def neighbour_graph(x: np.ndarray, *, k: int = NEIGHBOURS, progress: Optional[Progress] = None) -> np.ndarray:
    """Each row's ``k`` nearest other rows by cosine, for any number of rows.

    Up to :data:`core.analysis.compare.SAMPLE` rows this is :func:`core.analysis.compare.neighbour_sets` (one
    similarity matrix); above, exact search (faiss ``IndexFlatIP``) in blocks of :data:`BLOCK` rows, and above
    :data:`EXACT_GRAPH_MAX` rows through an IVF index built for the purpose.

    Returns
    -------
    np.ndarray [shape=(n, min(k, n - 1)), dtype=int64]
    """
    import faiss

    from core.search.ann import build_index

    if len(x) <= SAMPLE:
        return neighbour_sets(x, k=k)
    tell = or_silent(progress)
    x = np.ascontiguousarray(l2_normalise(x))
    n, k = len(x), min(k, len(x) - 1)
    if n > EXACT_GRAPH_MAX:
        ivf = build_index(x)

        def search(queries: np.ndarray) -> np.ndarray:
            return ivf.search(queries, k=k + 1)[0]
    else:  # exact inner products with faiss's fused top-k: twice as fast as numpy's product + argpartition
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)

        def search(queries: np.ndarray) -> np.ndarray:
            return flat.search(queries, k + 1)[1]
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, BLOCK):
        queries = x[start:start + BLOCK]
        out[start:start + len(queries)] = _without_self(search(queries), np.arange(start, start + len(queries)), k)
        tell(min(start + BLOCK, n), n, "neighbours")
    return out


def _stamp(run: Run) -> list:
    return [[(s := (Path(run.path) / f).stat()).st_mtime_ns, s.st_size] for f in ("tracks.parquet", "embeddings.npy")]


def _cache_key(run_a: Run, run_b: Run, k: int) -> str:
    return json.dumps({"a": _stamp(run_a), "b": _stamp(run_b), "k": k})


def _cache_path(run_a: Run, run_b: Run, k: int) -> Path:
    return Path(run_a.path) / AGREEMENT_FOLDER / f"{run_b.run_id}-k{k}.npz"


def track_agreement(run_a: Run | str, run_b: Run | str, *, k: int = NEIGHBOURS,
                    progress: Optional[Progress] = None) -> np.ndarray:
    """Each track's neighbour agreement between two runs: the Jaccard overlap of its ``k`` nearest neighbours
    in ``run_a``'s space and in ``run_b``'s, both searched among the tracks the two runs share.

    Computed once per pair and cached in ``run_a``'s folder (atomic write); reading the cache takes
    milliseconds. Measured with ``python -m benchmarks.bench_atlas --only agreement`` on the 2-core machine while
    it was loaded (load average 13-15; synthetic 128-d embeddings): 11 s at 10,000 shared tracks, 8.5 minutes at
    100,000 (exact search); at 1,000,000 (not run) the two IVF searches alone come to about 11 minutes. Above a
    few thousand tracks the Map page runs it as a background job (``agreement`` in :mod:`core.jobs.registry`;
    ``progress`` is told per block).

    Parameters
    ----------
    run_a, run_b : Run or str
    k : int
    progress : core.base.progress.Progress or None
        Told after each block of each run's search.

    Returns
    -------
    np.ndarray [shape=(len(run_a.tracks),), dtype=float32]
        In [0, 1] (1: the same neighbours in both runs); NaN for tracks ``run_b`` lacks.

    Raises
    ------
    CompareError
        The same run twice, or runs that share fewer than 3 tracks.
    """
    run_a, run_b = (r if isinstance(r, Run) else load_run(r) for r in (run_a, run_b))
    cached = stored_agreement(run_a, run_b, k=k)
    if cached is not None:
        return cached
    tell = or_silent(progress)
    shared = shared_tracks([run_a, run_b], sample=max(len(run_a.tracks), 3))
    graphs = {}
    for i, run in enumerate((run_a, run_b)):
        def step(done: int, total: int, message: str = "", i=i, **values) -> None:
            tell(i * total + done, 2 * total, f"{run.run_id}: {message}")

        graphs[run.run_id] = neighbour_graph(run.embeddings[shared.rows[run.run_id]], k=k, progress=step)
    mine, theirs = graphs[run_a.run_id], graphs[run_b.run_id]
    scores = np.concatenate([jaccard(mine[s:s + JACCARD_BLOCK], theirs[s:s + JACCARD_BLOCK])
                             for s in range(0, len(mine), JACCARD_BLOCK)])
    out = np.full(len(run_a.tracks), np.nan, dtype=np.float32)
    out[shared.rows[run_a.run_id]] = scores
    buffer = io.BytesIO()
    np.savez(buffer, agreement=out, key=np.array(_cache_key(run_a, run_b, k)))
    atomic_write_bytes(_cache_path(run_a, run_b, k), buffer.getvalue())
    return out


def stored_agreement(run_a: Run | str, run_b: Run | str, *, k: int = NEIGHBOURS) -> Optional[np.ndarray]:
    """:func:`track_agreement` when it is cached for both runs as they are now (milliseconds), else None: a page
    asks this first and starts the computation as a background job (``agreement``) when it is missing.

    Raises
    ------
    CompareError
        The same run twice.
    """
    run_a, run_b = (r if isinstance(r, Run) else load_run(r) for r in (run_a, run_b))
    if run_a.run_id == run_b.run_id:
        raise CompareError(f"neighbour agreement needs two different runs, not {run_a.run_id} twice")
    try:
        with np.load(_cache_path(run_a, run_b, k), allow_pickle=False) as cached:
            if str(cached["key"]) == _cache_key(run_a, run_b, k) and len(cached["agreement"]) == len(run_a.tracks):
                return cached["agreement"]
    except (OSError, ValueError, KeyError):  # none yet, or unreadable: compute again
        pass
    return None


def agreement_runs(run: Run | str) -> list[str]:
    """Runs that share at least one track with ``run`` (matched by ``track_id``), newest first: the runs a
    map can be coloured by neighbour agreement with. Broken runs are left out."""
    run = run if isinstance(run, Run) else load_run(run)
    mine = pd.Index(run.tracks["track_id"].astype(str).to_numpy())
    found = []
    for other in list_runs():
        if other == run.run_id:
            continue
        try:
            theirs = pd.read_parquet(runs_dir() / other / "tracks.parquet", columns=["track_id"])
        except Exception:  # noqa: BLE001 - a broken run (pyarrow's errors vary) is simply not offered
            continue
        if mine.isin(theirs["track_id"].astype(str).to_numpy()).any():
            found.append(other)
    return found
