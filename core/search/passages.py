"""Passages: chunk embeddings every half second of a library's tracks, to recognise recordings of them.

A track embedding (the mean of up to 16 chunk embeddings) is what maps, neighbours and classifiers compare. A
10 s phone recording covers a few seconds of one track, so averaging blurs exactly what identifies it. A query by
audio therefore also embeds its own chunks, and the best candidates by track embedding (the ANN index at scale)
each get a passage score: the mean, over those chunks, of the cosine of the candidate's best-matching passage.
Candidates rank by the mean of the two similarities, track and passage: a recording of a library track finds it
(its passages match), and music that is not in the library still ranks mostly by what it sounds like overall.
Passages come from the model's match head when it has one (:class:`core.model.encoder.Encoder`, ``match_dim``): trained
only to tell tracks apart, beside the embedding and without changing it. On emotify-dev a degraded recording
finds its source first in 0.965 of queries with the default recipe (README: Figures that matter).

Passages are stored in the run folder as float16 (``passages.npy`` [shape=(n_passages, d)] and
``passage_offsets.npy`` [shape=(n_tracks + 1,)]: track ``i`` owns rows ``offsets[i]:offsets[i + 1]``), memory
mapped when read, so a search touches only its candidates' rows.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from core.base.io import atomic_write_npy
from core.base.progress import Progress
from core.model.embed import embed_mels, embed_passages, embed_signals
from core.model.encoder import Encoder

PASSAGES_FILE = "passages.npy"


OFFSETS_FILE = "passage_offsets.npy"


MAX_QUERY_PASSAGES = 16  # a query's chunks every 0.5 s for up to 10.5 s of audio, else 16 evenly spread: a 30 s


MAX_PASSAGE_TRACKS = 50_000  # above this a run keeps track embeddings only (at most ~1.6 GB of passages)


DEFAULT_HOP_SECONDS = 0.5  # TrainConfig.passage_hop_seconds; runs older than it get this one


DEFAULT_DEPTH = 50  # TrainConfig.rerank_depth, likewise


MIN_ALIGN_CHUNKS = 4  # a time alignment needs this many chunks (2 s of stream past the first chunk at a 0.5 s hop)


CANDIDATE = 2.0  # added to a candidate's score (within [-1, 1]) in a full ranking: candidates above any cosine


def hop_frames_for(hop_seconds: float, params) -> int:
    """Frames between passages for a hop in seconds under log-mel ``params``."""
    return max(1, int(round(hop_seconds * params.frames_per_second())))


def library_passages(model, mels, *, params, chunk_frames: int, hop_seconds: float,
                     progress: Optional[Progress] = None) -> tuple[np.ndarray, np.ndarray] | None:
    """A library's passages (:func:`embed_passages`), or None where a run keeps track embeddings only: a hop of
    0, a model that is not the project's CNN (the musicnn reference), more than :data:`MAX_PASSAGE_TRACKS`."""
    if hop_seconds <= 0 or not isinstance(model, Encoder) or len(mels) > MAX_PASSAGE_TRACKS:
        return None
    return embed_passages(model, mels, chunk_frames=chunk_frames, hop_frames=hop_frames_for(hop_seconds, params),
                          progress=progress)


def add_passages(run, *, progress: Optional[Progress] = None) -> bool:
    """Give an older run (a :class:`core.runs.folder.Run` written before passages existed) its passages, from its
    dataset's log-mels; True when it has them now. Nothing is written when the dataset is gone or no longer
    holds the run's tracks (the run then keeps searching by track embeddings)."""
    from core.base.errors import TimbreError
    from core.data.dataset import load_dataset

    if run.passages is not None:
        return True
    train = run.config.get("train", {})
    try:
        ds = load_dataset(run.config["dataset"])
        mels = [ds.mel(t) for t in run.tracks["track_id"]]
    except (TimbreError, KeyError, OSError):
        return False
    found = library_passages(run.model, mels, params=run.mel_params, chunk_frames=run.config["chunk_frames"],
                             hop_seconds=train.get("passage_hop_seconds", DEFAULT_HOP_SECONDS), progress=progress)
    if found is None:
        return False
    write_passages(run.path, *found)
    run.__dict__.pop("passages", None)  # re-read on next use
    return True


