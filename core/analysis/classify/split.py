"""The fixed per-dataset test split, and one input made ready to fit.

The test split is stored under ``artifacts/datasets/NAME/splits/``: stratified by label, seeded, at track
level, written the first time and reused, so every input, model and later run is scored on the same tracks, and
no grid search ever sees them.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.analysis.classify.models import ClassifyConfig
from core.analysis.config import InputName
from core.analysis.sources import Source
from core.base.errors import ClassifyError
from core.base.io import atomic_write_json
from core.data.dataset import dataset_dir


def split_path(dataset: str, *, test_size: float, seed: int) -> Path:
    return dataset_dir(dataset) / "splits" / f"test_seed{seed}_size{test_size:g}.json"


def stratified_test_mask(labels: np.ndarray, *, test_size: float, seed: int) -> np.ndarray:
    """Pick ``test_size`` of each label (at least one, never all; none from a singleton), seeded.

    Parameters
    ----------
    labels : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=bool]
        True for test rows.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels == label)
        n_test = min(len(rows) - 1, max(1, int(round(test_size * len(rows))))) if len(rows) >= 2 else 0
        mask[rng.permutation(rows)[:n_test]] = True
    return mask


def fixed_test_split(dataset: str, track_ids, labels, *, test_size: float, seed: int) -> np.ndarray:
    """The dataset's test split for these labelled tracks: stored on first use, reused afterwards.

    Tracks the stored split has not seen (added to the dataset later) are split among themselves the same way
    and appended, so a track once in the test split stays there.

    Parameters
    ----------
    dataset : str
    track_ids : sequence of str [shape=(n,)]
    labels : sequence of str [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=bool]
        True for test tracks.
    """
    if not 0.0 < test_size < 1.0:
        raise ClassifyError(f"test_size={test_size}: use a share between 0 and 1, e.g. 0.25")
    track_ids, labels = np.asarray(track_ids, dtype=object), np.asarray(labels, dtype=object)
    path = split_path(dataset, test_size=test_size, seed=seed)
    stored = json.loads(path.read_text()) if path.exists() else {"test": [], "train": []}
    known = set(stored["test"]) | set(stored["train"])
    new = np.array([t not in known for t in track_ids], dtype=bool)
    if new.any():
        picked = stratified_test_mask(labels[new], test_size=test_size, seed=seed + len(known))
        stored["test"] += list(track_ids[new][picked])
        stored["train"] += list(track_ids[new][~picked])
        atomic_write_json(path, {**stored, "dataset": dataset, "test_size": test_size, "seed": seed,
                                 "stratified_by": "label", "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return np.isin(track_ids, list(stored["test"]))


@dataclasses.dataclass
class Prepared:
    """One input, ready to fit: rows with a label and a complete input, labels encoded 0..k-1."""

    input: InputName
    x: np.ndarray  # [shape=(n, d), dtype=float64]
    y: np.ndarray  # [shape=(n,), dtype=int]
    track_ids: np.ndarray  # [shape=(n,)]
    feature_names: list[str]
    classes: list[str]
    test: np.ndarray  # [shape=(n,), dtype=bool]
    warnings: list[str]
    dropped_classes: dict[str, int]


def prepare_input(source: Source, input: InputName, cfg: ClassifyConfig) -> Prepared:
    """Rows of ``input`` that have a label and no missing value; rare classes left out (named); split marked."""
    labelled = source.tracks["label"].notna().to_numpy()
    if not labelled.any():
        raise ClassifyError(f"{source.title}: no track has a label, so there is nothing to classify")
    matrix = source.matrix(input)
    bad = [c for c in matrix.columns if np.isinf(matrix[c].to_numpy()).any()]
    if bad:
        raise ClassifyError(f"{source.title}, input {input!r}: infinite values in {', '.join(bad[:5])}")
    complete = matrix.notna().all(axis=1).to_numpy()
    notes = []
    if (labelled & ~complete).any():
        notes.append(f"{input}: {int((labelled & ~complete).sum())} labelled track(s) have no {input} values, left out")
    ids = source.tracks["track_id"].to_numpy(dtype=object)
    labels = source.tracks["label"].astype(object).to_numpy()
    test_all = fixed_test_split(source.dataset, ids[labelled], labels[labelled], test_size=cfg.test_size,
                                seed=cfg.split_seed)
    test = np.zeros(len(ids), dtype=bool)
    test[labelled] = test_all
    keep = labelled & complete
    counts = pd.Series(labels[keep]).value_counts()
    rare = {str(k): int(v) for k, v in counts.items() if v < cfg.cv_folds}
    for label, n in rare.items():
        notes.append(f"class {label!r} has {n} track(s), fewer than the {cfg.cv_folds} CV folds: left out")
    classes = sorted(str(k) for k in counts.index if str(k) not in rare)
    if len(classes) < 2:
        sizes = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise ClassifyError(f"{source.title}, input {input!r}: fewer than two classes have at least {cfg.cv_folds} "
                            f"tracks ({sizes}); lower --cv-folds or add labelled tracks")
    keep &= np.isin(labels, classes)
    y = np.searchsorted(np.array(classes, dtype=object), labels[keep])
    return Prepared(input=input, x=matrix[keep].to_numpy(np.float64), y=y.astype(int), track_ids=ids[keep],
                    feature_names=list(matrix.columns), classes=classes, test=test[keep], warnings=notes,
                    dropped_classes=rare)
