"""Feature tables imported from elsewhere (a Spotify / Echo Nest style CSV) as datasets.

An imported table becomes a dataset-like folder ``artifacts/datasets/NAME/``::

    dataset.json      {"kind": "imported", source CSV, label/id columns, what was set aside, dropped, imputed}
    tracks.parquet    track_id, label
    features.parquet  track_id + the numeric feature columns (no missing values left)

so that ``classify --features NAME`` and ``cluster --features NAME`` treat imported and ingested datasets alike.
It has no log-mels: it cannot be trained on.
What the analysis code reads from a dataset, imported or ingested, or from a run is
:class:`core.analysis.sources.Source`.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.base.errors import FeatureTableError
from core.base.io import atomic_write_json, atomic_write_parquet, write_folder
from core.data.config import ImportConfig
from core.data.dataset import dataset_dir, list_datasets

IMPORTED = "imported"


@dataclasses.dataclass
class ImportReport:
    """What an import kept, set aside and repaired."""

    dataset_dir: Path
    n_rows: int
    feature_columns: list[str]
    set_aside: list[str]
    all_missing: list[str]
    missing_values: int
    rows_dropped_missing: int
    rows_dropped_no_label: int
    label_counts: dict[str, int]
    rare_labels: dict[str, int]
    missing_policy: str

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        out = [f"dataset: {self.dataset_dir}",
               f"rows: {self.n_rows}, numeric feature columns: {len(self.feature_columns)}",
               "labels: " + ", ".join(f"{k} {v}" for k, v in self.label_counts.items())]
        if self.set_aside:
            out.append(f"set aside (not numeric): {', '.join(self.set_aside)}")
        if self.all_missing:
            out.append(f"dropped (no values at all): {', '.join(self.all_missing)}")
        if self.missing_policy == "impute" and self.missing_values:
            out.append(f"missing values imputed with the column median: {self.missing_values}")
        if self.rows_dropped_missing:
            out.append(f"rows dropped for missing values: {self.rows_dropped_missing}")
        if self.rows_dropped_no_label:
            out.append(f"rows dropped without a label: {self.rows_dropped_no_label}")
        for label, n in self.rare_labels.items():
            out.append(f"warning: label {label!r} has only {n} row(s); classify leaves out classes smaller than its folds")
        return out


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FeatureTableError(f"{path}: file not found")
    try:
        table = pd.read_csv(path)
    except Exception as error:
        raise FeatureTableError(f"{path}: cannot read it as CSV ({type(error).__name__}: {error})") from error
    if table.empty:
        raise FeatureTableError(f"{path}: the table has no rows")
    return table


def _numeric_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric columns, columns set aside). Booleans count as numeric (0/1)."""
    numeric, aside = [], []
    for col in table.columns:
        kind = table[col].dtype
        (numeric if pd.api.types.is_numeric_dtype(kind) or pd.api.types.is_bool_dtype(kind) else aside).append(col)
    return numeric, aside


def _track_ids(table: pd.DataFrame, id_col: Optional[str], path: Path) -> pd.Series:
    if id_col is None:
        return pd.Series([f"row{i:06d}" for i in range(len(table))], index=table.index, dtype=object)
    ids = table[id_col]
    if ids.isna().any():
        raise FeatureTableError(f"{path}: id column {id_col!r} has {int(ids.isna().sum())} empty value(s)")
    ids = ids.astype(str)
    dupes = ids[ids.duplicated()].unique()
    if len(dupes):
        raise FeatureTableError(f"{path}: id column {id_col!r} is not unique (e.g. {', '.join(dupes[:3])})")
    return ids


