"""Where artifacts live (``TIMBRE_ARTIFACTS`` overrides the default ``<repo>/artifacts``), and which folders of
the server the dashboard may ingest music from (``TIMBRE_LIBRARY_ROOTS``)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # core/base/paths.py -> the repository


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


LIBRARY_ROOTS_ENV = "TIMBRE_LIBRARY_ROOTS"


def library_roots() -> list[Path]:
    """The folders the dashboard may ingest from, resolved: ``TIMBRE_LIBRARY_ROOTS`` (paths separated by
    ``os.pathsep``), by default the project's ``data/``. The command line is not confined: its user owns the
    server; a browser's user only names folders below these."""
    text = os.environ.get(LIBRARY_ROOTS_ENV, "")
    roots = [Path(part).expanduser() for part in text.split(os.pathsep) if part.strip()] or [REPO_ROOT / "data"]
    return [root.resolve() for root in roots]


def shown_path(path: Path) -> str:
    """``path`` relative to the project when it is inside it (``data/``), else as it is."""
    try:
        return f"{path.relative_to(REPO_ROOT).as_posix()}/"
    except ValueError:
        return str(path)


def public_path(path, *, base=None) -> str:
    """``path`` as a page may show it, without telling where the server keeps things: relative to ``base``
    when inside it, else to the project (``artifacts/runs/ID``), the artifacts folder (``<artifacts>/runs/ID``)
    or a library root (``<library>/gtzan``); else its last name alone (``.../name``)."""
    path = Path(path)
    if base is not None and path.is_relative_to(base):
        return path.relative_to(base).as_posix() or "."
    if path.is_relative_to(REPO_ROOT):
        return path.relative_to(REPO_ROOT).as_posix() or "."
    places = [("<artifacts>", Path(os.environ.get("TIMBRE_ARTIFACTS", REPO_ROOT / "artifacts")))]
    places += [("<library>", root) for root in library_roots()]
    for name, place in places:
        if path.is_relative_to(place):
            return "/".join([name, *path.relative_to(place).parts])
    return f".../{path.name}"
