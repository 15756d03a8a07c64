"""Query by recording: does a degraded phone-like recording of a library track find that track first?

For a sample of library tracks, a 10 s excerpt is cut at a random place, low-passed at 3.4 kHz (a phone
line's band), drowned in white noise at 10 dB SNR and given a random gain (clipped like a recorder), then
searched as any upload is (track embeddings, then passages: :mod:`core.search.passages`) against the whole library.
The figures are the share of queries whose source comes first (and within the top 5) and the mean reciprocal
rank. Everything is drawn from a generator seeded per track, so a run's figure is reproducible and two runs are
compared on the same queries.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Sequence

import numpy as np

from core.audio.decode import load_audio
from core.base.config import MAX_SEED, MAX_SNR_DB, check_bounds, doc
from core.base.constants import FMAX, FMIN
from core.base.errors import TimbreError
from core.base.progress import Progress, or_silent


@dataclasses.dataclass(frozen=True)
class RecordingEvalConfig:
    """How the degraded queries are made (the issue's definition of a phone-like recording)."""

    excerpt_seconds: float = doc(10.0, "a short recording, as from a phone held up to a speaker", at_least=1.0,
                                     at_most=600.0)
    lowpass_hz: float = doc(3400.0, "a telephone band's upper edge", at_least=FMIN, at_most=FMAX)
    lowpass_order: int = doc(8, "steep enough that nothing much above the edge survives", at_least=1, at_most=32)
    snr_db: float = doc(10.0, "white noise 10 dB below the excerpt's power: a noisy room", at_least=-30.0,
                          at_most=MAX_SNR_DB)
    gain_db: tuple[float, float] = doc((-20.0, 6.0), "random level; above 0 dB the recording clips at full scale",
                                       at_least=-60.0, at_most=40.0)
    max_queries: int = doc(200, "a sample of the library is queried (each query decodes its track again)",
                          at_least=1, at_most=1_000_000)
    seed: int = doc(0, "the same queries for every run of a library", at_least=0, at_most=MAX_SEED)

    def __post_init__(self):
        check_bounds(self)


def degrade(y: np.ndarray, *, sr: int, rng: np.random.Generator,
            cfg: RecordingEvalConfig = RecordingEvalConfig()) -> np.ndarray:
    """A phone-like recording of a random excerpt of ``y``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono audio at ``sr``.

    Returns
    -------
    np.ndarray [shape=(min(n_samples, excerpt_seconds * sr),), dtype=float32]
        Values within [-1, 1].
    """
    from scipy.signal import butter, sosfilt

    n = int(round(cfg.excerpt_seconds * sr))
    start = int(rng.integers(0, max(1, len(y) - n + 1)))
    x = np.asarray(y[start:start + n], dtype=np.float64)
    x = sosfilt(butter(cfg.lowpass_order, cfg.lowpass_hz, fs=sr, output="sos"), x)
    power = float(np.mean(x ** 2)) or 1e-12
    x = x + rng.standard_normal(len(x)) * np.sqrt(power * 10 ** (-cfg.snr_db / 10))
    x = x * 10 ** (rng.uniform(*cfg.gain_db) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def query_rows(n_tracks: int, cfg: RecordingEvalConfig) -> np.ndarray:
    """The library rows queried: all of them, or a seeded sample of ``max_queries`` (ascending)."""
    if n_tracks <= cfg.max_queries:
        return np.arange(n_tracks)
    return np.sort(np.random.default_rng(cfg.seed).choice(n_tracks, size=cfg.max_queries, replace=False))


def recording_evaluation(paths: Sequence[str], *, sr: int,
                         score: Callable[[list[np.ndarray]], np.ndarray],
                         cfg: RecordingEvalConfig = RecordingEvalConfig(), batch: int = 32,
                         progress: Optional[Progress] = None) -> dict | None:
    """Rank each degraded excerpt's source among all library tracks.

    Parameters
    ----------
    paths : sequence of str [shape=(n_tracks,)]
        Each library track's audio file, in library row order.
    sr : int
        Rate ``score`` expects.
    score : callable(list of np.ndarray [shape=(n_samples,)]) -> np.ndarray [shape=(q, n_tracks)]
        Ranking scores of every library track for each query (higher first), searched exactly as the run
        searches for an upload (:meth:`core.search.passages.Matcher.scores`).
    progress : Progress or None
        ``progress(done, total, "recordings")``.

    Returns
    -------
    dict or None
        ``{"top1", "top5", "mrr", "median_rank", "n_queries", "n_unreadable", "config"}``; None when no track's
        audio can be read any more (moved or deleted files are counted in ``n_unreadable``).
    """
    progress = or_silent(progress)
    rows = query_rows(len(paths), cfg)
    ranks: list[int] = []
    unreadable = 0

    def recording(row: int) -> np.ndarray | None:
        try:
            y = load_audio(paths[row], sr=sr, max_seconds=600.0)
        except TimbreError:
            return None
        return degrade(y, sr=sr, rng=np.random.default_rng([cfg.seed, int(row)]), cfg=cfg)

    with ThreadPoolExecutor(max_workers=2) as pool:  # decoding and resampling release the GIL
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            clips = list(pool.map(recording, part))
            kept = [(r, c) for r, c in zip(part, clips) if c is not None]
            unreadable += len(part) - len(kept)
            if kept:
                sims = score([c for _, c in kept])
                own = sims[np.arange(len(kept)), [r for r, _ in kept]]
                ranks.extend((1 + (sims > own[:, None]).sum(axis=1)).tolist())
            progress(min(start + batch, len(rows)), len(rows), "recordings")
    if not ranks:
        return None
    r = np.asarray(ranks)
    return {"top1": float(np.mean(r == 1)), "top5": float(np.mean(r <= 5)), "mrr": float(np.mean(1.0 / r)),
            "median_rank": float(np.median(r)), "n_queries": int(len(r)), "n_unreadable": int(unreadable),
            "config": dataclasses.asdict(cfg)}


def evaluate_run(run, *, progress: Optional[Progress] = None) -> dict | None:
    """Query-by-recording evaluation of an existing run (a :class:`core.runs.folder.Run`), written into its
    ``metrics.json`` (replacing an older one); returns it, or None when no track's audio can be read."""
    from core.base.io import atomic_write_json
    from core.search.passages import add_passages, matcher_for

    add_passages(run, progress=progress)  # an older run gets the passages new runs are written with
    result = recording_evaluation(
        run.tracks["path"].astype(str).tolist(), sr=run.mel_params.sr,
        score=matcher_for(run).scores,  # exactly as an upload to the run is searched
        cfg=RecordingEvalConfig(seed=run.config.get("seed", 0)), progress=progress)
    if result is not None:
        atomic_write_json(run.path / "metrics.json", {**run.metrics, "recording_eval": result})
    return result
