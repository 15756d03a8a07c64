"""What the analysis pages (Classifiers, Features, Clusters) offer as data, as keys a select box can hold
(``run:<run id>``, ``dataset:<name>``), and a stamp that changes when the files behind a key do (a cache key)."""
from __future__ import annotations

import json
from pathlib import Path

from core.analysis import Source, SourceKind, source_from_dataset, source_from_run
from core.base import DatasetError, runs_dir
from core.data import dataset_dir, imported_datasets

INPUT_NAMES = {"features": "audio features", "embeddings": "embeddings", "both": "features + embeddings"}


def source_key(kind: SourceKind, name: str) -> str:
    return f"{kind.value}:{name}"


def parse_key(key: str) -> tuple[SourceKind, str]:
    """``(kind, name)`` of a key made by :func:`source_key`."""
    kind, _, name = key.partition(":")
    return SourceKind(kind), name


def source_choices(active_run: str | None) -> dict[str, str]:
    """Sources to offer: the active run, then every imported feature table, as ``{key: title}``."""
    choices = {source_key(SourceKind.RUN, active_run): f"run {active_run}"} if active_run else {}
    choices.update({source_key(SourceKind.DATASET, n): f"imported table {n}" for n in imported_datasets()})
    return choices


def source_for_key(key: str) -> Source:
    """The :class:`core.analysis.sources.Source` behind a key of :func:`source_choices`."""
    kind, name = parse_key(key)
    return source_from_run(name) if kind is SourceKind.RUN else source_from_dataset(name)


def _run_files(run_id: str) -> list[Path]:
    folder = runs_dir() / run_id
    paths = [folder / "tracks.parquet", folder / "embeddings.npy"]
    try:
        paths.append(dataset_dir(json.loads((folder / "config.json").read_text()).get("dataset")) / "features.parquet")
    except (OSError, ValueError, DatasetError, TypeError):  # no config or no dataset: the run's own files decide
        pass
    return paths


def source_stamp(key: str) -> float:
    """Latest modification time of the files behind a source key (0.0 when none exists)."""
    kind, name = parse_key(key)
    if kind is SourceKind.RUN:
        paths = _run_files(name)
    else:
        paths = [dataset_dir(name) / "tracks.parquet", dataset_dir(name) / "features.parquet"]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)
