"""Copies of a test run under new ids, so a test can add or leave out results (classifiers/) without changing
the session's shared run for other test modules."""
from __future__ import annotations

import shutil

from core.paths import runs_dir


def copy_run(run_id: str, new_id: str) -> str:
    """Copy run folder ``run_id`` to ``new_id`` without its analysis results; returns ``new_id``."""
    target = runs_dir() / new_id
    if not target.exists():
        shutil.copytree(runs_dir() / run_id, target, ignore=shutil.ignore_patterns("classifiers", "clusters"))
    return new_id
