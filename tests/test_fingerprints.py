"""core.search.fingerprints: landmark hashes find a noisy, band-limited excerpt's source track at the right time
offset, and music not in the library gathers only a few scattered votes."""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from core.search.fingerprints import FingerprintIndex, landmarks, spectral_peaks

SR = 22_050


def melody(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Random three-note chords (0.1-0.3 s each, 300-3,500 Hz): a track whose spectral peaks are its own."""
    out = []
    while sum(map(len, out)) < seconds * SR:
        n = int(rng.uniform(0.1, 0.3) * SR)
        t = np.arange(n) / SR
        out.append(sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(300, 3500, 3)) * np.hanning(n))
    return (0.3 * np.concatenate(out)[:int(seconds * SR)]).astype(np.float32)


def test_peaks_are_in_the_band_and_hashes_are_made(rng):
    y = melody(rng, 5.0)
    frames, bins = spectral_peaks(y, sr=SR)
    hz = bins * SR / 2048
    assert len(frames) > 50 and hz.min() >= 290 and hz.max() <= 4020 and np.all(np.diff(frames) >= 0)
    hashes, times = landmarks(y, sr=SR)
    assert hashes.dtype == np.uint32 and len(hashes) == len(times) > len(frames)
    assert landmarks(np.zeros(100, np.float32), sr=SR)[0].size == 0  # shorter than one frame


def test_a_degraded_excerpt_finds_its_track_and_outside_music_does_not(rng):
    tracks = [melody(np.random.default_rng(i), 30.0) for i in range(8)]
    index = FingerprintIndex.build(tracks, np.arange(10, 18), sr=SR)
    excerpt = tracks[3][int(12.3 * SR):int(15.3 * SR)]  # 3 s from 12.3 s on
    band = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos"), excerpt)
    noisy = band + rng.standard_normal(len(band)) * np.sqrt(np.mean(band ** 2)) * 10 ** (-10 / 20)
    rows, votes = index.votes(0.3 * noisy, sr=SR, k=3)
    assert rows[0] == 13 and votes[0] >= 5 * max(votes[1:].max(initial=1), 1)
    outside_rows, outside_votes = index.votes(melody(np.random.default_rng(99), 3.0), sr=SR, k=3)
    assert outside_votes.max(initial=0) < votes[0] / 4
