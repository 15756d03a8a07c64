"""A PyTorch port of musicnn's MSD_musicnn (Pons & Serra, 2019), the project's frozen pretrained reference.

The network and its Million-Song-Dataset weights come from the ``musicnn`` package (ISC licence, Music
Technology Group, Universitat Pompeu Fabra); ``scripts/convert_musicnn.py`` read its TensorFlow 1 checkpoint
once and wrote :data:`WEIGHTS` (float32, ``torch.load(..., weights_only=True)``), so TensorFlow is never needed
here. The port equals the original to 1e-4 (the converter checked it on real and synthetic clips and saved
expected outputs that ``tests/test_musicnn.py`` compares against).

Front end, as musicnn's: mono audio at 16 kHz, a 512-point STFT with hop 256, 96 mel bands (librosa's Slaney
filters), compressed with ``log10(10000 x + 1)``, cut into 3 s patches of 187 frames. musicnn's extractor does
that arithmetic in float16, so ``10000 x`` overflows once a band's power passes 6.55 (most real music at a normal
level): the patch becomes inf and the outputs NaN. The port computes it in float32, which equals the original's
inputs to float16's rounding wherever those are finite.

Network: a batch-normalised input; "timbral" convolutions spanning 38 and 67 mel bands and "temporal" ones
spanning 32-128 frames, each max-pooled over frequency (561 channels per frame); three 7-frame 1-D convolutions
with residual connections (64 channels each); max and mean over time of all 753 channels; a 200-unit dense
layer ("penultimate") and 50 MSD tag logits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SR = 16_000  # musicnn's front end


N_FFT = 512


HOP = 256


N_MELS = 96


PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1


BN_EPS = 1e-3  # TensorFlow's batch-normalisation default


WEIGHTS = Path(__file__).resolve().parent / "weights" / "msd_musicnn.pt"


def musicnn_input(y: np.ndarray) -> np.ndarray:
    """musicnn's compressed mel spectrogram of mono 16 kHz audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono audio at :data:`SR`.

    Returns
    -------
    np.ndarray [shape=(t, 96), dtype=float32]
        ``log10(10000 * mel_power + 1)``, in float32 (see the module notes).
    """
    import librosa

    power = librosa.feature.melspectrogram(y=np.asarray(y, dtype=np.float32), sr=SR, hop_length=HOP, n_fft=N_FFT,
                                           n_mels=N_MELS).T
    return np.log10(10000 * power + 1).astype(np.float32)


def patches(spec: np.ndarray, *, max_patches: int = 0) -> np.ndarray:
    """Non-overlapping 3 s patches of a musicnn spectrogram, as musicnn cuts them (a short clip is repeated to 3 s).

    Parameters
    ----------
    spec : np.ndarray [shape=(t, 96)]
    max_patches : int
        Keep at most this many, evenly spread (0 = all).

    Returns
    -------
    np.ndarray [shape=(n, 187, 96), dtype=float32]
    """
    if spec.shape[0] < PATCH_FRAMES:
        spec = np.tile(spec, (int(np.ceil(PATCH_FRAMES / max(spec.shape[0], 1))), 1))
    starts = np.arange(0, spec.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)
    if max_patches and len(starts) > max_patches:
        starts = starts[np.linspace(0, len(starts) - 1, max_patches).round().astype(int)]
    return np.stack([spec[s:s + PATCH_FRAMES] for s in starts]).astype(np.float32)


def _bn_relu_max(c: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``bn(relu(c)).amax(dim=3)`` for [shape=(batch, channels, frames, bands)] without touching the big tensor
    more than twice: batch norm is a per-channel ``a * v + b`` and ReLU is monotone, so the maximum over bands is
    ``a * relu(max c) + b`` where ``a > 0`` and ``a * relu(min c) + b`` where ``a < 0`` (the same numbers, 2x faster)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    pick = torch.where((scale > 0)[None, :, None], c.amax(dim=3), c.amin(dim=3))
    return scale[None, :, None] * F.relu(pick) + shift[None, :, None]


def _bn(channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels, eps=BN_EPS)


class MusiCNN(nn.Module):
    """MSD_musicnn in PyTorch (inference only; batch norms use the stored moving averages).

    ``forward`` takes patches [shape=(batch, 187, 96)] and returns a dict of the layers musicnn's extractor
    exposes: ``taggram`` (batch, 50) sigmoid tag likelihoods, ``penultimate`` (batch, 200), ``max_pool`` and
    ``mean_pool`` (batch, 753), plus ``logits``.
    """

    def __init__(self, *, n_mels: int = N_MELS, timbral_filters: int = 204, temporal_filters: int = 51,
                 midend_filters: int = 64, backend_units: int = 200, n_tags: int = 50):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(nn.Conv2d(1, timbral_filters, (7, int(f * n_mels))) for f in (0.4, 0.7))
        self.timbral_bn = nn.ModuleList(nn.BatchNorm2d(timbral_filters, eps=BN_EPS) for _ in range(2))
        self.temporal = nn.ModuleList(nn.Conv2d(1, temporal_filters, (k, 1)) for k in (128, 64, 32))
        self.temporal_bn = nn.ModuleList(nn.BatchNorm2d(temporal_filters, eps=BN_EPS) for _ in range(3))
        front = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(nn.Conv1d(c, midend_filters, 7, padding=3) for c in (front, midend_filters, midend_filters))
        self.midend_bn = nn.ModuleList(_bn(midend_filters) for _ in range(3))
        channels = front + 3 * midend_filters
        self.pool_bn = _bn(2 * channels)
        self.dense = nn.Linear(2 * channels, backend_units)
        self.dense_bn = _bn(backend_units)
        self.tags = nn.Linear(backend_units, n_tags)

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """[shape=(batch, frames, 96)] -> [shape=(batch, 561, frames)]: each filter's maximum over frequency."""
        x = self.input_bn(x.unsqueeze(1))  # (batch, 1, frames, mels)
        out = []
        padded = F.pad(x, (0, 0, 3, 3))  # 'same' in time only: the frequency axis is pooled away
        for conv, bn in zip(self.timbral, self.timbral_bn):
            out.append(_bn_relu_max(conv(padded), bn))
        for conv, bn in zip(self.temporal, self.temporal_bn):
            k = conv.kernel_size[0]
            before = (k - 1) // 2  # TensorFlow's 'same' puts the odd frame of an even kernel after
            out.append(_bn_relu_max(conv(F.pad(x, (0, 0, before, k - 1 - before))), bn))
        return torch.cat(out, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        front = self.frontend(x)
        h = self.midend_bn[0](F.relu(self.midend[0](front)))
        layers = [front, h]
        for conv, bn in zip(self.midend[1:], self.midend_bn[1:]):
            h = bn(F.relu(conv(h))) + h
            layers.append(h)
        features = torch.cat(layers, dim=1)  # (batch, 753, frames)
        max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TensorFlow's order: max, mean per channel
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.tags(penultimate)
        return {"logits": logits, "taggram": torch.sigmoid(logits), "penultimate": penultimate,
                "max_pool": max_pool, "mean_pool": mean_pool}


def load_musicnn(path: str | Path = WEIGHTS) -> MusiCNN:
    """The port with the converted MSD weights, in eval mode (``weights_only`` load: no code is unpickled)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = MusiCNN(**blob.get("model_args", {}))
    model.load_state_dict(blob["state_dict"])
    return model.eval()


def port_check_clip(*, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """A fixed synthetic clip at 16 kHz (a chord, a bass line, noise bursts) on which the converter recorded the
    original network's outputs; ``tests/test_musicnn.py`` checks the port against them without TensorFlow.

    Returns
    -------
    np.ndarray [shape=(seconds * 16000,), dtype=float32]
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    bass = np.sin(2 * np.pi * 55.0 * (1 + (t % 1.0 < 0.5)) * t)
    bursts = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2.0 * t) > 0.9)
    return (0.3 * chord + 0.3 * bass + 0.1 * bursts).astype(np.float32)