def clean_feature_table(table: pd.DataFrame, *, label: str, id_col: Optional[str] = None,
                        config: ImportConfig = ImportConfig(), path: Path = Path("<table>"),
                        ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Split a raw table into a track table and a clean numeric feature table.

    Parameters
    ----------
    table : pd.DataFrame [shape=(n_rows, n_columns)]
    label : str
        Column holding the class label (any type; stored as text).
    id_col : str or None
        Column with a unique id per row; None numbers the rows.
    config : ImportConfig
    path : Path
        Named in error messages.

    Returns
    -------
    tracks : pd.DataFrame [shape=(m, 2)]
        ``track_id, label``.
    features : pd.DataFrame [shape=(m, 1 + n_features)]
        ``track_id`` + numeric columns, no missing values.
    facts : dict
        What was set aside, dropped and imputed (the fields of :class:`ImportReport`).
    """
    if config.missing not in ("impute", "drop"):
        raise FeatureTableError(f"missing={config.missing!r}: use 'impute' or 'drop'")
    for role, col in (("label", label), ("id", id_col)):
        if col is not None and col not in table.columns:
            raise FeatureTableError(f"{path}: no {role} column {col!r}; the columns are {', '.join(map(str, table.columns))}")
    ids = _track_ids(table, id_col, path)
    labels = table[label].astype("string").str.strip().replace("", pd.NA)
    numeric, aside = _numeric_columns(table.drop(columns=[c for c in (label, id_col) if c is not None]))
    if not numeric:
        raise FeatureTableError(f"{path}: no numeric feature columns (all of {', '.join(aside)} are text)")
    values = table[numeric].astype(np.float64).replace([np.inf, -np.inf], np.nan)
    all_missing = [c for c in numeric if values[c].isna().all()]
    values = values.drop(columns=all_missing)
    if values.shape[1] == 0:
        raise FeatureTableError(f"{path}: every numeric column is empty")

    has_label = labels.notna()
    values, ids, labels = values[has_label], ids[has_label], labels[has_label]
    n_missing = int(values.isna().sum().sum())
    rows_dropped = 0
    if config.missing == "drop":
        complete = values.notna().all(axis=1)
        rows_dropped = int((~complete).sum())
        values, ids, labels = values[complete], ids[complete], labels[complete]
    else:
        values = values.fillna(values.median())
    if values.empty:
        raise FeatureTableError(f"{path}: no rows left after dropping rows with missing values; try --missing impute")
    counts = labels.value_counts()
    if len(counts) < 2:
        raise FeatureTableError(f"{path}: label column {label!r} has a single class ({counts.index[0]!r}); "
                                "classifiers need at least two")
    tracks = pd.DataFrame({"track_id": ids.to_numpy(), "label": labels.to_numpy()}).astype({"label": "string"})
    features = pd.concat([tracks[["track_id"]], values.reset_index(drop=True)], axis=1)
    facts = {"n_rows": len(tracks), "feature_columns": list(values.columns), "set_aside": [str(c) for c in aside],
             "all_missing": all_missing, "missing_values": n_missing, "rows_dropped_missing": rows_dropped,
             "rows_dropped_no_label": int((~has_label).sum()), "label_counts": {str(k): int(v) for k, v in counts.items()},
             "rare_labels": {str(k): int(v) for k, v in counts.items() if v < config.min_class_size},
             "missing_policy": config.missing}
    return tracks, features, facts


def import_feature_table(csv_path: str | Path, name: str, *, label: str, id_col: Optional[str] = None,
                         config: ImportConfig = ImportConfig()) -> ImportReport:
    """Import a CSV of numeric audio features with a label column as the dataset ``name``.

    Non-numeric columns are set aside (and named in the report); missing values are imputed or their rows
    dropped (``config.missing``), and the count is reported. Re-importing under the same name replaces an
    earlier import (and its analysis results); an ingested audio dataset of that name is never overwritten.

    Raises
    ------
    FeatureTableError
        Unreadable file, missing label/id column, no numeric column, a single class.
    """
    path = Path(csv_path)
    final = dataset_dir(name)
    if (final / "dataset.json").exists() and json.loads((final / "dataset.json").read_text()).get("kind") != IMPORTED:
        raise FeatureTableError(f"dataset {name!r} is an ingested audio dataset; import the table under another name")
    tracks, features, facts = clean_feature_table(_read_csv(path), label=label, id_col=id_col, config=config, path=path)

    def write(work: Path) -> None:
        atomic_write_parquet(work / "tracks.parquet", tracks)
        atomic_write_parquet(work / "features.parquet", features)
        atomic_write_json(work / "dataset.json", {
            "name": name, "kind": IMPORTED, "source": str(path.resolve()), "label_column": label, "id_column": id_col,
            "n_tracks": len(tracks), "n_labelled": len(tracks), "mel_params": {},  # no audio: no log-mels
            "import_config": dataclasses.asdict(config), **{k: v for k, v in facts.items() if k != "n_rows"},
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})

    write_folder(final, write)
    return ImportReport(dataset_dir=final, **facts)


def is_imported(name: str) -> bool:
    info = dataset_dir(name) / "dataset.json"
    return info.exists() and json.loads(info.read_text()).get("kind") == IMPORTED


def imported_datasets() -> list[str]:
    """Names of the imported feature tables."""
    return [n for n in list_datasets() if is_imported(n)]
