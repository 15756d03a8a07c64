"""What an analysis reads: a dataset's or a run's feature table, embeddings and labels, aligned by track."""
from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis.config import INPUTS
from core.base.errors import DatasetError
from core.data.dataset import dataset_dir, list_datasets, load_dataset
from core.data.tables import is_imported
from core.data.tracks import display_names


class SourceKind(str, enum.Enum):
    """Where a :class:`Source` comes from (a ``str`` enum: it compares equal to ``"run"`` / ``"dataset"``)."""

    RUN = "run"  # a run's tracks and embeddings, with its dataset's features
    DATASET = "dataset"  # an ingested or imported dataset's features (no embeddings)


@dataclasses.dataclass
class Source:
    """Labelled tracks with their audio features and (for a run) embeddings, aligned row by row.

    Attributes
    ----------
    kind : SourceKind
    name : str
        Run id or dataset name.
    dataset : str
        The dataset whose test split the analysis uses.
    path : Path
        Folder the analysis results are written under.
    tracks : pd.DataFrame [shape=(n, ...)]
        ``track_id, label`` (label may be missing) and whatever else the source has (title, artist, path).
    features : pd.DataFrame or None [shape=(n, n_features)]
        Row i is track i; a row of NaN where a track has no features.
    embeddings : np.ndarray or None [shape=(n, d)]
    """

    kind: SourceKind
    name: str
    dataset: str
    path: Path
    tracks: pd.DataFrame
    features: Optional[pd.DataFrame]
    embeddings: Optional[np.ndarray]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def title(self) -> str:
        return f"run {self.name}" if self.kind is SourceKind.RUN else f"dataset {self.name}"

    @property
    def cli_flag(self) -> str:
        """How ``python -m core classify`` / ``cluster`` name this source: ``--run ID`` or ``--features NAME``."""
        return f"--run {self.name}" if self.kind is SourceKind.RUN else f"--features {self.name}"

    @property
    def n_labelled(self) -> int:
        return int(self.tracks["label"].notna().sum())

    def available_inputs(self) -> list[str]:
        have = {"features": self.features is not None, "embeddings": self.embeddings is not None}
        have["both"] = have["features"] and have["embeddings"]
        return [i for i in INPUTS if have[i]]

    def matrix(self, input: str) -> pd.DataFrame:
        """The input matrix with named columns, np.float64 [shape=(n, d)], NaN rows where a track lacks it."""
        if input not in self.available_inputs():
            have = ", ".join(self.available_inputs()) or "none"
            raise DatasetError(f"{self.title} has no {input!r} input (it has: {have})")
        parts = []
        if input in ("features", "both"):
            parts.append(self.features.reset_index(drop=True))
        if input in ("embeddings", "both"):
            cols = [f"emb_{i:03d}" for i in range(self.embeddings.shape[1])]
            parts.append(pd.DataFrame(self.embeddings.astype(np.float64), columns=cols))
        return pd.concat(parts, axis=1)

    def labelled_features(self) -> pd.DataFrame:
        """``track_id, label, name`` + feature columns for the tracks that have both (the Features page's table)."""
        if self.features is None:
            raise DatasetError(f"{self.title} has no audio feature table")
        names = display_names(self.tracks).reset_index(drop=True)
        frame = pd.concat([self.tracks[["track_id", "label"]].reset_index(drop=True), names,
                           self.features.reset_index(drop=True)], axis=1)
        return frame[frame["label"].notna() & self.features.notna().all(axis=1).to_numpy()].reset_index(drop=True)


def _aligned_features(track_ids: pd.Series, table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in table.columns if c != "track_id"]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(table[c])]
    aligned = pd.DataFrame({"track_id": track_ids.to_numpy()}).merge(
        table.drop_duplicates("track_id"), on="track_id", how="left")
    return aligned[numeric].astype(np.float64)


def source_from_run(run_id: str) -> Source:
    """A run's tracks and embeddings with its dataset's audio features (when the dataset still has them)."""
    from core.runs.folder import load_run

    run = load_run(run_id)
    dataset = run.config.get("dataset") or run_id
    tracks = run.tracks.reset_index(drop=True)
    notes, features = [], None
    try:
        features = _aligned_features(tracks["track_id"], load_dataset(dataset).features())
    except DatasetError as error:
        notes.append(f"no audio features: {error}")
    if features is not None:
        missing = int(features.isna().any(axis=1).sum())
        if missing:
            notes.append(f"{missing} track(s) of the run have no audio features")
    return Source(kind=SourceKind.RUN, name=run_id, dataset=dataset, path=run.path, tracks=tracks, features=features,
                  embeddings=np.asarray(run.embeddings, np.float32), notes=notes)


def source_from_dataset(name: str) -> Source:
    """An ingested or imported dataset's labels and feature table (no embeddings)."""
    folder = dataset_dir(name)
    if not (folder / "dataset.json").exists():
        known = ", ".join(list_datasets()) or "none yet"
        raise DatasetError(f"no dataset named {name!r} (known: {known})")
    if is_imported(name):
        tracks = pd.read_parquet(folder / "tracks.parquet")
        table = pd.read_parquet(folder / "features.parquet")
    else:
        ds = load_dataset(name)
        tracks, table = ds.tracks, ds.features()
    tracks = tracks.reset_index(drop=True)
    return Source(kind=SourceKind.DATASET, name=name, dataset=name, path=folder, tracks=tracks,
                  features=_aligned_features(tracks["track_id"], table), embeddings=None)


def load_source(*, run: Optional[str] = None, features: Optional[str] = None) -> Source:
    """Exactly one of ``run`` (a run id) or ``features`` (a dataset name)."""
    if (run is None) == (features is None):
        raise DatasetError("name either a run (--run RUN) or a feature table (--features NAME), not both")
    return source_from_run(run) if run is not None else source_from_dataset(features)


FEATURE_GROUPS = (
    ("rhythm", ("tempo", "beat", "onset", "duration")),
    ("energy", ("rms",)),
    ("spectral", ("spectral_", "zero_crossing")),
    ("MFCC means", ("mfcc_",), "_mean"),
    ("MFCC spreads", ("mfcc_",), "_std"),
    ("chroma", ("chroma_",)),
)


def feature_groups(columns) -> dict[str, list[str]]:
    """Columns grouped by family (rhythm, energy, spectral, MFCC means/spreads, chroma, other), in order."""
    groups: dict[str, list[str]] = {}
    for col in columns:
        family = "other"
        for name, prefixes, *suffix in FEATURE_GROUPS:
            if col.startswith(prefixes) and (not suffix or col.endswith(suffix[0])):
                family = name
                break
        groups.setdefault(family, []).append(col)
    order = [g[0] for g in FEATURE_GROUPS] + ["other"]
    return {k: groups[k] for k in order if k in groups}


def feature_correlation(frame: pd.DataFrame, columns: list[str], *, method: str = "spearman") -> pd.DataFrame:
    """Correlation matrix of ``columns`` [shape=(len(columns), len(columns))]; constant columns give NaN."""
    return frame[columns].corr(method=method)
