"""Log-mel spectrograms (the one function training, ingest and queries share) and classic audio features."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from core.base.config import doc
from core.base.constants import FMAX, FMIN, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, TOP_DB


@dataclasses.dataclass(frozen=True)
class MelParams:
    """Log-mel parameters; stored with every dataset and run so that queries match training exactly."""

    sr: int = doc(SAMPLE_RATE, "sample rate every file is resampled to; 11 kHz bandwidth keeps timbre cues")
    n_fft: int = doc(N_FFT, "93 ms window at 22.05 kHz: fine frequency resolution for low notes")
    hop_length: int = doc(HOP_LENGTH, "23 ms hop, 43 frames/s: enough for onsets, 4x cheaper than hop 128")
    n_mels: int = doc(N_MELS, "96 bands, the usual size for music CNNs; divisible by 2^4 for pooling")
    fmin: float = doc(FMIN, "below 20 Hz is rumble, not music")
    fmax: float = doc(FMAX, "Nyquist of the project rate")
    top_db: float = doc(TOP_DB, "floor at -100 dB so digital silence does not produce -inf")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "MelParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def frames_per_second(self) -> float:
        return self.sr / self.hop_length


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def mel_basis(params: MelParams) -> np.ndarray:
    """Mel filterbank, np.ndarray [shape=(n_mels, 1 + n_fft // 2)]."""
    return _mel_basis(params.sr, params.n_fft, params.n_mels, params.fmin, params.fmax)


def stft_magnitude(y: np.ndarray, *, params: MelParams = MelParams()) -> np.ndarray:
    """Magnitude STFT (Hann window, centred), computed once per track and shared by every feature.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``params.sr``.

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2, t), dtype=float32]
    """
    import librosa

    return np.abs(librosa.stft(np.asarray(y, np.float32), n_fft=params.n_fft, hop_length=params.hop_length,
                               center=True, pad_mode="constant")).astype(np.float32)


def log_mel_from_magnitude(magnitude: np.ndarray, *, params: MelParams = MelParams()) -> np.ndarray:
    """Log-mel power in dB from a magnitude STFT.

    The reference is fixed (1.0, full scale) rather than the track's peak, so loudness survives; models
    standardise their input themselves.

    Returns
    -------
    np.ndarray [shape=(n_mels, t), dtype=float32]
    """
    power = magnitude.astype(np.float32, copy=False) ** 2
    mel = mel_basis(params) @ power
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, -params.top_db).astype(np.float32)


def log_mel(y: np.ndarray, *, params: MelParams = MelParams()) -> np.ndarray:
    """Log-mel spectrogram in dB: the single definition used by training, ingest and queries.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``params.sr``.
    params : MelParams

    Returns
    -------
    np.ndarray [shape=(n_mels, t), dtype=float32]
        ``t = 1 + n // hop_length``.
    """
    return log_mel_from_magnitude(stft_magnitude(y, params=params), params=params)


def mfcc_stats(mel_db: np.ndarray, *, n_mfcc: int = 20) -> np.ndarray:
    """Means and standard deviations of MFCC 1..n_mfcc over time, from a log-mel spectrogram
    (``librosa.feature.mfcc`` on the shared mel, as :func:`audio_features` computes them).

    Parameters
    ----------
    mel_db : np.ndarray [shape=(n_mels, t)]

    Returns
    -------
    np.ndarray [shape=(2 * n_mfcc,), dtype=float32]
    """
    import librosa

    mfcc = librosa.feature.mfcc(S=np.asarray(mel_db, np.float32), n_mfcc=n_mfcc)  # orthonormal DCT-II, no lifter
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


# Bump when audio_features changes, so that ingest recomputes stored features.
FEATURES_VERSION = 1


_CHROMA = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _mean_std(prefix: str, values: np.ndarray, out: dict) -> None:
    out[f"{prefix}_mean"] = float(np.mean(values))
    out[f"{prefix}_std"] = float(np.std(values))


def audio_features(*, y: np.ndarray, magnitude: np.ndarray, mel_db: np.ndarray,
                   params: MelParams = MelParams()) -> dict[str, float]:
    """Classic per-track audio features, all derived from one STFT (no feature recomputes it).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``params.sr`` (for the zero-crossing rate).
    magnitude : np.ndarray [shape=(1 + n_fft // 2, t)]
        :func:`stft_magnitude` of ``y``.
    mel_db : np.ndarray [shape=(n_mels, t)]
        :func:`log_mel_from_magnitude` of ``magnitude``.
    params : MelParams

    Returns
    -------
    dict of str -> float
        tempo, beat strength, RMS, spectral centroid / bandwidth / roll-off / flatness / contrast, zero-crossing
        rate, onset-strength statistics, MFCC 1-20 and chroma means and standard deviations, duration.
    """
    import librosa

    sr, hop = params.sr, params.hop_length
    out: dict[str, float] = {"duration_s": float(y.size / sr)}
    onset = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=hop)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=hop)
    out["tempo_bpm"] = float(np.atleast_1d(tempo)[0])
    out["beat_strength"] = float(onset[beats].mean() / (onset.mean() + 1e-9)) if len(beats) else 0.0
    out["beats_per_second"] = float(len(beats) / max(out["duration_s"], 1e-9))
    _mean_std("onset_strength", onset, out)
    out["onset_strength_max"] = float(onset.max())
    _mean_std("rms", librosa.feature.rms(S=magnitude, frame_length=params.n_fft)[0], out)
    _mean_std("spectral_centroid", librosa.feature.spectral_centroid(S=magnitude, sr=sr)[0], out)
    _mean_std("spectral_bandwidth", librosa.feature.spectral_bandwidth(S=magnitude, sr=sr)[0], out)
    _mean_std("spectral_rolloff", librosa.feature.spectral_rolloff(S=magnitude, sr=sr)[0], out)
    _mean_std("spectral_flatness", librosa.feature.spectral_flatness(S=magnitude)[0], out)
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=sr, fmin=100.0)
    for band, values in enumerate(contrast):
        out[f"spectral_contrast_{band}_mean"] = float(values.mean())
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=params.n_fft, hop_length=hop)[0]
    _mean_std("zero_crossing_rate", zcr, out)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=20)
    for i, values in enumerate(mfcc, start=1):
        _mean_std(f"mfcc_{i}", values, out)
    chroma = librosa.feature.chroma_stft(S=magnitude ** 2, sr=sr, n_fft=params.n_fft, hop_length=hop)
    for note, values in zip(_CHROMA, chroma):
        _mean_std(f"chroma_{note}", values, out)
    return out
