"""The CNN encoder: log-mel chunks -> 128-d L2-normalised embeddings."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.base.constants import N_MELS
from core.base.errors import RunError, without_paths


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv -> batch norm -> ReLU -> 2x2 max pool (halves both axes)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Encoder(nn.Module):
    """Stacked 3x3 conv blocks of growing width, average pooling, a linear 128-d embedding.

    ``pooling="time"`` averages over time only and keeps the (pooled) frequency axis, so the embedding knows
    *where* in the spectrum energy sits (the spectral envelope MFCCs describe); ``"global"`` averages over
    time and frequency.

    Input standardisation (per mel band, from the training data) lives inside the model as buffers, so a
    run's ``model.pt`` alone turns raw log-mel dB into embeddings.

    Parameters
    ----------
    n_mels : int
        Mel bands of the input.
    widths : tuple of int
        Channels of each conv block; one 2x2 pooling per block.
    embedding_dim : int
        Size of the output embedding.
    pooling : {"time", "global"}
        Average over time only (keep frequency), or over both axes.
    level_norm : bool
        Bring every chunk to 0 dB mean power before anything else (:func:`chunk_level`), so the embedding does
        not depend on how loud the audio is: a quiet phone recording is the same music as the loud file.
    match_dim : int
        Size of a second head (a small MLP) on the same features, trained only to tell chunks of one track from
        those of others and without changing the features, for the passages a recording is matched on
        (:meth:`match`); 0 = none (passages then use the embedding itself).
    """

    def __init__(self, *, n_mels: int = N_MELS, widths: tuple[int, ...] = (32, 64, 128, 256), embedding_dim: int = 128,
                 pooling: str = "time", level_norm: bool = False, match_dim: int = 0):
        super().__init__()
        if pooling not in ("time", "global"):
            raise ValueError(f"pooling must be 'time' or 'global', not {pooling!r}")
        self.model_args = {"n_mels": n_mels, "widths": list(widths), "embedding_dim": embedding_dim, "pooling": pooling,
                           "level_norm": level_norm, "match_dim": match_dim}
        self.level_norm = level_norm
        channels = [1, *widths]
        self.blocks = nn.Sequential(*(conv_block(a, b) for a, b in zip(channels[:-1], channels[1:])))
        self.pooling = pooling
        bands = max(1, n_mels // 2 ** len(widths)) if pooling == "time" else 1
        self.embed = nn.Linear(widths[-1] * bands, embedding_dim)
        self.match_head = None
        if match_dim:  # an MLP that reads the features the embedding's losses shape, and never shapes them
            with torch.random.fork_rng(devices=[]):  # drawn aside: everything else starts as it would without it
                torch.manual_seed(torch.initial_seed() + 1)
                self.match_head = nn.Sequential(nn.Linear(widths[-1] * bands, 2 * match_dim), nn.ReLU(inplace=True),
                                                nn.Linear(2 * match_dim, match_dim))
        self.register_buffer("band_mean", torch.zeros(n_mels))
        self.register_buffer("band_std", torch.ones(n_mels))

    def set_input_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Per-band mean and standard deviation (dB) of the training log-mels."""
        self.band_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.band_std.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled conv features before the embedding layer, [shape=(batch, widths[-1] * bands)]."""
        if self.level_norm:
            x = x - chunk_level(x)
        x = (x - self.band_mean[:, None]) / self.band_std[:, None]
        h = self.blocks(x.unsqueeze(1))  # (batch, channels, bands, frames)
        if self.pooling == "global":
            return h.mean(dim=(2, 3))
        return h.mean(dim=3).flatten(1)  # average over time, keep the frequency bands

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed log-mel chunks.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, n_mels, frames)]
            Log-mel dB, as :func:`core.audio.features.log_mel` returns.

        Returns
        -------
        torch.Tensor [shape=(batch, embedding_dim)]
            Unit L2 norm.
        """
        return F.normalize(self.embed(self.features(x)), dim=1)

    def match(self, x: torch.Tensor) -> torch.Tensor:
        """Passage embeddings of log-mel chunks [shape=(batch, n_mels, frames)]: the match head's, or the
        embedding when the model has none, [shape=(batch, match_dim or embedding_dim)], unit L2 norm."""
        if self.match_head is None:
            return self(x)
        return F.normalize(self.match_head(self.features(x)), dim=1)

    def embed_and_match(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` and :meth:`match` of the same chunks from one pass through the conv blocks (a live
        stream needs both for every new chunk)."""
        if self.match_head is None:
            z = self(x)
            return z, z
        h = self.features(x)
        return F.normalize(self.embed(h), dim=1), F.normalize(self.match_head(h), dim=1)


def chunk_level(x: torch.Tensor) -> torch.Tensor:
    """Mean power of each log-mel chunk in dB, [shape=(batch, 1, 1)] for x [shape=(batch, n_mels, frames)].

    The power mean is ruled by the loud low and middle bands, so a low-pass, or noise 10 dB down, moves it by
    well under 1 dB while a gain moves it by exactly the gain.
    """
    scale = float(np.log(10.0) / 10.0)
    n = x.shape[1] * x.shape[2]
    return (torch.logsumexp((x * scale).flatten(1), dim=1) - float(np.log(n))).view(-1, 1, 1) / scale


class ProjectionHead(nn.Module):
    """MLP used only by the contrastive loss (SimCLR): the embedding below it keeps more information."""

    def __init__(self, *, dim_in: int = 128, dim_hidden: int = 256, dim_out: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim_in, dim_hidden), nn.ReLU(inplace=True), nn.Linear(dim_hidden, dim_out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(z), dim=1)


def save_model(path, model: Encoder, *, extra: dict | None = None) -> None:
    """Write ``{"state_dict", "model_args", ...}``, loadable with ``torch.load(..., weights_only=True)``."""
    torch.save({"format": 1, "model_args": model.model_args, "state_dict": model.state_dict(), **(extra or {})}, path)


def load_model(path) -> Encoder:
    """Rebuild a run's model from a file written by :func:`save_model` (no unpickling of code): an
    :class:`Encoder`, or the frozen musicnn reference (``core.model.reference.ReferenceEncoder``).

    Raises
    ------
    RunError
        The file is missing, damaged, or describes a model this version cannot build (a newer version's run).
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob["model_args"].get("kind") == "musicnn-msd":
            from core.model.reference import load_reference

            return load_reference(blob)
        args = dict(blob["model_args"])
        args["widths"] = tuple(args["widths"])
        args.setdefault("pooling", "global")  # runs written before the pooling option averaged over both axes
        args.setdefault("level_norm", False)  # nor did they normalise the level
        args.setdefault("match_dim", 0)  # nor have a match head
        model = Encoder(**args)
        model.load_state_dict(blob["state_dict"])
    except (OSError, EOFError, RuntimeError, ValueError, TypeError, KeyError, pickle.UnpicklingError) as error:
        where = f"{Path(path).parent.name}/{Path(path).name}"  # the run and file, never the server's folders
        raise RunError(f"{where}: cannot rebuild the model ({type(error).__name__}: {without_paths(str(error))})") from error
    return model.eval()
