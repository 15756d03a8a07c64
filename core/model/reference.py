"""The frozen pretrained reference as an encoder: musicnn (MSD) over evenly spread 3 s patches of a track.

:class:`ReferenceEncoder` averages one musicnn layer's activations over up to ``max_patches`` patches (audio
resampled to musicnn's 16 kHz), standardises them with the library's statistics and L2-normalises them; its
``model.pt`` holds the network, the layer and the statistics, so an upload or a recording is embedded exactly as
the library was. :func:`library_patch_features` computes every track's per-patch activations once per dataset
(cached in ``reference/``): the reference run (:mod:`core.runs.reference`) and the teacher targets of
distillation (:mod:`core.training.teacher`) both read them.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.audio.decode import load_audio, to_mono_resampled
from core.base.constants import MusicnnLayer
from core.base.errors import TimbreError
from core.base.progress import Progress, or_silent
from core.data.dataset import Dataset
from core.model import musicnn

Layer = MusicnnLayer  # musicnn layers a reference run can embed with


class ReferenceEncoder(nn.Module):
    """musicnn + one layer + the library's standardisation: mono audio -> L2-normalised track embeddings."""

    def __init__(self, *, layer: str = "max_pool", dim: int = 753):
        super().__init__()
        self.net = musicnn.MusiCNN()
        self.layer = layer
        self.model_args = {"kind": "musicnn-msd", "layer": layer, "embedding_dim": dim}
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))

    @torch.inference_mode()
    def patch_features(self, y16: np.ndarray, *, max_patches: int, layers: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Raw activations of each patch of 16 kHz audio: layer -> np.ndarray [shape=(n_patches, layer_dim)]
        (``layers`` default: this encoder's layer)."""
        x = torch.from_numpy(musicnn.patches(musicnn.musicnn_input(y16), max_patches=max_patches))
        out = {}
        for part in torch.split(x, 4):  # small batches: the front end's maps are 36 MB per patch
            for name, value in self.net(part).items():
                out.setdefault(name, []).append(value.numpy())
        return {name: np.concatenate(out[name]) for name in (layers or (self.layer,))}

    def finish(self, track_features: np.ndarray) -> np.ndarray:
        """Standardise and L2-normalise mean patch activations [shape=(n, dim)] into embeddings."""
        z = (torch.as_tensor(track_features) - self.feature_mean) / self.feature_std
        return F.normalize(z, dim=1).numpy().astype(np.float32)

    def embed_signals(self, signals: Sequence[np.ndarray], *, sr: int, max_patches: int) -> np.ndarray:
        """Embeddings of mono signals at ``sr``, np.ndarray [shape=(len(signals), dim)]."""
        means = [self.patch_features(to_mono_resampled(y, sr_in=sr, sr=musicnn.SR),
                                     max_patches=max_patches)[self.layer].mean(axis=0) for y in signals]
        return self.finish(np.stack(means))


def save_reference(path: Path, model: ReferenceEncoder) -> None:
    torch.save({"format": 1, "model_args": model.model_args, "state_dict": model.state_dict()}, path)


def load_reference(blob: dict) -> ReferenceEncoder:
    """Rebuild a :class:`ReferenceEncoder` from the dict :func:`save_reference` wrote (read ``weights_only``)."""
    args = blob["model_args"]
    model = ReferenceEncoder(layer=args["layer"], dim=args["embedding_dim"])
    model.load_state_dict(blob["state_dict"])
    return model.eval()


def pretrained_encoder(*, layer: str = "max_pool") -> ReferenceEncoder:
    """A :class:`ReferenceEncoder` with the converted MSD weights (library statistics still 0 / 1), in eval mode."""
    model = ReferenceEncoder(layer=layer, dim=layer_dim(layer))
    model.net.load_state_dict(musicnn.load_musicnn().state_dict())
    return model.eval()


def _decode16(path: str) -> np.ndarray | None:
    try:
        return load_audio(path, sr=musicnn.SR, max_seconds=600.0)
    except TimbreError:
        return None


CACHED_LAYERS = ("penultimate", "max_pool", "mean_pool", "taggram")


def library_patch_features(ds: Dataset, *, layer: str, max_patches: int, progress: Optional[Progress] = None,
                           model: ReferenceEncoder | None = None) -> list[np.ndarray | None]:
    """Per-patch activations of ``layer`` for every track of ``ds`` (None where the audio can no longer be read).

    Every layer is computed in the one pass and cached in the dataset's ``reference/`` folder, keyed by the
    track list and ``max_patches``: another layer, another reference run or a distilled training reuse it.

    Returns
    -------
    list of np.ndarray [shape=(n_patches_i, layer_dim)] or None, in the dataset's track order
    """
    cache = ds.path / "reference" / f"musicnn-{max_patches}.npz"
    ids = ds.tracks["track_id"].astype(str).tolist()
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if z["track_id"].tolist() == ids:
                return [z[f"{layer}_{i}"] if z["ok"][i] else None for i in range(len(ids))]
    model = model or pretrained_encoder()
    progress = or_silent(progress)
    out: list[dict | None] = []
    paths = ds.tracks["path"].astype(str).tolist()
    with ThreadPoolExecutor(max_workers=1) as pool:  # decode the next file while the network runs
        for i, y in enumerate(pool.map(_decode16, paths)):
            out.append(None if y is None else model.patch_features(y, max_patches=max_patches, layers=CACHED_LAYERS))
            progress(i + 1, len(paths), f"musicnn: {Path(paths[i]).name}")
    arrays = {f"{name}_{i}": (feats[name] if feats is not None else np.zeros((0, 1), np.float32))
              for i, feats in enumerate(out) for name in CACHED_LAYERS}
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.npz")  # two trainings of one dataset may race here
    np.savez(tmp, track_id=np.asarray(ids), ok=np.asarray([f is not None for f in out]), **arrays)
    tmp.replace(cache)
    return [None if f is None else f[layer] for f in out]


def layer_dim(layer: str) -> int:
    return {"penultimate": 200, "max_pool": 753, "mean_pool": 753, "taggram": 50}[layer]
