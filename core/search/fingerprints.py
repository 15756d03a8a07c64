"""Landmark fingerprints: the fingerprint stage of live listening, whose candidates the embedding re-ranks
(:class:`core.service.listen.StreamMatcher`).

Shazam's and dejavu's method on the project's STFT: spectral peaks between 300 and 4,000 Hz (the band a telephone
and a laptop microphone both keep), each paired with a few later peaks; a pair's (frequency, frequency step, time
step) is a hash that survives noise, band limits, level and lossy codecs, because it keeps only where the
loudest components are, not how loud. A library is an inverted index; a query's hashes vote for (track, time
offset) pairs, and a track's score is its best offset's votes: a recording of the track piles its votes on one
offset, other music scatters them.

The index is laid out as a compressed sparse row table (no hash is stored): a hash is a dense id below
``n_hashes`` (anchor bin, target bin, frame step), ``starts[h]:starts[h + 1]`` are its entries, and each entry
is the library row (int32) and anchor frame (uint16: 25 min of audio) it came from, 6 bytes a landmark. A lookup
touches only the query's buckets, so the files are memory-mapped when read (:mod:`core.search.fingerprint_store`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from core.base.config import doc

N_FFT, HOP = 2048, 512
MAX_FRAME = np.iinfo(np.uint16).max  # anchor frames stored as uint16: 25 min at 22,050 Hz
OFFSET_TOLERANCE = 1  # frames: a recording's peaks land a frame early or late (hop phase, a room's echo)


@dataclasses.dataclass(frozen=True)
class FingerprintConfig:
    """How landmarks are picked and paired."""

    fmin_hz: float = doc(300.0, "a telephone band's lower edge: no landmark a phone cannot hear", above=0.0,
                         at_most=48_000.0)
    fmax_hz: float = doc(4000.0, "just above a telephone band's upper edge", above=0.0, at_most=48_000.0)
    peaks_per_second: int = doc(30, "the loudest local maxima kept per second of audio", at_least=1)
    neighbourhood: tuple[int, int] = doc((11, 9), "a peak is the maximum of this many bins x frames around it",
                                         at_least=1)
    fan_out: int = doc(15, "later peaks paired with each anchor: on emotify-dev's degraded 3 s excerpts top-1 0.93-1.00 "
                           "against 0.60-0.85 with 5 (and 0.90-0.95 with 10), for 3.3x the entries of 5",
                       at_least=1)
    max_dt: int = doc(40, "frames (about 0.9 s) within which a pair is made", at_least=1)

    def bins(self, sr: int) -> tuple[int, int]:
        """The STFT bins ``[lo, hi)`` of the landmark band at ``sr``."""
        return int(self.fmin_hz * N_FFT / sr), int(min(self.fmax_hz, sr / 2) * N_FFT / sr) + 1

    def n_hashes(self, sr: int) -> int:
        """How many distinct hashes there are: (anchor bin, target bin, frame step)."""
        lo, hi = self.bins(sr)
        return (hi - lo) ** 2 * self.max_dt


def spectral_peaks(y: np.ndarray, *, sr: int, cfg: FingerprintConfig = FingerprintConfig()) -> tuple[np.ndarray, np.ndarray]:
    """The loudest local maxima of the log spectrogram in the landmark band: frame and bin of each, sorted by
    frame, np.ndarray [shape=(p,), dtype=int32] each."""
    import librosa
    from scipy.ndimage import maximum_filter

    if len(y) < N_FFT:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    spec = np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=N_FFT, hop_length=HOP, center=False))
    lo, hi = cfg.bins(sr)
    db = 20 * np.log10(np.maximum(spec[lo:hi], 1e-6))
    is_peak = (db == maximum_filter(db, size=cfg.neighbourhood, mode="constant", cval=-1e9)) & (db > db.max() - 60)
    bins, frames = np.nonzero(is_peak)
    strength = db[bins, frames]
    keep = max(1, int(cfg.peaks_per_second * db.shape[1] * HOP / sr))
    top = np.argsort(-strength, kind="stable")[:keep]
    order = np.lexsort((bins[top], frames[top]))
    return frames[top][order].astype(np.int32), (bins[top][order] + lo).astype(np.int32)


def landmarks(y: np.ndarray, *, sr: int, cfg: FingerprintConfig = FingerprintConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of peak pairs (dense ids below :meth:`FingerprintConfig.n_hashes`) and their anchor frames,
    np.ndarray [shape=(h,), dtype=uint32] and [shape=(h,), dtype=int32]."""
    frames, bins = spectral_peaks(y, sr=sr, cfg=cfg)
    lo, hi = cfg.bins(sr)
    width = hi - lo
    hashes, times = [], []
    for step in range(1, cfg.fan_out + 1):
        a, b = slice(0, len(frames) - step), slice(step, len(frames))
        dt = frames[b] - frames[a]
        ok = (dt > 0) & (dt <= cfg.max_dt)
        pair = (bins[a][ok] - lo).astype(np.int64) * width + (bins[b][ok] - lo)
        hashes.append((pair * cfg.max_dt + dt[ok] - 1).astype(np.uint32))
        times.append(frames[a][ok])
    if not hashes:
        return np.zeros(0, np.uint32), np.zeros(0, np.int32)
    return np.concatenate(hashes), np.concatenate(times).astype(np.int32)


