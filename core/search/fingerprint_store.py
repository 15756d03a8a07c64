"""A run's landmark fingerprints on disk: built from its tracks' audio files, written atomically, read memory-mapped.

Four files in the run folder: ``fingerprint_starts.npy``, ``fingerprint_rows.npy``, ``fingerprint_times.npy``
(:class:`core.search.fingerprints.FingerprintIndex`) and, written last, ``fingerprints.json`` (the manifest: the
library size, the entry count, the sample rate and :class:`FingerprintConfig` they were made with, the tracks
that could not be read). Each file is written under a hidden name and renamed; the index is trusted only when the
manifest matches the arrays and the run, so a build cut short (or one made with other settings) reads as none
and is built again from the music folder (:func:`add_fingerprints`; ``python -m core fingerprint --run RUN``;
training builds them with the run).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np

from core.base.io import atomic_write_json, atomic_write_npy
from core.base.locks import file_lock
from core.base.progress import Progress, or_silent
from core.search.fingerprints import FingerprintConfig, FingerprintIndex

MANIFEST = "fingerprints.json"
ARRAYS = {"starts": "fingerprint_starts.npy", "rows": "fingerprint_rows.npy", "times": "fingerprint_times.npy"}


def _settings(sr: int, cfg: FingerprintConfig) -> dict:
    return {"sr": int(sr), "config": json.loads(json.dumps(dataclasses.asdict(cfg)))}


def write_fingerprints(folder: Path, index: FingerprintIndex, *, sr: int, cfg: FingerprintConfig = FingerprintConfig(),
                       unread: tuple = ()) -> None:
    """Store ``index`` in a run folder: the arrays first, the manifest last (each atomically)."""
    folder = Path(folder)
    (folder / MANIFEST).unlink(missing_ok=True)  # arrays and manifest never disagree unnoticed
    for field, name in ARRAYS.items():
        atomic_write_npy(folder / name, getattr(index, field))
    atomic_write_json(folder / MANIFEST, {"n_tracks": index.n_tracks, "entries": int(len(index.rows)),
                                          "unread": list(unread), **_settings(sr, cfg)})


def read_fingerprints(folder: Path, *, n_tracks: int, sr: int,
                      cfg: FingerprintConfig = FingerprintConfig()) -> Optional[FingerprintIndex]:
    """A run folder's fingerprints (memory-mapped), or None when it has none, or they were made for another
    library, rate or configuration, or a write was cut short."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        arrays = {f: np.load(folder / name, mmap_mode="r", allow_pickle=False) for f, name in ARRAYS.items()}
    except (OSError, ValueError):
        return None
    settings = {k: manifest.get(k) for k in ("sr", "config")}
    if (manifest.get("n_tracks") != n_tracks or settings != _settings(sr, cfg)
            or len(arrays["starts"]) != cfg.n_hashes(sr) + 1 or int(arrays["starts"][-1]) != manifest.get("entries")
            or len(arrays["rows"]) != manifest["entries"] or len(arrays["times"]) != manifest["entries"]):
        return None
    return FingerprintIndex(**arrays, n_tracks=n_tracks)


def _signals(paths, sr: int, unread: list):
    """Each file decoded at ``sr`` (None, and its name in ``unread``, where it cannot be read)."""
    from core.audio.decode import load_audio
    from core.base.errors import TimbreError

    for path in paths:
        try:
            yield load_audio(path, sr=sr, max_seconds=None)
        except (TimbreError, OSError) as error:
            unread.append(f"{Path(str(path)).name}: {error}")
            yield None


def build_fingerprints(folder: Path, paths, *, sr: int, cfg: FingerprintConfig = FingerprintConfig(),
                       progress: Optional[Progress] = None) -> FingerprintIndex:
    """Fingerprint the library's audio files (row ``i`` is ``paths[i]``) and write them to the run ``folder``.
    A file that cannot be read is named in the manifest and matches by its embedding only; one build at a time per
    folder (a second waits, then finds the first's)."""
    paths = list(paths)
    progress = or_silent(progress)
    with file_lock(Path(folder) / ".fingerprints.lock", what="fingerprints", wait=True):
        found = read_fingerprints(folder, n_tracks=len(paths), sr=sr, cfg=cfg)
        if found is not None:
            return found
        unread: list[str] = []
        index = FingerprintIndex.build(_signals(paths, sr, unread), np.arange(len(paths)), sr=sr,
                                       n_tracks=len(paths), cfg=cfg,
                                       progress=lambda done: progress(done, len(paths), "fingerprinting"))
        write_fingerprints(folder, index, sr=sr, cfg=cfg, unread=tuple(unread))
    return read_fingerprints(folder, n_tracks=len(paths), sr=sr, cfg=cfg) or index


def add_fingerprints(run, *, progress: Optional[Progress] = None) -> FingerprintIndex:
    """Give a run (:class:`core.runs.folder.Run`) its fingerprints from its tracks' files, and make it use them."""
    if run.fingerprints is not None:
        return run.fingerprints
    index = build_fingerprints(run.path, run.tracks["path"].astype(str).tolist(), sr=run.mel_params.sr,
                               progress=progress)
    run.__dict__["fingerprints"] = index
    return index


def current_fingerprints(run) -> Optional[FingerprintIndex]:
    """The run's fingerprints, looked for on disk again when it had none (a server's run, loaded before
    ``python -m core fingerprint`` wrote them, finds them on its next stream); None while there are none."""
    if run.fingerprints is None:
        run.__dict__.pop("fingerprints", None)
    return run.fingerprints
