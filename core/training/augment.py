"""Training batches and augmentations: random chunks of random tracks, and the small pieces that make two views
of one track.

They work on log-mel dB tensors (far cheaper on a CPU than re-synthesising audio). What :func:`augment` does,
with the default recipe's strengths: a random tempo change of +-10 % (:class:`ChunkSampler`); another track
mixed in at -20..-8 dB with probability 0.3; a phone-like low-pass (cut-off 2-8 kHz) with probability 0.8;
noise at 0-30 dB SNR between white and pink; a gain of +-6 dB; SpecAugment masks of up to 12 bands and 24
frames. Off by default (they cost genre grouping on emotify-dev): the EQ tilt (``eq_db``) and pitch shifts
(``pitch_bands``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from core.model.encoder import chunk_level
from core.training.config import TrainConfig


class ChunkSampler:
    """Draws random (optionally time-stretched) chunks from the dataset's log-mels."""

    def __init__(self, mels: list[np.ndarray], *, chunk_frames: int, stretch: float, rng: np.random.Generator):
        self.mels, self.chunk_frames, self.stretch, self.rng = mels, chunk_frames, stretch, rng

    def chunk(self, i: int) -> np.ndarray:
        """One chunk of track ``i``, np.ndarray [shape=(n_mels, chunk_frames)]."""
        mel = self.mels[i]
        factor = 1.0 + self.rng.uniform(-self.stretch, self.stretch)
        length = max(2, int(round(self.chunk_frames * factor)))
        if mel.shape[1] <= length:
            reps = int(np.ceil((length + 1) / mel.shape[1]))
            mel = np.tile(mel, (1, reps))
        start = self.rng.integers(0, mel.shape[1] - length + 1)
        piece = torch.from_numpy(np.asarray(mel[:, start:start + length], dtype=np.float32))
        if length != self.chunk_frames:
            piece = F.interpolate(piece[None], size=self.chunk_frames, mode="linear", align_corners=False)[0]
        return piece

    def batch(self, idx: np.ndarray) -> torch.Tensor:
        """One chunk of each track in ``idx``, torch.Tensor [shape=(len(idx), n_mels, chunk_frames)]."""
        return torch.stack([self.chunk(i) for i in idx])

    def random_batch(self, n: int) -> torch.Tensor:
        """One chunk of each of ``n`` random tracks (with repeats), like :meth:`batch`."""
        return self.batch(self.rng.integers(0, len(self.mels), size=n))


