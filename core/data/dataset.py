"""A dataset cache as the rest of the engine reads it: ``artifacts/datasets/<name>/``."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.audio.features import MelParams
from core.base.errors import DatasetError
from core.base.paths import datasets_dir
from core.data.shards import MelStore


def dataset_dir(name: str) -> Path:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise DatasetError(f"invalid dataset name {name!r}: use letters, digits, '-' and '_'")
    return datasets_dir() / name


@dataclasses.dataclass
class Dataset:
    """An ingested dataset: its track table, log-mel parameters and lazily memory-mapped log-mels."""

    name: str
    path: Path
    tracks: pd.DataFrame
    params: MelParams
    info: dict
    _store: Optional[MelStore] = dataclasses.field(default=None, repr=False, compare=False)

    def require_audio(self) -> None:
        """:class:`DatasetError` when the dataset has no log-mels (an imported feature table)."""
        if self.info.get("kind") == "imported":
            raise DatasetError(f"dataset {self.name!r} is an imported feature table: it has no audio (log-mels) to "
                               "train or embed on; use it with `python -m core classify --features NAME`")

    def mel(self, track_id: str) -> np.ndarray:
        """Log-mel of one track, np.ndarray [shape=(n_mels, t), dtype=float16]: a view into a memory-mapped
        shard (or the track's own file in a dataset of the old layout)."""
        self.require_audio()
        if self._store is None:
            self._store = MelStore(self.path / "mels")
        return self._store.mel(track_id)

    def mels(self) -> list[np.ndarray]:
        return [self.mel(t) for t in self.tracks["track_id"]]

    def features(self) -> pd.DataFrame:
        """The audio-feature table (one row per track, ``track_id`` first)."""
        path = self.path / "features.parquet"
        if not path.exists():
            raise DatasetError(f"dataset {self.name!r} has no audio features; re-run ingest with --features")
        feats = pd.read_parquet(path)
        return self.tracks[["track_id"]].merge(feats, on="track_id", how="inner")


def list_datasets() -> list[str]:
    root = datasets_dir()
    return sorted(p.name for p in root.glob("*") if (p / "dataset.json").exists()) if root.exists() else []


def load_dataset(name: str) -> Dataset:
    """Open an ingested dataset; :class:`DatasetError` when it does not exist."""
    path = dataset_dir(name)
    if not (path / "dataset.json").exists() or not (path / "tracks.parquet").exists():
        known = ", ".join(list_datasets()) or "none yet"
        raise DatasetError(f"no dataset named {name!r} (known: {known}); run `python -m core ingest DIR --name {name}`")
    info = json.loads((path / "dataset.json").read_text())
    return Dataset(name=name, path=path, tracks=pd.read_parquet(path / "tracks.parquet"),
                   params=MelParams.from_dict(info["mel_params"]), info=info)
