"""Landmark fingerprints: the fingerprint stage beside the embedding passages, measured by
``python -m benchmarks.bench_listen --fingerprints``.

Shazam's and dejavu's method on the project's STFT: spectral peaks between 300 and 4,000 Hz (the band a telephone
and a laptop microphone both keep), each paired with a few later peaks; a pair's (frequency, frequency step, time
step) is a 32-bit hash that survives noise, band limits, level and lossy codecs, because it keeps only where the
loudest components are, not how loud. A library is an inverted index (hashes sorted, with their track and time);
a query's hashes vote for (track, time offset) pairs, and a track's score is its best offset's votes: a recording
of the track piles its votes on one offset, other music scatters them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from core.base.config import doc


@dataclasses.dataclass(frozen=True)
class FingerprintConfig:
    """How landmarks are picked and paired."""

    fmin_hz: float = doc(300.0, "a telephone band's lower edge: no landmark a phone cannot hear")
    fmax_hz: float = doc(4000.0, "just above a telephone band's upper edge")
    peaks_per_second: int = doc(30, "the loudest local maxima kept per second of audio")
    neighbourhood: tuple[int, int] = doc((11, 9), "a peak is the maximum of this many bins x frames around it")
    fan_out: int = doc(5, "later peaks paired with each anchor")
    max_dt: int = doc(40, "frames (about 0.9 s) within which a pair is made")


def spectral_peaks(y: np.ndarray, *, sr: int, cfg: FingerprintConfig = FingerprintConfig(),
                   n_fft: int = 2048, hop: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The loudest local maxima of the log spectrogram in the landmark band: frame and bin of each, sorted by
    frame, np.ndarray [shape=(p,), dtype=int32] each."""
    import librosa
    from scipy.ndimage import maximum_filter

    if len(y) < n_fft:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    spec = np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=hop, center=False))
    lo, hi = int(cfg.fmin_hz * n_fft / sr), int(cfg.fmax_hz * n_fft / sr) + 1
    db = 20 * np.log10(np.maximum(spec[lo:hi], 1e-6))
    is_peak = (db == maximum_filter(db, size=cfg.neighbourhood, mode="constant", cval=-1e9)) & (db > db.max() - 60)
    bins, frames = np.nonzero(is_peak)
    strength = db[bins, frames]
    keep = max(1, int(cfg.peaks_per_second * db.shape[1] * hop / sr))
    top = np.argsort(-strength, kind="stable")[:keep]
    order = np.lexsort((bins[top], frames[top]))
    return frames[top][order].astype(np.int32), (bins[top][order] + lo).astype(np.int32)


def landmarks(y: np.ndarray, *, sr: int, cfg: FingerprintConfig = FingerprintConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of peak pairs and their anchor frames, np.ndarray [shape=(h,), dtype=uint32] and [shape=(h,),
    dtype=int32]: 10 bits anchor bin, 10 bits target bin, 12 bits frame step."""
    frames, bins = spectral_peaks(y, sr=sr, cfg=cfg)
    hashes, times = [], []
    for step in range(1, cfg.fan_out + 1):
        a, b = slice(0, len(frames) - step), slice(step, len(frames))
        dt = frames[b] - frames[a]
        ok = (dt > 0) & (dt <= cfg.max_dt)
        hashes.append(((bins[a][ok] & 1023).astype(np.uint32) << 22) | ((bins[b][ok] & 1023).astype(np.uint32) << 12)
                      | (dt[ok] & 4095).astype(np.uint32))
        times.append(frames[a][ok])
    if not hashes:
        return np.zeros(0, np.uint32), np.zeros(0, np.int32)
    return np.concatenate(hashes), np.concatenate(times).astype(np.int32)


@dataclasses.dataclass
class FingerprintIndex:
    """An inverted index of a library's landmarks: ``hashes`` sorted, with the ``rows`` and ``times`` they came
    from (np.ndarray [shape=(h,)] each)."""

    hashes: np.ndarray
    rows: np.ndarray
    times: np.ndarray

    @classmethod
    def build(cls, signals, rows, *, sr: int, cfg: FingerprintConfig = FingerprintConfig()) -> "FingerprintIndex":
        """Index mono ``signals`` at ``sr``, the i-th under library row ``rows[i]``."""
        parts = [(*landmarks(y, sr=sr, cfg=cfg), row) for y, row in zip(signals, rows)]
        hashes = np.concatenate([h for h, _, _ in parts])
        times = np.concatenate([t for _, t, _ in parts])
        owners = np.concatenate([np.full(len(h), r, np.int32) for h, _, r in parts])
        order = np.argsort(hashes, kind="stable")
        return cls(hashes=hashes[order], rows=owners[order], times=times[order])

    def votes(self, y: np.ndarray, *, sr: int, k: int = 5,
              cfg: FingerprintConfig = FingerprintConfig()) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` library rows whose best time offset gathers the most of the query's landmarks, and those
        vote counts, best first (np.ndarray [shape=(<=k,)] each)."""
        hashes, times = landmarks(y, sr=sr, cfg=cfg)
        lo, hi = np.searchsorted(self.hashes, hashes, "left"), np.searchsorted(self.hashes, hashes, "right")
        counts = hi - lo
        if counts.sum() == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi) if b > a])
        query_t = np.repeat(times, counts)
        rows, offsets = self.rows[take].astype(np.int64), (self.times[take] - query_t).astype(np.int64)
        pairs, n = np.unique(rows * 1_000_003 + (offsets + 500_000), return_counts=True)
        best = {}
        for row, c in zip(pairs // 1_000_003, n):
            if c > best.get(row, 0):
                best[row] = c
        ranked = sorted(best.items(), key=lambda x: -x[1])[:k]
        return np.array([r for r, _ in ranked], np.int64), np.array([c for _, c in ranked], np.int64)
