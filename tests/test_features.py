import numpy as np
import pytest

from core.audio.features import MelParams, audio_features, log_mel, log_mel_from_magnitude, mel_basis, mfcc_stats, stft_magnitude
from tests.audio_files import sine


@pytest.mark.parametrize("freq", (220.0, 440.0, 1760.0))
def test_sine_peaks_in_the_mel_band_containing_its_frequency(freq):
    params = MelParams()
    mel = log_mel(sine(freq, 2.0), params=params)
    basis = mel_basis(params)
    fft_bin = int(round(freq * params.n_fft / params.sr))
    expected = basis[:, fft_bin].argmax()  # the band whose filter weights that frequency most
    assert abs(int(mel.mean(axis=1).argmax()) - int(expected)) <= 1


def test_log_mel_shape_dtype_and_floor():
    params = MelParams()
    y = np.zeros(22050 * 3, np.float32)
    y[:100] = 0.5
    mel = log_mel(y, params=params)
    assert mel.shape == (params.n_mels, 1 + y.size // params.hop_length)
    assert mel.dtype == np.float32
    assert mel.min() >= -params.top_db  # digital silence is floored, never -inf


def test_gain_shifts_log_mel_by_its_decibels():
    y = sine(440.0, 2.0)
    a, b = log_mel(y), log_mel(0.5 * y)
    loud = a > -60
    assert np.allclose((a - b)[loud], 20 * np.log10(2), atol=0.05)


def test_mel_params_roundtrip():
    params = MelParams(n_mels=64)
    assert MelParams.from_dict({**params.to_dict(), "unknown": 1}) == params


def test_mfcc_stats_shape_and_constant_signal():
    mel = np.full((96, 50), -20.0, np.float32)
    stats = mfcc_stats(mel)
    assert stats.shape == (40,)
    assert np.allclose(stats[1:20], 0.0, atol=1e-4) and np.allclose(stats[20:], 0.0, atol=1e-4)


def test_mfcc_stats_equal_the_orthonormal_dct_of_the_log_mel(rng):
    """librosa's MFCC on the shared mel is the DCT-II (orthonormal) this module used to write by hand."""
    import scipy.fft

    y = sine(220.0, 3.0) + sine(1760.0, 3.0, amp=0.2) + 0.05 * rng.standard_normal(3 * 22050).astype(np.float32)
    mel = log_mel(y)
    mfcc = scipy.fft.dct(mel, axis=0, type=2, norm="ortho")[:20]
    expected = np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)])
    assert np.allclose(mfcc_stats(mel), expected, rtol=1e-5, atol=1e-3)
    assert mfcc_stats(mel, n_mfcc=13).shape == (26,)


def test_audio_features_follow_the_signal(rng):
    params = MelParams()
    sr = params.sr
    # a click track at 120 bpm over noise vs a low sine: tempo, centroid and zcr must tell them apart
    clicks = 0.01 * rng.standard_normal(sr * 8).astype(np.float32)
    for start in range(0, clicks.size, sr // 2):
        clicks[start:start + 200] += rng.standard_normal(200).astype(np.float32)
    low = sine(110.0, 8.0)
    feats = {}
    for name, y in (("clicks", clicks), ("low", low)):
        mag = stft_magnitude(y, params=params)
        feats[name] = audio_features(y=y, magnitude=mag, mel_db=log_mel_from_magnitude(mag, params=params), params=params)
    assert abs(feats["clicks"]["tempo_bpm"] - 120) < 3 or abs(feats["clicks"]["tempo_bpm"] - 240) < 6
    assert feats["clicks"]["spectral_centroid_mean"] > 5 * feats["low"]["spectral_centroid_mean"]
    assert feats["clicks"]["zero_crossing_rate_mean"] > feats["low"]["zero_crossing_rate_mean"]
    assert max(feats["low"], key=lambda k: feats["low"][k] if k.startswith("chroma_") and k.endswith("_mean") else -1) == "chroma_A_mean"
    assert abs(feats["low"]["duration_s"] - 8.0) < 1e-3
    assert all(np.isfinite(v) for v in feats["low"].values())
    expected = {"tempo_bpm", "beat_strength", "rms_mean", "spectral_flatness_mean", "spectral_contrast_0_mean",
                "onset_strength_mean", "mfcc_20_std", "chroma_B_std"}
    assert expected <= set(feats["low"])
