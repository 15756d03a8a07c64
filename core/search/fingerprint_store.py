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
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from core.base.io import atomic_write_json, atomic_write_npy
from core.base.locks import file_lock
from core.base.progress import Progress, or_silent
from core.search.fingerprints import FingerprintConfig, FingerprintIndex

MANIFEST = "fingerprints.json"
ARRAYS = {"starts": "fingerprint_starts.npy", "rows": "fingerprint_rows.npy", "times": "fingerprint_times.npy"}
PART_TRACKS = 600  # tracks fingerprinted per part of a build: about 16 million landmarks (15 pairs an anchor), 400 MB at its peak


def _settings(sr: int, cfg: FingerprintConfig) -> dict:
    return {"sr": int(sr), "config": json.loads(json.dumps(dataclasses.asdict(cfg)))}


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
                       progress: Optional[Progress] = None, part_tracks: int = PART_TRACKS) -> FingerprintIndex:
    """Fingerprint the library's audio files (row ``i`` is ``paths[i]``) and write them to the run ``folder``.
    A file that cannot be read is named in the manifest and matches by its embedding only; one build at a time per
    folder (a second waits, then finds the first's). Memory stays bounded at any library size: ``part_tracks``
    tracks at a time are indexed and set aside, then the parts are merged bucket by bucket into the files."""
    folder, paths = Path(folder), list(paths)
    progress = or_silent(progress)
    with file_lock(folder / ".fingerprints.lock", what="fingerprints", wait=True):
        found = read_fingerprints(folder, n_tracks=len(paths), sr=sr, cfg=cfg)
        if found is not None:
            return found
        unread: list[str] = []
        parts = Path(tempfile.mkdtemp(dir=folder, prefix=".fingerprint-parts-"))
        try:
            counts = np.zeros(cfg.n_hashes(sr), np.int64)
            for k, a in enumerate(range(0, len(paths), part_tracks)):
                rows = np.arange(a, min(a + part_tracks, len(paths)))
                part = FingerprintIndex.build(_signals(paths[a:rows[-1] + 1], sr, unread), rows, sr=sr,
                                              n_tracks=len(paths), cfg=cfg,
                                              progress=lambda done: progress(a + done, len(paths), "fingerprinting"))
                counts += np.diff(part.starts)
                np.save(parts / f"{k}-starts.npy", part.starts)
                np.save(parts / f"{k}-rows.npy", part.rows)
                np.save(parts / f"{k}-times.npy", part.times)
            _merge(folder, parts, counts, n_tracks=len(paths), sr=sr, cfg=cfg, unread=tuple(unread))
        finally:
            shutil.rmtree(parts, ignore_errors=True)
    return read_fingerprints(folder, n_tracks=len(paths), sr=sr, cfg=cfg)


def _merge(folder: Path, parts: Path, counts: np.ndarray, *, n_tracks: int, sr: int, cfg: FingerprintConfig,
           unread: tuple) -> None:
    """Write the index of the parts in ``parts`` (in row order) to ``folder``: each part's entries go after the
    earlier parts' in each bucket, so a bucket stays in row order (:meth:`FingerprintIndex.row_votes`)."""
    starts = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    (folder / MANIFEST).unlink(missing_ok=True)
    atomic_write_npy(folder / ARRAYS["starts"], starts)
    out = {}
    for field, dtype in (("rows", np.int32), ("times", np.uint16)):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{ARRAYS[field]}.", suffix=".tmp")
        os.close(fd)
        out[field] = (tmp, np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(int(starts[-1]),)))
    try:
        fill = starts[:-1].copy()
        k = 0
        while (parts / f"{k}-starts.npy").is_file():
            part_starts = np.load(parts / f"{k}-starts.npy")
            n = np.diff(part_starts)
            at = np.repeat(fill - part_starts[:-1], n) + np.arange(int(part_starts[-1]))
            for field, (_, array) in out.items():
                array[at] = np.load(parts / f"{k}-{field}.npy")
            fill += n
            k += 1
        for field, (tmp, array) in out.items():
            array.flush()
            del array
            os.replace(tmp, folder / ARRAYS[field])
    finally:
        for tmp, _ in out.values():
            Path(tmp).unlink(missing_ok=True)
    atomic_write_json(folder / MANIFEST, {"n_tracks": n_tracks, "entries": int(starts[-1]), "unread": list(unread),
                                          **_settings(sr, cfg)})


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
