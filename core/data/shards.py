"""Per-track log-mels in shards of up to ~1,000 tracks instead of one ``.npy`` file per track.

Layout inside a dataset folder::

    mels/shard-000012.npy   float16 [shape=(sum of t_i, n_mels)]: the tracks one after another in time, so one
                            track (and any training chunk of it) is one contiguous run of bytes in the file
    mels/refs.parquet       track_id, shard, start, n_frames: where each track of the dataset lies

Only the one parent process writes shards (:class:`ShardWriter`). A shard is written to a temporary file and
renamed into place, and only then are its tracks' lines appended to ``index.jsonl`` (the commit log), so a
process killed at any moment leaves either a complete shard that the index names, or an unreferenced file that
the next ingest removes (:func:`remove_unreferenced`). :func:`compact` merges small shards and drops entries
that no line of the current index points at. Datasets written before shards (``mels/<id>.npy``) still open
(:func:`open_mel` falls back to them) and :func:`migrate` converts them.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from core.base.errors import DatasetError
from core.base.io import atomic_write_npy, atomic_write_parquet

SHARD_RE = re.compile(r"^shard-(\d{6})\.npy$")


REFS_FILE = "refs.parquet"


def shard_path(mel_dir: Path, number: int) -> Path:
    return Path(mel_dir) / f"shard-{number:06d}.npy"


def shard_numbers(mel_dir: Path) -> list[int]:
    """Numbers of the shard files present in ``mel_dir`` (sorted)."""
    if not Path(mel_dir).is_dir():
        return []
    return sorted(int(m.group(1)) for p in Path(mel_dir).iterdir() if (m := SHARD_RE.match(p.name)))


class ShardWriter:
    """Collects finished tracks and writes them as shards; yields their index lines once a shard is on disk.

    Parameters
    ----------
    mel_dir : Path
        The dataset's ``mels/`` folder.
    first : int
        Number of the first shard to write (above every number in use).
    max_tracks, max_mb, max_seconds : int, float, float
        A shard is written when it holds this many tracks, this many MB of log-mels, or its first track has
        waited this long (what a SIGKILL can cost beyond the files in flight).
    """

    def __init__(self, mel_dir: Path, *, first: int, max_tracks: int = 1000, max_mb: float = 256.0,
                 max_seconds: float = 60.0):
        self.mel_dir, self.number = Path(mel_dir), first
        self.max_tracks, self.max_bytes, self.max_seconds = max_tracks, max_mb * 2**20, max_seconds
        self.lines: list[dict] = []
        self.mels: list[np.ndarray] = []
        self.nbytes, self.since = 0, None

    def add(self, line: dict, mel: np.ndarray | None) -> list[dict]:
        """Queue one track (``mel``: np.ndarray [shape=(n_mels, t)]); returns the lines now safe to commit.

        A line without a log-mel (a skipped file) is returned at once.
        """
        if mel is None:
            return [line]
        self.lines.append(line)
        self.mels.append(np.ascontiguousarray(np.asarray(mel, dtype=np.float16).T))
        self.nbytes += self.mels[-1].nbytes
        self.since = self.since or time.monotonic()
        full = len(self.lines) >= self.max_tracks or self.nbytes >= self.max_bytes
        return self.flush() if full or time.monotonic() - self.since >= self.max_seconds else []

    def flush(self) -> list[dict]:
        """Write the queued tracks as one shard (atomically); their lines, with ``shard`` and ``start`` set."""
        if not self.lines:
            return []
        starts = np.concatenate([[0], np.cumsum([m.shape[0] for m in self.mels])[:-1]])
        atomic_write_npy(shard_path(self.mel_dir, self.number), np.concatenate(self.mels))
        lines = [{**line, "shard": self.number, "start": int(s)} for line, s in zip(self.lines, starts)]
        self.number += 1
        self.lines, self.mels, self.nbytes, self.since = [], [], 0, None
        return lines


def write_refs(mel_dir: Path, lines: Iterable[dict]) -> pd.DataFrame:
    """Write ``mels/refs.parquet`` from index lines that name a shard; returns the table."""
    rows = [(line["track_id"], line["shard"], line["start"], line["n_frames"]) for line in lines if "shard" in line]
    refs = pd.DataFrame(rows, columns=["track_id", "shard", "start", "n_frames"])
    atomic_write_parquet(Path(mel_dir) / REFS_FILE, refs)
    return refs


def remove_unreferenced(mel_dir: Path, lines: Iterable[dict]) -> list[int]:
    """Delete shard files (and temporary files) no index line points at: left by a kill or a compaction.

    Only call this holding the dataset's ingest lock (no other writer can be mid-write).
    """
    used = {line["shard"] for line in lines if "shard" in line}
    gone = [n for n in shard_numbers(mel_dir) if n not in used]
    for n in gone:
        shard_path(mel_dir, n).unlink(missing_ok=True)
    for stale in Path(mel_dir).glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    return gone


def _shard_sizes(lines: Iterable[dict]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for line in lines:
        if "shard" in line:
            sizes[line["shard"]] = sizes.get(line["shard"], 0) + line["n_frames"]
    return sizes


def compact(mel_dir: Path, live: dict[str, dict], *, write_index: Callable[[list[dict]], None],
            max_tracks: int = 1000, max_mb: float = 256.0) -> int:
    """Rewrite the shards that are over a quarter dead, or small (under half ``max_mb``), into full ones.

    Shards no live line points at are left for :func:`remove_unreferenced`.

    Parameters
    ----------
    mel_dir : Path
    live : dict track_id -> index line
        The lines to keep (every current track and skipped file); lines of other tracks are dropped. Updated in
        place with the new shard references.
    write_index : callable(list of lines)
        Replaces ``index.jsonl`` atomically with the given lines (called once the new shards are on disk).
    max_tracks, max_mb : int, float
        Shard size.

    Returns
    -------
    int
        How many shard files were rewritten (0: nothing to do, nothing written).
    """
    present = set(shard_numbers(mel_dir))
    live_sizes = _shard_sizes(live.values())
    n_mels = None
    total = {}
    for n in live_sizes:
        arr = np.load(shard_path(mel_dir, n), mmap_mode="r", allow_pickle=False)
        total[n], n_mels = arr.shape[0], arr.shape[1]
    counts: dict[int, int] = {}
    for line in live.values():
        if "shard" in line:
            counts[line["shard"]] = counts.get(line["shard"], 0) + 1
    small = {n for n in live_sizes if total[n] * n_mels * 2 < max_mb * 2**20 / 2 and counts[n] < max_tracks / 2}
    stale = {n for n in live_sizes if live_sizes[n] < 0.75 * total[n]}  # a few dead tracks are not worth a rewrite
    victims = stale | (small if len(small) > 1 else set())
    if not victims:
        return 0
    writer = ShardWriter(mel_dir, first=max(present) + 1, max_tracks=max_tracks, max_mb=max_mb,
                         max_seconds=float("inf"))
    moved, by_shard = [], {n: [] for n in victims}
    for line in live.values():
        if line.get("shard") in by_shard:
            by_shard[line["shard"]].append(line)
    for n in sorted(victims):
        arr = np.load(shard_path(mel_dir, n), mmap_mode="r", allow_pickle=False)
        for line in by_shard[n]:
            moved += writer.add(line, arr[line["start"]:line["start"] + line["n_frames"]].T)
    moved += writer.flush()
    for line in moved:
        live[line["track_id"]] = line
    write_index(list(live.values()))
    return len(victims)


class MelStore:
    """Reads log-mels of one dataset: memory-mapped shards, or the old one-file-per-track layout."""

    def __init__(self, mel_dir: Path):
        self.mel_dir = Path(mel_dir)
        refs_path = self.mel_dir / REFS_FILE
        self.refs = pd.read_parquet(refs_path) if refs_path.exists() else None
        if self.refs is not None:  # plain arrays and a dict: a look-up costs a microsecond, not a pandas .loc
            self._where = self.refs[["shard", "start", "n_frames"]].to_numpy(np.int64)
            self._row = dict(zip(self.refs["track_id"], range(len(self.refs))))
        self._open: dict[int, np.ndarray] = {}

    def _shard(self, number: int) -> np.ndarray:
        if number not in self._open:
            self._open[number] = np.load(shard_path(self.mel_dir, number), mmap_mode="r", allow_pickle=False)
        return self._open[number]

    def mel(self, track_id: str) -> np.ndarray:
        """np.ndarray [shape=(n_mels, t), dtype=float16]: a read-only view into the memory-mapped shard."""
        if self.refs is None:
            path = self.mel_dir / f"{track_id}.npy"
            if not path.exists():
                raise DatasetError(f"{path}: no log-mel for track {track_id}")
            return np.load(path, mmap_mode="r", allow_pickle=False)
        row = self._row.get(track_id)
        if row is None:
            raise DatasetError(f"{self.mel_dir / REFS_FILE}: no log-mel for track {track_id}")
        shard, start, n = self._where[row].tolist()
        return self._shard(shard)[start:start + n].T


def old_layout_mels(mel_dir: Path, lines: Iterable[dict]) -> Iterator[tuple[dict, np.ndarray]]:
    """(line, mel) for each analysed line without a shard whose ``mels/<id>.npy`` exists (the old layout)."""
    for line in lines:
        path = Path(mel_dir) / f"{line['track_id']}.npy"
        if "shard" not in line and "error" not in line and path.exists():
            yield line, np.load(path, mmap_mode="r", allow_pickle=False)


def migrate(mel_dir: Path, known: dict[str, dict], *, write_index: Callable[[list[dict]], None],
            max_tracks: int = 1000, max_mb: float = 256.0) -> int:
    """Move old-layout ``mels/<id>.npy`` files into shards; returns how many tracks moved.

    The new shards are written first, then the index is replaced (naming them), then the old files are
    deleted: a kill at any point leaves a dataset that opens (an unfinished migration is redone).
    """
    existing = shard_numbers(mel_dir)
    writer = ShardWriter(mel_dir, first=max(existing, default=-1) + 1, max_tracks=max_tracks, max_mb=max_mb,
                         max_seconds=float("inf"))
    moved = []
    for line, mel in old_layout_mels(mel_dir, list(known.values())):
        moved += writer.add(line, mel)
    moved += writer.flush()
    if not moved:
        return 0
    for line in moved:
        known[line["track_id"]] = line
    write_index(list(known.values()))
    for line in moved:
        (Path(mel_dir) / f"{line['track_id']}.npy").unlink(missing_ok=True)
    return len(moved)


def dumps_lines(lines: Iterable[dict]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
