"""Distillation targets: the frozen reference's (musicnn) embeddings of the chunks a batch trains on."""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.base.errors import DatasetError
from core.base.progress import Progress
from core.data.dataset import Dataset


def mel_band_hz(params) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of ``params``, np.ndarray [shape=(n_mels,)]."""
    import librosa

    return librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=params.fmax)[1:-1]


def teacher_targets(ds: Dataset, *, layer: str, max_patches: int, progress: Optional[Progress] = None) -> np.ndarray:
    """Each track's musicnn embedding as a distillation target: the layer's mean over patches, standardised
    over the library and L2-normalised, np.ndarray [shape=(n_tracks, d)] (NaN rows: audio unreadable)."""
    from core.model.reference import library_patch_features

    parts = []
    for name in layer.split("+"):
        feats = library_patch_features(ds, layer=name, max_patches=max_patches, progress=progress)
        ok = np.array([f is not None for f in feats])
        if not ok.any():
            raise DatasetError(f"dataset {ds.name!r}: no audio file can be read for the distillation teacher")
        means = np.stack([f.mean(axis=0) if f is not None else np.full(feats[int(ok.argmax())].shape[1], np.nan)
                          for f in feats])
        z = (means - np.nanmean(means, axis=0)) / np.maximum(np.nanstd(means, axis=0), 1e-6)
        parts.append(z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))
    joined = np.hstack(parts)
    return (joined / np.linalg.norm(joined, axis=1, keepdims=True)).astype(np.float32)  # NaN rows stay NaN