def augment(x: torch.Tensor, *, cfg: TrainConfig, others: torch.Tensor, gen: torch.Generator,
            band_hz: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One random view of a batch of log-mel dB chunks: the pieces below, in this order (the order of the random
    draws is part of a seeded run).

    Parameters
    ----------
    x : torch.Tensor [shape=(batch, n_mels, frames)]
    cfg : TrainConfig
        The strengths (``mix_prob``, ``lowpass_prob`` / ``lowpass_hz``, ``noise_snr_db``, ``gain_db``, ``eq_db``,
        ``pitch_bands``, ``freq_mask``, ``time_mask``).
    others : torch.Tensor [shape=(batch, n_mels, frames)]
        Chunks of other tracks to mix in.
    gen : torch.Generator
        Every random draw.
    band_hz : torch.Tensor [shape=(n_mels,)] or None
        Centre frequency of each mel band (for the random low-pass; None = no low-pass).

    Returns
    -------
    torch.Tensor [shape=(batch, n_mels, frames)]
    """
    power = torch.pow(10.0, x / 10.0)
    power = mix_in(power, others, prob=cfg.mix_prob, gen=gen)
    if cfg.lowpass_prob > 0 and band_hz is not None:
        power = lowpass(power, band_hz, prob=cfg.lowpass_prob, hz=cfg.lowpass_hz, gen=gen)
    power = add_noise(power, snr_db=cfg.noise_snr_db, gen=gen)
    x = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
    x = gain_and_tilt(x, gain_db=cfg.gain_db, eq_db=cfg.eq_db, gen=gen)
    if cfg.pitch_bands:
        x = pitch_shift(x, bands=cfg.pitch_bands, gen=gen)
    fill = x.mean(dim=(1, 2), keepdim=True)  # masks are filled with the chunk's mean level
    x = mask(x, fill, axis=1, width=cfg.freq_mask, gen=gen)
    return mask(x, fill, axis=2, width=cfg.time_mask, gen=gen)


def uniform(lo: float, hi: float, *shape: int, gen: torch.Generator) -> torch.Tensor:
    """Uniform draws in [lo, hi) of ``shape``."""
    return lo + (hi - lo) * torch.rand(*shape, generator=gen)


def mix_in(power: torch.Tensor, others: torch.Tensor, *, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Mix another track (``others``, dB) quietly into each power chunk with probability ``prob``, at -20..-8 dB:
    a different song in the background must not change what this one is."""
    b = power.shape[0]
    on = (torch.rand(b, 1, 1, generator=gen) < prob).float()
    return power + on * torch.pow(10.0, uniform(-20, -8, b, 1, 1, gen=gen) / 10.0) * torch.pow(10.0, others / 10.0)


def lowpass(power: torch.Tensor, band_hz: torch.Tensor, *, prob: float, hz: tuple[float, ...],
            gen: torch.Generator) -> torch.Tensor:
    """A phone-like band limit with probability ``prob``: a 4th-order Butterworth low-pass's power response at
    each band's centre, its cut-off log-uniform in ``hz`` (low, high)."""
    b, m, _ = power.shape
    cutoff = torch.exp(uniform(np.log(hz[0]), np.log(hz[-1]), b, 1, 1, gen=gen))
    response = 1.0 / (1.0 + (band_hz.view(1, m, 1) / cutoff) ** 8)
    on = torch.rand(b, 1, 1, generator=gen) < prob
    return torch.where(on, power * response, power)


def add_noise(power: torch.Tensor, *, snr_db: tuple[float, ...], gen: torch.Generator) -> torch.Tensor:
    """Additive noise at a random SNR in ``snr_db`` (low, high), spectrally between white and pink, with
    frame-to-frame fluctuation (exact in the power domain)."""
    b, m, t = power.shape
    snr = uniform(snr_db[0], snr_db[-1], b, 1, 1, gen=gen)
    level = power.mean(dim=(1, 2), keepdim=True) * torch.pow(10.0, -snr / 10.0)
    shape = torch.pow(10.0, -uniform(0, 1.5, b, 1, 1, gen=gen) * _tilt(m))
    shape = shape / shape.mean(dim=1, keepdim=True)
    return power + level * shape * _gamma(b, m, t, gen)


def gain_and_tilt(x: torch.Tensor, *, gain_db: float, eq_db: float, gen: torch.Generator) -> torch.Tensor:
    """A random gain (+- ``gain_db``) and spectral tilt (+- ``eq_db`` at the band edges) of each dB chunk."""
    b, m, _ = x.shape
    return x + uniform(-gain_db, gain_db, b, 1, 1, gen=gen) + uniform(-eq_db, eq_db, b, 1, 1, gen=gen) * (2 * _tilt(m) - 1)


def pitch_shift(x: torch.Tensor, *, bands: int, gen: torch.Generator) -> torch.Tensor:
    """Move each chunk's spectrum up or down by up to ``bands`` mel bands, repeating the edge band."""
    b, m, t = x.shape
    shifts = torch.randint(-bands, bands + 1, (b,), generator=gen)
    rows = (torch.arange(m).view(1, m) - shifts.view(b, 1)).clamp(0, m - 1)
    return torch.gather(x, 1, rows.view(b, m, 1).expand(b, m, t))


def mask(x: torch.Tensor, fill: torch.Tensor, *, axis: int, width: int, gen: torch.Generator) -> torch.Tensor:
    """SpecAugment: set a random run of up to ``width`` bands (``axis`` 1) or frames (``axis`` 2) of each chunk to
    ``fill`` [shape=(batch, 1, 1)]; ``width`` 0 = none."""
    if width <= 0:
        return x
    b, size = x.shape[0], x.shape[axis]
    w = torch.randint(0, width + 1, (b, 1), generator=gen)
    start = (torch.rand(b, 1, generator=gen) * (size - w + 1)).long()
    pos = torch.arange(size).view(1, size)
    hit = (pos >= start) & (pos < start + w)
    hit = hit.view(b, size, 1) if axis == 1 else hit.view(b, 1, size)
    return torch.where(hit, fill.expand_as(x), x)


def _tilt(m: int) -> torch.Tensor:
    """0 at the lowest band to 1 at the highest [shape=(1, m, 1)]."""
    return torch.linspace(0, 1, m).view(1, m, 1)


def _gamma(b: int, m: int, t: int, gen: torch.Generator) -> torch.Tensor:
    # mean of 4 unit exponentials: the power of noise averaged over a few FFT bins per mel band
    e = -torch.log(torch.clamp(torch.rand(4, b, m, t, generator=gen), min=1e-12))
    return e.mean(dim=0)


def band_stats(mels: list[np.ndarray], *, max_frames: int = 2_000_000,
               level_norm: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std (dB) over the training log-mels (subsampled past ``max_frames``); with
    ``level_norm``, of each track brought to 0 dB mean power, as the model sees its chunks."""
    step = max(1, sum(m.shape[1] for m in mels) // max_frames)
    parts = [np.asarray(m[:, ::step], dtype=np.float32) for m in mels]
    if level_norm:
        parts = [p - float(chunk_level(torch.from_numpy(p)[None])) for p in parts]
    stacked = np.concatenate(parts, axis=1)
    return stacked.mean(axis=1), stacked.std(axis=1)
