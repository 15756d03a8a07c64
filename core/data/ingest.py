"""Ingest a music folder into a dataset cache: log-mels, a track table and audio features.

Layout of ``artifacts/datasets/NAME/``::

    dataset.json       name, source folder, log-mel parameters, counts, label source
    mels/shard-N.npy   float16 log-mel dB of up to ~1,000 tracks, memory-mapped (see core.data.shards)
    mels/refs.parquet  track_id, shard, start, n_frames
    index.jsonl        the commit log: one line per analysed file, appended once its shard is on disk
    tracks.parquet     track_id, path, relpath, label, artist, title, duration_s, n_frames, samplerate, channels
    features.parquet   track_id + classic audio features (see core.audio.features.audio_features)
    skipped.json       files that could not be used, with the reason
    .lock              held while an ingest runs (a second ingest of the same dataset is refused)

Re-running compares each file's size and modification time with the index and analyses only new or changed
files; labels are re-read every time (a fixed manifest needs no re-analysis). Files whose worker process
crashed are retried on a re-run. Files are analysed in supervised worker processes (:mod:`core.data.workers`), or
as Ray tasks with ``engine="ray"`` (:mod:`core.data.engines`): a worker that dies costs the file it held, never the
ingest. Only this (parent) process writes: shards are written atomically and only then named in the index, so a
kill loses the files in flight and those waiting for their shard (at most ``shard_seconds`` of work).
Datasets of the old layout (``mels/<id>.npy``) still open; ingest or ``python -m core migrate-dataset NAME``
moves them into shards.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.audio.decode import AUDIO_EXTENSIONS, audio_info, load_audio
from core.audio.features import FEATURES_VERSION, MelParams, audio_features, log_mel_from_magnitude, stft_magnitude
from core.base.errors import DatasetError, TimbreError
from core.base.io import atomic_write_bytes, atomic_write_json, atomic_write_parquet
from core.base.locks import Busy, describe, file_lock
from core.base.progress import Progress, or_silent
from core.data.config import ENGINES, IngestConfig
from core.data.dataset import dataset_dir, load_dataset
from core.data.engines import engine_map
from core.data.library import read_labels, scan_library, track_id_for
from core.data.shards import ShardWriter, compact, dumps_lines, migrate, remove_unreferenced, shard_numbers, write_refs
from core.data.workers import warm_up


@dataclasses.dataclass
class IngestReport:
    dataset_dir: Path
    n_tracks: int
    n_analysed: int
    n_cached: int
    skipped: list[dict]
    seconds: float
    audio_seconds: float
    n_rejected: int = 0  # of the files analysed now, those that could not be used (listed in skipped)


def _analyse(job: tuple[str, str, dict, dict]) -> dict:
    """Worker: decode one file; its index line with its log-mel under ``"mel"`` (or the reason it was skipped).

    The parent writes the log-mel (:class:`core.data.shards.ShardWriter`): workers never write into the dataset.
    """
    path, track_id, mel_dict, cfg = job
    with threadpool_limits(limits=1):  # one thread, as in a Ray worker: every engine gives the same log-mels
        return _analyse_one(path, track_id, MelParams.from_dict(mel_dict), cfg)


def _analyse_one(path: str, track_id: str, params: MelParams, cfg: dict) -> dict:
    """The work of :func:`_analyse` (see there)."""
    try:
        y = load_audio(path, sr=params.sr, max_seconds=cfg["max_seconds"], min_seconds=cfg["min_seconds"])
        magnitude = stft_magnitude(y, params=params)
        mel = log_mel_from_magnitude(magnitude, params=params)
        info = audio_info(path)
        line = {"track_id": track_id, "duration_s": round(y.size / params.sr, 3), "n_frames": int(mel.shape[1]),
                "samplerate": int(info["samplerate"]), "channels": int(info["channels"])}
        if cfg["features"]:
            line["features"] = audio_features(y=y, magnitude=magnitude, mel_db=mel, params=params)
            line["features_version"] = FEATURES_VERSION
        line["mel"] = mel.astype(np.float16)
        return line
    except TimbreError as error:
        return {"track_id": track_id, "error": getattr(error, "reason", str(error))}
    except Exception as error:  # an unexpected decoder failure must not kill a 10,000-file ingest
        return {"track_id": track_id, "error": f"analysis failed ({type(error).__name__}: {error})"}


def _crashed(job: tuple, reason: str) -> dict:
    """The index line of a file whose worker process died twice (retried on the next ingest)."""
    return {"track_id": job[1], "error": reason, "crashed": True}


def _tone_with_clicks(sr: int, seconds: float = 4.0) -> np.ndarray:
    """A tone, a click every half second and a little noise: beats, pitch and noise, so every numba path of the
    features runs. np.ndarray [shape=(sr * seconds,), dtype=float32]"""
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    y[::sr // 2] += 0.9
    return y.astype(np.float32)


def _warm_up(params: MelParams, features: bool) -> None:
    """Compile, in this process, the numba code :func:`_analyse` runs (workers inherit it when forked)."""
    def exercise():
        y = _tone_with_clicks(params.sr)
        magnitude = stft_magnitude(y, params=params)
        mel = log_mel_from_magnitude(magnitude, params=params)
        if features:
            audio_features(y=y, magnitude=magnitude, mel_db=mel, params=params)

    warm_up(f"ingest {params.to_dict()} {features}", exercise)


def _mel_key(params: MelParams, cfg: IngestConfig) -> str:
    return json.dumps({"mel": params.to_dict(), "max_seconds": cfg.max_seconds}, sort_keys=True)


class _Features:
    """A line's audio features held compactly (names shared by all lines, values in one array): a
    million-track index stays a few GB in memory instead of a dict of 90 floats per track."""

    __slots__ = ("names", "values")

    def __init__(self, names: tuple, values: np.ndarray):
        self.names, self.values = names, values


def _slim(line: dict, names: dict) -> dict:
    """``line`` with its feature dict as :class:`_Features` and its (repeated) mel key interned."""
    feats = line.get("features")
    if isinstance(feats, dict):
        key = names.setdefault(tuple(feats), tuple(feats))
        line["features"] = _Features(key, np.fromiter(feats.values(), dtype=np.float64, count=len(feats)))
    if "key" in line:
        line["key"] = sys.intern(line["key"])
    return line


def _full(line: dict) -> dict:
    """The JSON form of a line held by :func:`_slim`."""
    feats = line.get("features")
    if isinstance(feats, _Features):
        return {**line, "features": dict(zip(feats.names, feats.values.tolist()))}
    return line


def _read_index(path: Path) -> dict[str, dict]:
    """Last valid line per track id (a line cut short by a crash is ignored), held compactly."""
    entries: dict[str, dict] = {}
    names: dict[tuple, tuple] = {}
    if path.exists():
        with open(path, encoding="utf-8") as lines:  # streamed: the file of a 1M-track library is GBs
            for raw in lines:
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                entries[line["track_id"]] = _slim(line, names)
    return entries


def ingest(source: str | Path, name: str, *, manifest: str | Path | None = None, labels: bool = True,
           params: MelParams | None = None, config: IngestConfig | None = None,
           progress: Optional[Progress] = None) -> IngestReport:
    """Analyse every audio file below ``source`` into the dataset ``name`` (incrementally).

    Parameters
    ----------
    source : path
        Library folder.
    name : str
        Dataset name (folder under ``artifacts/datasets``).
    manifest : path or None
        CSV with ``path,label[,artist,title]``; default ``source/manifest.csv`` when it exists.
    labels : bool
        False: ignore folder names and manifests (an unlabelled library).
    params : MelParams or None
        Default ``MelParams()``.
    config : IngestConfig or None
        Default ``IngestConfig()``.
    progress : Progress or None
        ``progress(0, total, message)`` before the first file, ``progress(done, total, relpath)`` after each
        analysed file.

    Returns
    -------
    IngestReport

    Raises
    ------
    DatasetError
        Not a folder, no audio in it, no usable file, a bad dataset name, or another process is ingesting
        into the same dataset.
    """
    start = time.perf_counter()
    params, config, progress = params or MelParams(), config or IngestConfig(), or_silent(progress)
    if config.engine not in ENGINES:
        raise DatasetError(f"engine {config.engine!r}: use one of {', '.join(ENGINES)}")
    root = Path(source).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{source}: not a folder")
    files, unusable = scan_library(root)
    if not files:
        why = f"; {len(unusable)} cannot be opened, first: {unusable[0]['path']}: {unusable[0]['reason']}" \
            if unusable else ""
        raise DatasetError(f"{source}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)}){why}")
    if manifest is None and (root / "manifest.csv").exists():
        manifest = root / "manifest.csv"
    label_table, label_source, outside = read_labels(root, files, Path(manifest) if manifest and labels else None)
    if not labels:
        label_table["label"], label_source = None, "none"

    out = dataset_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(out / ".lock", what=f"ingest {root}"):
            return _ingest_locked(root, out, name, files, label_table, label_source, params, config, progress,
                                  start, unusable + outside)
    except Busy as busy:
        raise DatasetError(f"dataset {name!r} is being ingested by {describe(busy.holder)}; wait for it to "
                           "finish (or stop it) and run this again") from None


def _write_index(out: Path, lines: list[dict]) -> None:
    """Replace index.jsonl (and mels/refs.parquet) with ``lines``, atomically (a migration or compaction)."""
    atomic_write_bytes(out / "index.jsonl", dumps_lines(_full(line) for line in lines))
    write_refs(out / "mels", lines)


def _shard_options(config: IngestConfig) -> dict:
    return {"max_tracks": config.shard_tracks, "max_mb": config.shard_mb}


def _ingest_locked(root: Path, out: Path, name: str, files: list[Path], label_table: pd.DataFrame,
                   label_source: str, params: MelParams, config: IngestConfig, progress: Progress,
                   start: float, left_out: list[dict]) -> IngestReport:
    mel_dir = out / "mels"
    mel_dir.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.jsonl"
    key = _mel_key(params, config)
    known = _read_index(index_path)
    remove_unreferenced(mel_dir, known.values())  # we hold the lock: anything unnamed is a killed writer's
    migrate(mel_dir, known, write_index=lambda lines: _write_index(out, lines), **_shard_options(config))
    shards = set(shard_numbers(mel_dir))

    jobs, stats = [], {}
    for f, rel in zip(files, label_table["relpath"]):
        st = f.stat()
        tid = track_id_for(rel)
        stats[tid] = {"relpath": rel, "path": str(f), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "key": key}
        old = known.get(tid)
        fresh = old is not None and all(old.get(k) == v for k, v in stats[tid].items() if k != "path")
        fresh = fresh and ("error" in old or old.get("shard") in shards) and not old.get("crashed")
        if fresh and config.features and "error" not in old and "features" not in old:
            fresh = False  # analysed earlier without features
        if not fresh:
            jobs.append((str(f), tid, params.to_dict(), dataclasses.asdict(config)))

    if jobs:  # said first: compiling the audio code can take a minute on a machine's first ingest
        progress(0, len(jobs), "preparing the audio code (compiled once per machine)", unsaved=0)
        _warm_up(params, config.features)
    writer = ShardWriter(mel_dir, first=max(shards, default=-1) + 1, max_seconds=config.shard_seconds,
                         **_shard_options(config))
    results = engine_map(_analyse, jobs, engine=config.engine, workers=config.workers, address=config.ray_address,
                         on_crash=_crashed)
    with open(index_path, "a", encoding="utf-8") as index:
        names: dict[tuple, tuple] = {}

        def commit(lines: list[dict]) -> None:
            for line in lines:
                index.write(json.dumps(line) + "\n")
                known[line["track_id"]] = _slim(line, names)
            index.flush()  # a line is written once its log-mel is on disk: the index never names a missing one

        rejected = 0
        try:
            for done, line in enumerate(results, 1):
                rejected += "error" in line
                mel = line.pop("mel", None)
                line.update(stats[line["track_id"]])
                commit(writer.add(line, mel))
                # unsaved: analysed files whose log-mels wait for their shard (what a kill -9 would cost)
                progress(done, len(jobs), line["relpath"], unsaved=len(writer.lines))
        finally:
            results.close()  # stop the workers first, then keep what finished (Ctrl-C or an error)
            commit(writer.flush())

    live = {tid: known[tid] for tid in stats}
    compact(mel_dir, live, write_index=lambda lines: _write_index(out, lines), **_shard_options(config))
    report = _materialise(out, name, root, stats, live, label_table, label_source, params, config, left_out)
    remove_unreferenced(mel_dir, live.values())  # shards a compaction emptied
    # analysed now: the files that became tracks; a file that could not be used is counted apart (skipped)
    report.n_analysed, report.n_rejected, report.n_cached = len(jobs) - rejected, rejected, len(stats) - len(jobs)
    report.seconds = time.perf_counter() - start
    return report


def migrate_dataset(name: str, *, config: IngestConfig | None = None) -> int:
    """Move a dataset of the old layout (``mels/<id>.npy``) into shards; returns how many tracks moved (0 when
    there was nothing to move). Runs under the dataset's ingest lock; a kill midway is finished by a re-run."""
    config = config or IngestConfig()
    out = load_dataset(name).path
    try:
        with file_lock(out / ".lock", what=f"migrate {name}"):
            known = _read_index(out / "index.jsonl")
            remove_unreferenced(out / "mels", known.values())
            return migrate(out / "mels", known, write_index=lambda lines: _write_index(out, lines),
                           **_shard_options(config))
    except Busy as busy:
        raise DatasetError(f"dataset {name!r} is being ingested by {describe(busy.holder)}; wait for it to "
                           "finish (or stop it) and run this again") from None


