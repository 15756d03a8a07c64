"""Copies of a test run under new ids, so a test can add or leave out results (classifiers/) without changing
the session's shared run for other test modules."""
from __future__ import annotations

import shutil

from core.base.paths import runs_dir

CHEAP_CLASSIFIER = dict(models=("logreg",), cv_folds=3, search_folds=3, permutation_repeats=1, n_jobs=1)


def copy_run(run_id: str, new_id: str) -> str:
    """Copy run folder ``run_id`` to ``new_id`` without its analysis results; returns ``new_id``."""
    target = runs_dir() / new_id
    if not target.exists():
        shutil.copytree(runs_dir() / run_id, target, ignore=shutil.ignore_patterns("classifiers", "clusters"))
    return new_id


def classified_run(run_id: str, input: str) -> str:
    """A copy of ``run_id`` named ``tiny-genre-<input>`` with one logistic regression on
    ``input`` ("features", "embeddings" or "both") saved in its classifiers/."""
    from core.analysis.classify import ClassifyConfig, run_classifiers
    from core.analysis.sources import load_source

    new_id = copy_run(run_id, f"tiny-genre-{input}")
    if not (runs_dir() / new_id / "classifiers").exists():
        run_classifiers(load_source(run=new_id), cfg=ClassifyConfig(input=(input,), **CHEAP_CLASSIFIER))
    return new_id


def broken_copies(run_id: str, root) -> dict[str, str]:
    """Two copies of ``run_id`` in ``root`` (a runs folder), newer than it and damaged as a crash or a full disk
    leaves files: a truncated ``embeddings.npy`` and a ``tracks.parquet`` that is not Parquet. Returns
    {copy id: the file that is damaged}."""
    import os
    import time
    from pathlib import Path

    root, damaged = Path(root), {"zz-truncated": "embeddings.npy", "zz-bad-table": "tracks.parquet"}
    for new_id, name in damaged.items():
        shutil.copytree(runs_dir() / run_id, root / new_id, ignore=shutil.ignore_patterns("classifiers", "clusters"))
        target = root / new_id / name
        target.write_bytes(target.read_bytes()[:200] if name.endswith(".npy") else b"not a parquet file\n")
        later = time.time() + 60
        os.utime(root / new_id / "config.json", (later, later))  # the newest runs: a default would pick them
    return damaged
