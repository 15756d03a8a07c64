"""Query-by-recording evaluation: the degradation is what it says, and ranking finds sources it should find."""
from __future__ import annotations

import numpy as np
import pytest

from core.evaluation.recording import RecordingEvalConfig, degrade, query_rows, recording_evaluation
from tests.audio_files import sine, write_audio

SR = 22_050


def _band_power(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_degrade_cuts_an_excerpt_low_passes_and_adds_noise_at_the_snr(rng):
    cfg = RecordingEvalConfig(gain_db=(0.0, 0.0), snr_db=10.0)
    y = (0.1 * (sine(1000.0, seconds=30.0, sr=SR) + sine(6000.0, seconds=30.0, sr=SR))).astype(np.float32)
    clean = degrade(y, sr=SR, rng=np.random.default_rng(0), cfg=RecordingEvalConfig(gain_db=(0.0, 0.0), snr_db=200.0))
    noisy = degrade(y, sr=SR, rng=np.random.default_rng(0), cfg=cfg)
    assert len(noisy) == 10 * SR
    assert _band_power(clean, 5500, 6500) < 1e-4 * _band_power(clean, 900, 1100)  # 6 kHz is gone, 1 kHz stays
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_degrade_gain_clips_at_full_scale():
    y = 0.9 * sine(440.0, seconds=12.0, sr=SR)
    out = degrade(y, sr=SR, rng=np.random.default_rng(1), cfg=RecordingEvalConfig(gain_db=(12.0, 12.0)))
    assert np.abs(out).max() == pytest.approx(1.0)


def test_short_tracks_give_their_whole_length():
    y = sine(440.0, seconds=4.0, sr=SR)
    assert len(degrade(y, sr=SR, rng=np.random.default_rng(0))) == len(y)


def test_query_rows_sample_is_seeded_and_capped():
    cfg = RecordingEvalConfig(max_queries=50, seed=3)
    rows = query_rows(1000, cfg)
    assert len(rows) == 50 and len(set(rows)) == 50 and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, query_rows(1000, cfg))
    assert np.array_equal(query_rows(20, cfg), np.arange(20))


def _spectral_embed(signals: list[np.ndarray]) -> np.ndarray:
    """A toy embedder that knows a sine's pitch below 3.4 kHz: the normalised spectrum up to 3 kHz."""
    rows = []
    for y in signals:
        spec = np.abs(np.fft.rfft(y[:SR * 3], n=SR * 3))[: 3 * 3000]
        rows.append(spec / np.linalg.norm(spec))
    return np.stack(rows)


def test_sources_are_found_and_unreadable_files_counted(tmp_path):
    freqs = [300.0, 500.0, 800.0, 1200.0, 2000.0]
    paths = [str(write_audio(tmp_path / f"t{i}.wav", sine(f, seconds=12.0, sr=SR), SR)) for i, f in enumerate(freqs)]
    library = _spectral_embed([sine(f, seconds=12.0, sr=SR) for f in freqs])
    (tmp_path / "t4.wav").unlink()  # a library file that has gone since ingest
    seen = []
    result = recording_evaluation(paths, sr=SR, score=lambda s: _spectral_embed(s) @ library.T,
                                  progress=lambda done, total, message="", **v: seen.append((done, total)))
    assert result["n_queries"] == 4 and result["n_unreadable"] == 1
    assert result["top1"] == 1.0 and result["mrr"] == 1.0
    assert seen[-1] == (5, 5)


def test_a_useless_embedding_scores_low(tmp_path, rng):
    freqs = np.linspace(300, 3000, 12)
    paths = [str(write_audio(tmp_path / f"t{i}.wav", sine(f, seconds=12.0, sr=SR), SR)) for i, f in enumerate(freqs)]
    library = rng.standard_normal((12, 8))
    result = recording_evaluation(paths, sr=SR, score=lambda s: rng.standard_normal((len(s), 8)) @ library.T)
    assert result["top1"] < 0.5


def test_nothing_readable_gives_none(tmp_path):
    assert recording_evaluation([str(tmp_path / "a.wav"), str(tmp_path / "b.wav")], sr=SR,
                                score=lambda s: np.zeros((len(s), 2))) is None
