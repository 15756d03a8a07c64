"""Atomic file writes: a crash leaves the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda f: f.write(data))


def atomic_write_json(path, obj) -> None:
    _atomic(path, lambda f: f.write(json.dumps(obj, indent=2, default=_jsonable).encode("utf-8")))


def atomic_write_parquet(path, frame: pd.DataFrame) -> None:
    _atomic(path, lambda f: frame.to_parquet(f, index=False))


def atomic_write_npy(path, array: np.ndarray) -> None:
    _atomic(path, lambda f: np.save(f, array, allow_pickle=False))


@contextlib.contextmanager
def atomic_folder(final):
    """Yield a hidden work folder (``.partial-NAME``); when the block ends without error it takes the place of
    ``final`` (an old ``final`` is removed only once the new one is in place), on error it is removed.

    A crash or Ctrl-C leaves the old folder (or none), never a half-written one that looks complete.
    """
    final = Path(final)
    work, old = final.parent / f".partial-{final.name}", final.parent / f".old-{final.name}"
    for stale in (work, old):
        shutil.rmtree(stale, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        if final.exists():
            final.rename(old)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_folder(final, write: Callable[[Path], None]) -> None:
    """Write a folder with ``write(work)`` through :func:`atomic_folder` (never half-written)."""
    with atomic_folder(final) as work:
        write(work)


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