@dataclasses.dataclass
class FingerprintIndex:
    """An inverted index of a library's landmarks.

    Attributes
    ----------
    starts : np.ndarray [shape=(n_hashes + 1,), dtype=int64]
        Hash ``h`` owns entries ``starts[h]:starts[h + 1]``.
    rows : np.ndarray [shape=(h,), dtype=int32]
        The library row of each entry.
    times : np.ndarray [shape=(h,), dtype=uint16]
        The anchor frame of each entry.
    n_tracks : int
        Library rows are below it.
    """

    starts: np.ndarray
    rows: np.ndarray
    times: np.ndarray
    n_tracks: int

    @classmethod
    def from_landmarks(cls, hashes: np.ndarray, rows: np.ndarray, times: np.ndarray, *, n_hashes: int,
                       n_tracks: int) -> "FingerprintIndex":
        """The index of landmarks given as three parallel arrays [shape=(h,)] (anchors past 25 min dropped)."""
        keep = times <= MAX_FRAME
        hashes, rows, times = hashes[keep], rows[keep], times[keep]
        order = np.argsort(hashes, kind="stable")
        starts = np.zeros(n_hashes + 1, np.int64)
        np.cumsum(np.bincount(hashes, minlength=n_hashes), out=starts[1:])
        return cls(starts=starts, rows=rows[order].astype(np.int32), times=times[order].astype(np.uint16),
                   n_tracks=int(n_tracks))

    @classmethod
    def build(cls, signals, rows, *, sr: int, n_tracks: Optional[int] = None,
              cfg: FingerprintConfig = FingerprintConfig(), progress=None) -> "FingerprintIndex":
        """Index mono ``signals`` at ``sr`` (an iterable; None for a track that could not be read), the i-th under
        library row ``rows[i]``; ``progress(done)`` after each."""
        rows = np.asarray(rows, dtype=np.int64)
        hashes, times, owners = [], [], []
        for i, (y, row) in enumerate(zip(signals, rows)):
            if y is not None:
                h, t = landmarks(y, sr=sr, cfg=cfg)
                hashes.append(h)
                times.append(t)
                owners.append(np.full(len(h), row, np.int32))
            if progress is not None:
                progress(i + 1)
        join = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
        return cls.from_landmarks(join(hashes, np.uint32), join(owners, np.int32), join(times, np.int32),
                                  n_hashes=cfg.n_hashes(sr),
                                  n_tracks=int(rows.max(initial=-1)) + 1 if n_tracks is None else n_tracks)

    @property
    def size_bytes(self) -> int:
        return int(self.starts.nbytes + self.rows.nbytes + self.times.nbytes)

    def lookup(self, hashes: np.ndarray, times: np.ndarray, *, budget: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Library entries of the query's ``hashes`` [shape=(q,)]: their rows and time offsets (library anchor
        frame minus the query's), np.ndarray [shape=(e,)] each. With a ``budget``, the rarest hashes first and no
        more entries than it allows (the commonest hashes, shared by many tracks, tell least apart)."""
        hashes = np.asarray(hashes, dtype=np.int64)
        lo, hi = self.starts[hashes], self.starts[hashes + 1]
        n = hi - lo
        if budget and n.sum() > budget:
            order = np.argsort(n, kind="stable")
            n = n.copy()
            n[order[np.cumsum(n[order]) > budget]] = 0
        total = int(n.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ends = np.cumsum(n)
        take = np.arange(total) + np.repeat(lo - (ends - n), n)
        offsets = self.times[take].astype(np.int64) - np.repeat(np.asarray(times, dtype=np.int64), n)
        return self.rows[take].astype(np.int64), offsets

    def votes(self, y: np.ndarray, *, sr: int, k: int = 5, cfg: FingerprintConfig = FingerprintConfig(),
              allowed: Optional[np.ndarray] = None, budget: int = 0,
              tolerance: int = OFFSET_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` library rows whose best time offset gathers the most of the audio's landmarks, and those
        vote counts, best first (np.ndarray [shape=(<=k,)] each); ``allowed`` [shape=(n_tracks,), dtype=bool]
        keeps only those rows; ``budget``: :meth:`vote`."""
        return self.vote(*landmarks(y, sr=sr, cfg=cfg), k=k, allowed=allowed, budget=budget, tolerance=tolerance)

    def vote(self, hashes: np.ndarray, times: np.ndarray, *, k: int = 5, allowed: Optional[np.ndarray] = None,
             budget: int = 0, shortlist: int = 200, tolerance: int = OFFSET_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`votes` of landmarks already made. Candidates: the ``shortlist`` rows with the most entries at any
        offset (a track's best offset can gather no more than all of its entries), within ``budget`` entries of
        the rarest hashes (0: all of them); the best ``k`` by best-offset votes are then counted again over every
        hash (:meth:`row_votes`), so a budget bounds the time a large library takes without lowering the votes."""
        rows, offsets = self.lookup(hashes, times, budget=budget)
        if allowed is not None:
            mine = allowed[rows]
            rows, offsets = rows[mine], offsets[mine]
        if len(rows) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        counts = np.bincount(rows, minlength=self.n_tracks)
        short = np.flatnonzero(counts)
        if len(short) > shortlist:
            short = short[np.argpartition(-counts[short], shortlist - 1)[:shortlist]]
        slot = np.full(self.n_tracks, -1, np.int64)
        slot[short] = np.arange(len(short))
        s = slot[rows]
        keep = s >= 0
        best = _best_offsets(s[keep], offsets[keep], len(short), tolerance=tolerance)
        order = np.lexsort((short, -best))[:k]
        found, votes = short[order].astype(np.int64), best[order]
        if budget:
            votes = self.row_votes(hashes, times, found, tolerance=tolerance)
            order = np.lexsort((found, -votes))
            found, votes = found[order], votes[order]
        return found, votes

    def row_votes(self, hashes: np.ndarray, times: np.ndarray, rows: np.ndarray, *,
                  tolerance: int = OFFSET_TOLERANCE) -> np.ndarray:
        """Best-offset votes of the query's landmarks for each of ``rows`` [shape=(c,)], over every hash: within a
        hash's bucket entries are in row order (tracks are indexed one after another), so each (hash, row) pair's
        entries are found by a binary search in its bucket, never by scanning it."""
        rows = np.asarray(rows, dtype=np.int64)
        hashes = np.asarray(hashes, dtype=np.int64)
        if len(rows) == 0 or len(hashes) == 0:
            return np.zeros(len(rows), np.int64)
        lo = np.broadcast_to(self.starts[hashes][:, None], (len(hashes), len(rows))).ravel()
        hi = np.broadcast_to(self.starts[hashes + 1][:, None], (len(hashes), len(rows))).ravel()
        want = np.broadcast_to(rows[None, :], (len(hashes), len(rows))).ravel()
        first, last = self._bisect(lo, hi, want, right=False), self._bisect(lo, hi, want, right=True)
        n = last - first
        total = int(n.sum())
        if total == 0:
            return np.zeros(len(rows), np.int64)
        ends = np.cumsum(n)
        take = np.arange(total) + np.repeat(first - (ends - n), n)
        query_t = np.repeat(np.repeat(np.asarray(times, np.int64), len(rows)), n)
        which = np.repeat(np.tile(np.arange(len(rows)), len(hashes)), n)
        return _best_offsets(which, self.times[take].astype(np.int64) - query_t, len(rows), tolerance=tolerance)

    def _bisect(self, lo: np.ndarray, hi: np.ndarray, want: np.ndarray, *, right: bool) -> np.ndarray:
        """For each segment ``rows[lo:hi]`` (sorted), where ``want`` goes in it (numpy's searchsorted, per segment)."""
        lo, hi = lo.copy(), hi.copy()
        active = np.flatnonzero(lo < hi)
        while len(active):
            mid = (lo[active] + hi[active]) // 2
            value = self.rows[mid]
            go = value <= want[active] if right else value < want[active]
            lo[active] = np.where(go, mid + 1, lo[active])
            hi[active] = np.where(go, hi[active], mid)
            active = active[lo[active] < hi[active]]
        return lo


def _best_offsets(slots: np.ndarray, offsets: np.ndarray, n: int, *, tolerance: int = 0) -> np.ndarray:
    """For each of ``n`` slots, the most entries whose time offsets lie within ``tolerance`` frames of one offset,
    np.ndarray [shape=(n,), dtype=int64]."""
    best = np.zeros(n, np.int64)
    if len(slots) == 0:
        return best
    span = int(offsets.max() - offsets.min()) + 1 + 2 * tolerance  # padded: a window never reaches the next slot
    keys, counts = np.unique(slots * span + (offsets - offsets.min() + tolerance), return_counts=True)
    if tolerance:
        total = np.concatenate([[0], np.cumsum(counts)])
        counts = total[np.searchsorted(keys, keys + tolerance, "right")] - total[np.searchsorted(keys, keys - tolerance)]
    np.maximum.at(best, keys // span, counts)
    return best
