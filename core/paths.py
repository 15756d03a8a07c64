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
