"""numba's on-disk cache in the project (librosa and umap compile with numba), set before numba loads."""
from __future__ import annotations

import os
from pathlib import Path

from core.base.paths import cache_dir


def numba_cache_dir() -> Path:
    """The project's numba cache (``TIMBRE_CACHE`` or ``<repo>/.cache``, then ``numba``)."""
    return cache_dir() / "numba"


def use_project_numba_cache() -> None:
    """Point numba's on-disk cache at :func:`numba_cache_dir` (unless ``NUMBA_CACHE_DIR`` is set already).

    Must run before numba is imported: its locators read the setting when a jitted function is defined.
    """
    os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