def _materialise(out: Path, name: str, root: Path, stats: dict, known: dict, label_table: pd.DataFrame,
                 label_source: str, params: MelParams, config: IngestConfig, left_out: list[dict]) -> IngestReport:
    """Write mels/refs.parquet, tracks.parquet, features.parquet, skipped.json and dataset.json from the index;
    ``left_out`` (files that cannot be opened, manifest rows outside the library) head the skipped list."""
    labels = label_table.set_index("relpath")[["label", "artist", "title"]].to_dict("index")  # .loc per row: minutes at 1M
    rows, feature_rows, skipped = [], [], list(left_out)
    for tid, st in stats.items():
        line = known[tid]
        if "error" in line:
            skipped.append({"path": st["path"], "reason": line["error"]})
            continue
        meta = labels[st["relpath"]]
        rows.append({"track_id": tid, "path": st["path"], "relpath": st["relpath"], "label": meta["label"],
                     "artist": meta["artist"], "title": meta["title"], "duration_s": line["duration_s"],
                     "n_frames": line["n_frames"], "samplerate": line["samplerate"], "channels": line["channels"]})
        if "features" in line:
            feature_rows.append((tid, line["features"]))
    if not rows:
        atomic_write_json(out / "skipped.json", skipped)
        raise DatasetError(f"{root}: none of the {len(stats)} audio files could be used; first problem: "
                           f"{skipped[0]['path']}: {skipped[0]['reason']}")
    tracks = pd.DataFrame(rows)
    for col in ("label", "artist", "title"):
        tracks[col] = tracks[col].astype("string")
    write_refs(out / "mels", [known[tid] for tid in tracks["track_id"]])  # before the table that names them
    atomic_write_parquet(out / "tracks.parquet", tracks)
    if feature_rows:
        atomic_write_parquet(out / "features.parquet", _feature_table(feature_rows))
    atomic_write_json(out / "skipped.json", skipped)
    atomic_write_json(out / "dataset.json", {
        "name": name, "source": str(root), "label_source": label_source, "mel_params": params.to_dict(),
        "ingest_config": dataclasses.asdict(config), "n_tracks": len(tracks), "n_skipped": len(skipped),
        "n_labelled": int(tracks["label"].notna().sum()), "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return IngestReport(dataset_dir=out, n_tracks=len(tracks), n_analysed=0, n_cached=0, skipped=skipped,
                        seconds=0.0, audio_seconds=float(tracks["duration_s"].sum()))


def _feature_table(rows: list[tuple[str, _Features]]) -> pd.DataFrame:
    """track_id + one column per feature, built column-wise (lines of other feature versions side by side)."""
    groups: dict[tuple, list] = {}
    for tid, feats in rows:
        groups.setdefault(feats.names, []).append((tid, feats.values))
    tables = [pd.DataFrame(np.stack([v for _, v in group]), columns=list(names)).assign(
        track_id=[t for t, _ in group]) for names, group in groups.items()]
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    return table[["track_id"] + [c for c in table.columns if c != "track_id"]]
