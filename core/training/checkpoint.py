"""Checkpoints of a training in progress, so an interrupted training resumes where it stopped."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from core.base.io import atomic_write_bytes
from core.base.paths import checkpoints_dir
from core.data.dataset import Dataset
from core.training.config import TrainConfig


def save_checkpoint(path: Path, state: dict, losses: list[float]) -> None:
    """Everything training needs to go on exactly where it stopped, readable with ``weights_only=True``."""
    import io

    blob = {"format": 1, "losses": list(losses), "encoder": state["encoder"].state_dict(),
            "head": state["head"].state_dict(), "opt": state["opt"].state_dict(),
            "schedule": state["schedule"].state_dict(), "numpy_rng": state["rng"].bit_generator.state,
            "torch_gen": state["gen"].get_state(), "torch_rng": torch.get_rng_state()}
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    atomic_write_bytes(path, buffer.getvalue())  # a kill mid-write leaves the previous checkpoint


def load_checkpoint(path: Path, state: dict, *, device: torch.device) -> list[float]:
    """Restore ``state`` from :func:`save_checkpoint`'s file; returns the losses of the finished epochs."""
    blob = torch.load(path, map_location=device, weights_only=True)
    state["encoder"].load_state_dict(blob["encoder"])
    state["head"].load_state_dict(blob["head"])
    state["opt"].load_state_dict(blob["opt"])
    state["schedule"].load_state_dict(blob["schedule"])
    state["rng"].bit_generator.state = blob["numpy_rng"]
    state["gen"].set_state(blob["torch_gen"])
    torch.set_rng_state(blob["torch_rng"])
    return list(blob["losses"])


def checkpoint_path(ds: Dataset, cfg: TrainConfig) -> Path:
    """Where training ``ds`` with ``cfg`` keeps its checkpoint: the same data and config give the same file."""
    key = json.dumps({"dataset": str(ds.path), "tracks": ds.tracks["track_id"].tolist(),
                      "frames": ds.tracks["n_frames"].astype(int).tolist(), "mel": ds.params.to_dict(),
                      "train": dataclasses.asdict(cfg)}, sort_keys=True)
    return checkpoints_dir() / f"{ds.name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"
