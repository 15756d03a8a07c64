"""Where artifacts live. ``TIMBRE_ARTIFACTS`` overrides the default ``<repo>/artifacts``."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def artifacts_dir() -> Path:
    """Root folder of datasets and runs (created on demand)."""
    root = Path(os.environ.get("TIMBRE_ARTIFACTS", REPO_ROOT / "artifacts"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def datasets_dir() -> Path:
    return artifacts_dir() / "datasets"


def runs_dir() -> Path:
    return artifacts_dir() / "runs"


def cache_dir() -> Path:
    """Caches that can always be rebuilt (compiled numba code): ``TIMBRE_CACHE`` or ``<repo>/.cache``.

    Not under the artifacts folder, so test sessions (each with its own artifacts) share one warm cache.
    """
    return Path(os.environ.get("TIMBRE_CACHE", REPO_ROOT / ".cache"))


def checkpoints_dir() -> Path:
    """Training checkpoints of unfinished runs (removed when a run completes)."""
    return artifacts_dir() / "checkpoints"
