"""Listening: a live stream of audio matched against a run while it plays.

:class:`StreamMatcher` takes PCM as it arrives (any rate; resampled as one stream, no seams) and, once every
``update_seconds`` of audio, matches the last ``window_seconds`` (a sliding window) as a query by audio is
matched (:func:`core.service.query.recommend_audio`: candidates by the window's embedding through the run's
search, the ANN index at scale, re-ranked by their passages), and says where the window sits on each map and
whether the stream is identified (:mod:`core.service.identify`).

Where the run has landmark fingerprints (:mod:`core.search.fingerprints`, :attr:`core.runs.folder.Run.fingerprints`)
they are the first stage: the window's landmarks vote for (track, time offset) pairs and the tracks with the most
votes at one offset join the embedding's candidates; the embedding re-ranks them all, each candidate's score
being its embedding score (the mean of track cosine and passage match) plus its fingerprint strength
(:meth:`ListenConfig.strength`: 0 for a vote or two, towards 1 for many). A recording of
a library track is found by its landmarks even where the embedding ranks a look-alike higher; music that is not in
the library gathers no votes and is ranked by what it sounds like, as before.

What makes an update cheap is that the window is never embedded from scratch: chunks start on the library's
passage grid (every ``passage_hop_seconds`` of the stream), each is embedded once, when it is complete, by one
pass through the encoder giving both its embedding and its passage embedding, and kept while it is inside the
window. An update embeds the one or two chunks that completed since the last, averages the window's chunk
embeddings into its embedding, searches and re-ranks. Before a whole chunk has arrived (the first
``chunk_seconds``), the audio so far is embedded as one chunk, repeated to length as any short query is.

A caller that falls behind (the page redraws, the network stalls) asks :meth:`StreamMatcher.feed` with all that
arrived: only the newest window is matched, the skipped ones are dropped, never queued.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd
import soxr
import torch

from core.audio.features import log_mel
from core.audio.live import dbfs
from core.base.config import doc
from core.base.constants import DEFAULT_K
from core.base.errors import AudioDecodeError
from core.model.embed import cut_chunks
from core.runs.folder import Run
from core.search.ann import search
from core.search.fingerprint_store import current_fingerprints
from core.search.passages import matcher_for, passage_alignment
from core.service.identify import Identification, IdentifyRule
from core.service.query import check_k, map_positions, neighbours_table

STREAM_NAME = "live stream"


@dataclasses.dataclass(frozen=True)
class ListenConfig:
    """How a stream is listened to."""

    window_seconds: float = doc(10.0, "the last seconds matched: long enough to be sure, short enough to follow "
                                      "a change of track", above=0.0)
    update_seconds: float = doc(1.0, "stream time between updates: at least one a second", above=0.0)
    k: int = doc(DEFAULT_K, "tracks listed in each update", at_least=1)
    silence_dbfs: float = doc(-60.0, "a quieter window is silence: nothing is matched")
    trail: int = doc(10, "past map positions kept for the fading trail", at_least=0)
    fingerprints: bool = doc(True, "use the run's landmark fingerprints when it has them (else embedding only)")
    fingerprint_candidates: int = doc(20, "tracks with the most votes added to the embedding's candidates",
                                      at_least=1)
    fingerprint_budget: int = doc(300_000, "index entries a window's candidates are sought among, the rarest hashes "
                                           "first: bounds an update at 100,000 tracks (the candidates' votes are "
                                           "then counted over every hash)", at_least=0)
    vote_floor: float = doc(4.0, "votes at one offset that give no strength (calibrated on emotify-dev, "
                                 "python -m benchmarks.bench_listen: a few votes already outrank a look-alike)",
                            at_least=0.0, at_most=1e6)
    vote_half: float = doc(8.0, "votes past the floor that give half the strength (calibrated with the floor: "
                                "15 landmark pairs an anchor give about 3x the votes of 5, chance votes too)",
                           above=0.0, at_most=1e6)
    rule: IdentifyRule = IdentifyRule()

    def strength(self, votes: np.ndarray) -> np.ndarray:
        """A candidate's fingerprint strength in [0, 1) from its votes [shape=(r,)]: what it adds to its score."""
        past = np.maximum(np.asarray(votes, dtype=np.float64) - self.vote_floor, 0.0)
        return past / (past + self.vote_half)