def best_passage_scores(queries: np.ndarray, passages: np.ndarray, offsets: np.ndarray,
                        rows: np.ndarray) -> np.ndarray:
    """How well each candidate track contains the query: the mean over the query's chunks of the cosine of the
    candidate's best-matching passage.

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
        The query's chunk embeddings, L2-normalised.
    passages : np.ndarray [shape=(n_passages, d)]
    offsets : np.ndarray [shape=(n_tracks + 1,)]
    rows : np.ndarray [shape=(r,)]
        Candidate library rows.

    Returns
    -------
    np.ndarray [shape=(r,), dtype=float32]
        In [-1, 1].
    """
    sims, starts = _candidate_sims(queries, passages, offsets, rows)
    if sims is None:
        return np.zeros(0, dtype=np.float32)
    return np.maximum.reduceat(sims, starts, axis=0).mean(axis=1).astype(np.float32)


def _candidate_sims(queries, passages, offsets, rows) -> tuple[np.ndarray | None, np.ndarray]:
    """Cosines of every passage of candidate ``rows`` with every query chunk, [shape=(sum of their passages, m)],
    and where each candidate's passages start in it (None for no candidate)."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return None, np.zeros(0, dtype=np.int64)
    lengths = offsets[rows + 1] - offsets[rows]
    take = np.concatenate([np.arange(offsets[r], offsets[r + 1]) for r in rows])
    sims = np.asarray(passages[take], dtype=np.float32) @ queries.astype(np.float32).T  # [sum(lengths), m]
    return sims, np.concatenate([[0], np.cumsum(lengths)[:-1]])


def passage_alignment(queries: np.ndarray, passages: np.ndarray, offsets: np.ndarray, rows: np.ndarray,
                      *, tolerance: int = 1) -> np.ndarray:
    """How much of the query each candidate contains in time order: the number of the query's chunks whose
    best-matching passage lies at the candidate's most common offset (passage index minus chunk index, within
    ``tolerance``). The query's chunks must be consecutive on the library's passage grid (a live window's are): a
    recording of the track finds its passages one after another (every chunk, or all but those across a cut),
    music that is not in it finds a scatter of look-alike passages (a few by chance). Landmark fingerprints vote on
    time offsets the same way. A count, not a share, so that a window holding a change of track (or a loop) still
    counts the chunks of the part it matches.

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
        Chunk embeddings in time order, L2-normalised.
    passages, offsets, rows
        As :func:`best_passage_scores`.

    Returns
    -------
    np.ndarray [shape=(r,), dtype=float32]
        From 0 to ``m``; 0 for a query of fewer than :data:`MIN_ALIGN_CHUNKS` chunks (two or three chunks fall
        within a tolerance by chance).
    """
    sims, starts = _candidate_sims(queries, passages, offsets, rows)
    m = len(queries)
    if sims is None or m < MIN_ALIGN_CHUNKS:
        return np.zeros(len(np.atleast_1d(rows)), dtype=np.float32)
    ends = np.append(starts[1:], len(sims))
    out = np.zeros(len(starts), dtype=np.float32)
    for i, (a, b) in enumerate(zip(starts, ends)):
        shift = np.argmax(sims[a:b], axis=0) - np.arange(m)  # [m]
        out[i] = (np.abs(shift[:, None] - shift[None, :]) <= tolerance).sum(axis=0).max()
    return out


def write_passages(folder: Path, passages: np.ndarray, offsets: np.ndarray) -> None:
    """Store a library's passages in a run folder (float16: half the disk, the ranking unchanged)."""
    atomic_write_npy(Path(folder) / PASSAGES_FILE, passages.astype(np.float16))
    atomic_write_npy(Path(folder) / OFFSETS_FILE, offsets.astype(np.int64))


def read_passages(folder: Path, *, n_tracks: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A run folder's passages (memory-mapped) and offsets, or None when it has none (an older run, a
    reference run, a library above :data:`MAX_PASSAGE_TRACKS`) or they do not fit its ``n_tracks``."""
    folder = Path(folder)
    if not (folder / PASSAGES_FILE).is_file() or not (folder / OFFSETS_FILE).is_file():
        return None
    offsets = np.load(folder / OFFSETS_FILE, allow_pickle=False)
    passages = np.load(folder / PASSAGES_FILE, mmap_mode="r", allow_pickle=False)
    if len(offsets) != n_tracks + 1 or offsets[-1] != len(passages) or np.any(np.diff(offsets) < 1):
        return None  # written for another library: never index past it
    return passages, offsets


@dataclasses.dataclass
class Matcher:
    """Everything a query by audio needs from a run: its model and chunking, its track embeddings and, when it
    has them, its passages. Built from a run folder (:func:`matcher_for`) or, during training, from
    the run about to be written, so the evaluation in ``metrics.json`` searches exactly as queries will."""

    model: torch.nn.Module
    params: object  # core.audio.features.MelParams
    chunk_frames: int
    embed_chunks: int
    embeddings: np.ndarray  # [shape=(n_tracks, d)]
    passages: tuple[np.ndarray, np.ndarray] | None = None
    hop_frames: int = 0
    depth: int = DEFAULT_DEPTH

    @property
    def matches_passages(self) -> bool:
        return self.passages is not None and isinstance(self.model, Encoder)

    def embed(self, signals, *, chunks: bool = True) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Track embeddings of mono signals at the run's rate, np.ndarray [shape=(q, d)], and, when asked for
        and the run matches passages, each signal's chunk embeddings (list of np.ndarray [shape=(m_i, d)];
        else None)."""
        if not (chunks and self.matches_passages):
            return embed_signals(self.model, signals, params=self.params, chunk_frames=self.chunk_frames,
                                 max_chunks=self.embed_chunks), None
        from core.audio.features import log_mel

        mels = [log_mel(y, params=self.params) for y in signals]
        tracks = embed_mels(self.model, mels, chunk_frames=self.chunk_frames, max_chunks=self.embed_chunks)
        chunks, offsets = embed_passages(self.model, mels, chunk_frames=self.chunk_frames, hop_frames=self.hop_frames,
                                         max_passages=MAX_QUERY_PASSAGES)  # all queries' chunks in shared batches
        return tracks, np.split(chunks, offsets[1:-1])

    def rerank(self, chunks: np.ndarray, rows: np.ndarray, cosines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of candidate ``rows`` [shape=(r,)] for one query: the mean of their track cosines
        [shape=(r,)] and passage scores for the query's chunk embeddings [shape=(m, d)] (both in [-1, 1]),
        and the passage scores alone."""
        passages, offsets = self.passages
        passage = best_passage_scores(chunks, passages, offsets, rows)
        return (np.asarray(cosines, dtype=np.float32) + passage) / 2, passage

    def scores(self, signals) -> np.ndarray:
        """Ranking scores of every library track for each signal, np.ndarray [shape=(q, n_tracks)], higher
        first: the cosine of track embeddings, and for the ``depth`` best of those :data:`CANDIDATE` plus their
        :meth:`rerank` score (exact search: the evaluation's use)."""
        tracks, chunks = self.embed(signals)
        sims = tracks @ self.embeddings.T
        if chunks is None:
            return sims
        depth = min(self.depth, sims.shape[1])
        for i, q in enumerate(chunks):
            top = np.argpartition(-sims[i], depth - 1)[:depth]
            sims[i, top] = CANDIDATE + self.rerank(q, top, sims[i, top])[0]
        return sims


def matcher_for(run) -> Matcher:
    """How a query by audio searches ``run`` (a :class:`core.runs.folder.Run`): its model, chunking, embeddings
    and passages, and the passage settings it was trained with (older runs get today's defaults). Cheap: the
    run's own attributes, loaded once by the run, are shared, nothing is copied."""
    train = run.config["train"]
    return Matcher(model=run.model, params=run.mel_params, chunk_frames=run.config["chunk_frames"],
                   embed_chunks=train["embed_chunks"], embeddings=run.embeddings, passages=run.passages,
                   hop_frames=hop_frames_for(train.get("passage_hop_seconds", DEFAULT_HOP_SECONDS), run.mel_params),
                   depth=train.get("rerank_depth", DEFAULT_DEPTH))
