"""Training batches: random chunks of random tracks, and the augmentations that make two views of one track."""
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
        return torch.stack([self.chunk(i) for i in idx])


def augment(x: torch.Tensor, *, cfg: TrainConfig, others: torch.Tensor, gen: torch.Generator,
            band_hz: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Randomly augment a batch of log-mel dB chunks.

    Parameters
    ----------
    x : torch.Tensor [shape=(batch, n_mels, frames)]
    others : torch.Tensor [shape=(batch, n_mels, frames)]
        Chunks of other tracks to mix in.
    band_hz : torch.Tensor [shape=(n_mels,)] or None
        Centre frequency of each mel band (for the random low-pass; None = no low-pass).

    Returns
    -------
    torch.Tensor [shape=(batch, n_mels, frames)]
    """
    b, m, t = x.shape

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=gen)

    power = torch.pow(10.0, x / 10.0)
    # mix another track quietly (a different song in the background must not change what this one is)
    mix = (torch.rand(b, 1, 1, generator=gen) < cfg.mix_prob).float()
    power = power + mix * torch.pow(10.0, u(-20, -8, b, 1, 1) / 10.0) * torch.pow(10.0, others / 10.0)
    # a phone-like band limit: a 4th-order Butterworth low-pass's power response at each band's centre
    if cfg.lowpass_prob > 0 and band_hz is not None:
        lo, hi = np.log(cfg.lowpass_hz[0]), np.log(cfg.lowpass_hz[-1])
        cutoff = torch.exp(u(lo, hi, b, 1, 1))
        response = 1.0 / (1.0 + (band_hz.view(1, m, 1) / cutoff) ** 8)
        on = torch.rand(b, 1, 1, generator=gen) < cfg.lowpass_prob
        power = torch.where(on, power * response, power)
    # additive noise at a random SNR, spectrally between white and pink, with frame-to-frame fluctuation
    snr = u(cfg.noise_snr_db[0], cfg.noise_snr_db[-1], b, 1, 1)
    level = power.mean(dim=(1, 2), keepdim=True) * torch.pow(10.0, -snr / 10.0)
    tilt = torch.linspace(0, 1, m).view(1, m, 1)
    shape = torch.pow(10.0, -u(0, 1.5, b, 1, 1) * tilt)
    shape = shape / shape.mean(dim=1, keepdim=True)
    power = power + level * shape * _gamma(b, m, t, gen)
    x = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
    # gain and EQ tilt
    x = x + u(-cfg.gain_db, cfg.gain_db, b, 1, 1) + u(-cfg.eq_db, cfg.eq_db, b, 1, 1) * (2 * tilt - 1)
    # small pitch shift: move the spectrum up or down a few mel bands, repeating the edge band
    if cfg.pitch_bands:
        shifts = torch.randint(-cfg.pitch_bands, cfg.pitch_bands + 1, (b,), generator=gen)
        rows = (torch.arange(m).view(1, m) - shifts.view(b, 1)).clamp(0, m - 1)
        x = torch.gather(x, 1, rows.view(b, m, 1).expand(b, m, t))
    # SpecAugment masks, filled with the chunk's mean level
    fill = x.mean(dim=(1, 2), keepdim=True)
    x = _mask(x, fill, axis=1, width=cfg.freq_mask, gen=gen)
    x = _mask(x, fill, axis=2, width=cfg.time_mask, gen=gen)
    return x


def _gamma(b: int, m: int, t: int, gen: torch.Generator) -> torch.Tensor:
    # mean of 4 unit exponentials: the power of noise averaged over a few FFT bins per mel band
    e = -torch.log(torch.clamp(torch.rand(4, b, m, t, generator=gen), min=1e-12))
    return e.mean(dim=0)


def _mask(x: torch.Tensor, fill: torch.Tensor, *, axis: int, width: int, gen: torch.Generator) -> torch.Tensor:
    if width <= 0:
        return x
    b, size = x.shape[0], x.shape[axis]
    w = torch.randint(0, width + 1, (b, 1), generator=gen)
    start = (torch.rand(b, 1, generator=gen) * (size - w + 1)).long()
    pos = torch.arange(size).view(1, size)
    hit = (pos >= start) & (pos < start + w)
    hit = hit.view(b, size, 1) if axis == 1 else hit.view(b, 1, size)
    return torch.where(hit, fill.expand_as(x), x)


def split_segments(mels: list[np.ndarray], *, frames: int) -> list[np.ndarray]:
    """Cut each log-mel into pieces of ``frames`` (views, no copies); a short last piece joins the one before."""
    if frames <= 0:
        return mels
    pieces = []
    for mel in mels:
        starts = list(range(0, max(1, mel.shape[1] - frames + 1), frames))
        ends = starts[1:] + [mel.shape[1]]
        pieces.extend(mel[:, a:b] for a, b in zip(starts, ends))
    return pieces


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