@dataclasses.dataclass(frozen=True)
class ListenUpdate:
    """One update of a live stream.

    Attributes
    ----------
    seconds : float
        Time into the stream (audio received so far).
    window_seconds : float
        Audio matched (the sliding window, shorter at the start).
    neighbours : pd.DataFrame
        ``rank, track_id, score, cosine, passage, aligned, votes, row`` and the track columns, best first
        (``aligned``: :func:`core.search.passages.passage_alignment`; ``votes``: landmark votes at the track's best
        time offset, NaN without fingerprints); empty when silent.
    positions : dict of str -> np.ndarray [shape=(2,)]
        The window on each map (empty when silent).
    identified : int or None
        The identified library row; ``identified_seconds`` when it was identified.
    margin : float
        Top-1 score over the second (NaN when silent): the rule's confidence.
    silent : bool
    """

    seconds: float
    window_seconds: float
    neighbours: pd.DataFrame
    positions: dict
    identified: Optional[int]
    identified_seconds: Optional[float]
    margin: float
    silent: bool = False

    def top(self) -> list[tuple[str, float]]:
        """``(track_id, score)`` best first."""
        return list(zip(self.neighbours["track_id"].astype(str), self.neighbours["score"].astype(float)))


def pcm_to_float(data: bytes, *, channels: int = 1) -> np.ndarray:
    """Signed 16-bit little-endian interleaved PCM as mono float32 in [-1, 1], np.ndarray [shape=(n,)].

    Raises
    ------
    AudioDecodeError
        The byte count is not whole frames.
    """
    width = 2 * channels
    if len(data) % width:
        raise AudioDecodeError(STREAM_NAME, f"{len(data)} bytes is not whole frames of {channels}-channel 16-bit PCM")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1)


class StreamMatcher:
    """The streaming matcher of one stream on one run.

    Parameters
    ----------
    run : Run
    sr : int
        Rate of the audio fed (resampled to the run's).
    config : ListenConfig
    rows : np.ndarray [shape=(r,), dtype=int64] or None
        Only these library rows are searched (None: the whole run).
    """

    def __init__(self, run: Run, *, sr: Optional[int] = None, config: ListenConfig = ListenConfig(),
                 rows: Optional[np.ndarray] = None):
        self.run, self.config = run, config
        self.k = check_k(config.k, available=len(run.tracks) if rows is None else len(rows))
        self.rows = None if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        self.matcher = matcher = matcher_for(run)
        self.params, self.chunk_frames = matcher.params, matcher.chunk_frames
        self.sr = self.params.sr
        hop = self.params.hop_length
        self.step = max(1, matcher.hop_frames or int(round(0.5 * self.params.frames_per_second()))) * hop
        self.chunk_samples = self.chunk_frames * hop
        # a chunk's first and last frames see real audio, not padding: its log-mel starts this many samples early
        # and it is embedded once this many more have arrived
        self.lookahead = -(-(self.params.n_fft // 2) // hop) * hop
        self.window = int(round(config.window_seconds * self.sr))
        self.every = int(round(config.update_seconds * self.sr))
        self.resampler = None if sr in (None, self.sr) else soxr.ResampleStream(sr, self.sr, 1, dtype="float32")
        self.audio = np.zeros(0, np.float32)  # the stream's tail, from absolute sample self.base
        self.base = 0
        self.total = 0
        self.last_update = 0
        self.chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # grid index -> (embedding, passage embedding)
        self.identification = Identification(rule=config.rule)
        self.trail: list[dict] = []
        self.fingerprints = current_fingerprints(run) if config.fingerprints else None
        self.candidates: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None  # the last update's, for study
        self.allowed = None
        if self.fingerprints is not None and self.rows is not None:
            self.allowed = np.zeros(len(run.tracks), bool)
            self.allowed[self.rows] = True

    # ------------------------------------------------------------------------------------------ audio in

    def feed(self, y: np.ndarray, *, update: bool = True) -> Optional[ListenUpdate]:
        """Append mono samples [shape=(n,)] at the stream's rate; when ``update_seconds`` of audio have arrived
        since the last update (and ``update``), match the newest window and return the update, else None."""
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if self.resampler is not None:
            y = self.resampler.resample_chunk(y)
        if not np.all(np.isfinite(y)):
            raise AudioDecodeError(STREAM_NAME, "the stream holds NaN or infinite samples")
        self.audio = np.concatenate([self.audio, y])
        self.total += y.size
        self._trim()
        if update and self.total - self.last_update >= self.every:
            return self.update()
        return None

    def finish(self) -> ListenUpdate:
        """The stream has ended: the resampler's last samples join it and its newest window is matched."""
        if self.resampler is not None:
            tail, self.resampler = self.resampler.resample_chunk(np.zeros(0, np.float32), last=True), None
            self.feed(tail, update=False)
        return self.update()

    def _trim(self) -> None:
        """Keep the audio the window's chunks can still need (a chunk's length and the lookahead beyond)."""
        keep_from = self.total - self.window - self.lookahead
        cut = max(0, (keep_from - self.base) // self.step * self.step)
        if cut:
            self.audio, self.base = self.audio[cut:], self.base + cut

    @property
    def seconds(self) -> float:
        return self.total / self.sr

    # ------------------------------------------------------------------------------------------ matching

    def update(self) -> ListenUpdate:
        """Match the newest window now (whatever has arrived) and step the identification rule."""
        self.last_update = self.total
        seconds = round(self.seconds, 3)
        start = max(0, self.total - self.window)
        recent = self.audio[start - self.base:]
        if recent.size == 0 or dbfs(recent) < self.config.silence_dbfs:
            row = self.identification.silence()
            nothing = neighbours_table(self.run, np.zeros(0, np.int64), np.zeros(0))
            return ListenUpdate(seconds, round(recent.size / self.sr, 3), nothing, {}, row,
                                self.identification.seconds, float("nan"), silent=True)
        embeddings, passages = self._window_chunks(start)
        query = embeddings.mean(axis=0)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        table = self._ranking(query, passages, self._votes(recent))
        scores = table["score"].to_numpy(np.float64)
        margin = float(scores[0] - scores[1]) if len(scores) > 1 else float("nan")
        passage, aligned, votes = (float(table[c].iloc[0]) if len(table) else float("nan")
                                   for c in ("passage", "aligned", "votes"))
        row = self.identification.step(table["row"].to_numpy(), scores, passage, aligned, seconds=seconds,
                                       votes=votes)
        positions = map_positions(self.run, query)
        if self.config.trail:
            self.trail = (self.trail + [positions])[-self.config.trail:]
        return ListenUpdate(seconds, round(min(self.total, self.window) / self.sr, 3), table, positions, row,
                            self.identification.seconds, margin)

    def _window_chunks(self, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and passage embeddings of the window's chunks, np.ndarray [shape=(m, d)] each: the
        complete grid chunks inside it (embedded once each), or the whole short stream as one chunk."""
        first = -(-start // self.step)  # the first grid chunk starting inside the window
        last = (self.total - self.chunk_samples - self.lookahead) // self.step
        self.chunks = {j: z for j, z in self.chunks.items() if j >= first}
        if last < first:  # shorter than a chunk so far: the audio, repeated to a chunk, never kept
            mel = log_mel(self.audio[start - self.base:], params=self.params)
            return self._embed(cut_chunks(mel, chunk_frames=self.chunk_frames, starts=lambda n: np.zeros(1, int)))
        todo = [j for j in range(first, last + 1) if j not in self.chunks]
        if todo:
            offset = todo[0] * self.step - self.base
            early = min(self.lookahead, offset)  # none at the stream's very start, as a library track's first chunk
            span = self.audio[offset - early:(todo[-1] * self.step - self.base) + self.chunk_samples + self.lookahead]
            mel = log_mel(span, params=self.params)
            frames = self.step // self.params.hop_length
            starts = early // self.params.hop_length + np.arange(len(todo)) * frames
            z, m = self._embed(np.stack([mel[:, s:s + self.chunk_frames] for s in starts]))
            self.chunks.update({j: (z[i], m[i]) for i, j in enumerate(todo)})
        held = [self.chunks[j] for j in range(first, last + 1)]
        return np.stack([z for z, _ in held]), np.stack([m for _, m in held])

    def _embed(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model = self.run.model
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chunks, dtype=np.float32))
            if hasattr(model, "embed_and_match"):
                z, m = model.embed_and_match(x)
            else:  # the musicnn reference: one embedding serves both
                z = m = model(x)
        return z.numpy(), m.numpy()

    def _votes(self, recent: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The fingerprint stage: the library rows whose best time offset gathers the most of the window's
        landmarks and their votes (np.ndarray [shape=(<=c,)] each), or None without fingerprints."""
        if self.fingerprints is None:
            return None
        return self.fingerprints.votes(recent, sr=self.sr, k=self.config.fingerprint_candidates, allowed=self.allowed,
                                       budget=self.config.fingerprint_budget)

    def _ranking(self, query: np.ndarray, passages: np.ndarray,
                 voted: Optional[tuple[np.ndarray, np.ndarray]] = None) -> pd.DataFrame:
        """The window's top-k: the embedding's candidates and the fingerprint stage's (``voted``), ranked by
        embedding score (re-ranked by passages where the run has them, as a query by audio is) plus fingerprint
        strength."""
        run, matcher = self.run, self.matcher
        available = len(run.tracks) if self.rows is None else len(self.rows)
        depth = min(max(self.k, matcher.depth), available)
        idx, sims = search(run.embeddings, query[None], k=depth, index=run.index, rows=self.rows)
        idx, sims = idx[0], sims[0]
        votes = np.full(len(idx), np.nan)
        if voted is not None:
            extra = voted[0][~np.isin(voted[0], idx)]
            idx = np.concatenate([idx, extra])
            sims = np.concatenate([sims, np.asarray(run.embeddings[extra], np.float32) @ query.astype(np.float32)])
            count = dict(zip(voted[0].tolist(), voted[1].tolist()))
            votes = np.array([count.get(int(r), 0) for r in idx], np.float64)
        strength = np.zeros(len(idx)) if voted is None else self.config.strength(votes)
        passage = aligned = np.full(len(idx), np.nan)
        scores = np.asarray(sims, np.float64)
        if matcher.matches_passages:
            scores, passage = matcher.rerank(passages, idx, sims)
        self.candidates = (idx, np.asarray(scores, np.float64), votes)  # rows, embedding scores, votes
        order = np.argsort(-(scores + strength), kind="stable")[:self.k]
        if matcher.matches_passages:
            aligned = np.full(len(idx), np.nan)
            aligned[order] = passage_alignment(passages, *matcher.passages, idx[order])
        table = neighbours_table(run, idx[order], (scores + strength)[order])
        for name, values in (("cosine", sims), ("passage", passage), ("aligned", aligned)):
            table[name] = np.round(np.asarray(values, np.float64)[order], 4)
        table["votes"] = votes[order]
        return table


def update_record(run: Run, update: ListenUpdate) -> dict:
    """An update as plain JSON-ready values (the CLI's ``--json`` lines, the API's WebSocket messages):
    ``seconds, window_seconds, silent, margin`` (None when silent), ``top`` (``track_id, name, score, cosine,
    passage, aligned, votes`` best first), ``positions`` (map -> ``[x, y]``), ``identified`` (a track id or None) and
    ``identified_seconds``."""
    from core.data.tracks import display_names

    table = update.neighbours
    names = display_names(table) if len(table) else []
    top = [{"track_id": str(row["track_id"]), "name": str(name), "score": float(row["score"]),
            "cosine": float(row["cosine"]),
            **{key: None if pd.isna(row[key]) else float(row[key]) for key in ("passage", "aligned", "votes")}}
           for row, name in zip(table.to_dict("records"), names)]
    identified = None if update.identified is None else str(run.tracks["track_id"].iloc[update.identified])
    return {"seconds": update.seconds, "window_seconds": update.window_seconds, "silent": update.silent,
            "margin": None if np.isnan(update.margin) else round(update.margin, 4), "top": top,
            "positions": {m: [round(float(v), 4) for v in xy] for m, xy in update.positions.items()},
            "identified": identified, "identified_seconds": update.identified_seconds}


def listen_to(run: Run, y: np.ndarray, *, config: ListenConfig = ListenConfig(),
              rows: Optional[np.ndarray] = None) -> list[ListenUpdate]:
    """Play mono audio at the run's rate into a :class:`StreamMatcher` as a live stream (one update every
    ``update_seconds``, the last one at the end) and return the updates."""
    stream = StreamMatcher(run, config=config, rows=rows)
    step = max(1, int(round(config.update_seconds * run.mel_params.sr)))
    updates = [stream.feed(y[i:i + step]) for i in range(0, len(y), step)]
    if stream.total > stream.last_update:
        updates.append(stream.update())
    return [u for u in updates if u is not None]
