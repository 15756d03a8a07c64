"""Run folders: written atomically, read by the app, the CLI and the tests.

``artifacts/runs/<run_id>/`` holds::

    config.json          training config, log-mel parameters, dataset, seed, model args, library versions
    metrics.json         per-epoch loss, training time, k-NN evaluation of the embeddings and of the MFCC
                         baseline, query by recording (recording_eval)
    model.pt             {"state_dict", "model_args"} (torch.load(..., weights_only=True)): the trained CNN, or
                         for a reference run the musicnn network with its layer and standardisation
    tracks.parquet       track_id, path, label (null when unknown), duration_s, artist, title
    embeddings.npy       float32 [n_tracks, d] (d = 128 for a trained run), row i is row i of tracks.parquet
    projections.parquet  track_id, pca_x/y, tsne_x/y, umap_x/y
    projection.npz       what the maps were fitted with, to place a new point (core.search.projection.MapFit)
    passages.npy         optional (core.search.passages): float16 [n_passages, d] chunk embeddings every 0.5 s;
    passage_offsets.npy  int64 [n_tracks + 1], track i owns rows offsets[i]:offsets[i + 1]. Absent in reference
                         runs, above MAX_PASSAGE_TRACKS tracks and in runs written before passages
    index.faiss          optional: the ANN index of a library above core.search.ann.EXACT_MAX_TRACKS tracks (faiss
    index.json           binary, not a pickle) and its parameters; `python -m core index --run RUN` (re)builds it
    fingerprint_*.npy    optional (core.search.fingerprint_store): the landmark fingerprint index of the tracks'
    fingerprints.json    audio and its manifest (written last); training writes them, `python -m core fingerprint
                         --run RUN` gives an older run them

Results added later live in sub-folders: ``classifiers/``, ``clusters/`` and ``collections/<id>/classifiers/``.

A run is built in a hidden ``.partial-<run_id>`` folder and renamed into place only when every file is
written, so a crash or Ctrl-C never leaves a folder that looks complete. The writer holds a lock
(``.<run_id>.lock``) meanwhile; a ``.partial-*`` folder whose lock nobody holds belongs to a process that died
(kill -9) and is removed when the next run is written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import platform
import secrets
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from core.base.errors import RunError
from core.base.io import atomic_folder
from core.base.locks import Busy, file_lock
from core.base.paths import runs_dir
from core.runs.aliases import read_alias, run_id_of

REQUIRED_FILES = ("config.json", "metrics.json", "model.pt", "tracks.parquet", "embeddings.npy",
                  "projections.parquet", "projection.npz")


def new_run_id(dataset: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{dataset}-{secrets.token_hex(2)}"


def _writer_lock(run_id: str) -> Path:
    return runs_dir() / f".{run_id}.lock"


def remove_stale_partials() -> list[str]:
    """Remove ``.partial-*`` run folders whose writer has died (nobody holds their lock); returns their names."""
    removed = []
    for folder in runs_dir().glob(".partial-*"):
        lock = _writer_lock(folder.name[len(".partial-"):])
        try:
            with file_lock(lock, what="removing a dead writer's folder"):
                shutil.rmtree(folder, ignore_errors=True)
        except Busy:
            continue  # being written right now
        lock.unlink(missing_ok=True)
        removed.append(folder.name)
    return removed


@contextlib.contextmanager
def run_folder(run_id: str):
    """Yield a hidden work folder; on success it is renamed to ``runs/<run_id>``, on error removed."""
    final = runs_dir() / run_id
    if final.exists():
        raise RunError(f"run {run_id!r} already exists")
    runs_dir().mkdir(parents=True, exist_ok=True)
    remove_stale_partials()
    with file_lock(_writer_lock(run_id), what=f"writing run {run_id}"):
        with atomic_folder(final) as work:
            yield work
            missing = [f for f in REQUIRED_FILES if not (work / f).exists()]
            if missing:
                raise RunError(f"run {run_id}: not written completely, missing {missing}")
    _writer_lock(run_id).unlink(missing_ok=True)


def library_versions() -> dict:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "librosa", "scikit-learn", "umap-learn", "openTSNE", "soundfile", "av"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[name] = md.version(name)
    return versions


@dataclasses.dataclass
class Run:
    """A complete run folder, loaded lazily."""

    run_id: str
    path: Path

    @functools.cached_property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @functools.cached_property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text())

    @functools.cached_property
    def tracks(self) -> pd.DataFrame:
        import pyarrow.parquet as pq

        # one chunk per column: taking a few rows of a chunked 1M-row string column costs ~1 ms per column
        return pq.read_table(self.path / "tracks.parquet").combine_chunks().to_pandas()

    @functools.cached_property
    def embeddings(self) -> np.ndarray:
        return np.load(self.path / "embeddings.npy", allow_pickle=False)

    @functools.cached_property
    def index(self):
        """The run's ANN index (:class:`core.search.ann.AnnIndex`, from ``index.faiss``), loaded once; None when the
        run has none (a library of at most :data:`core.search.ann.EXACT_MAX_TRACKS` tracks is searched exactly)."""
        from core.search.ann import read_index

        return read_index(self.path, n_tracks=len(self.embeddings), dim=self.embeddings.shape[1])

    @functools.cached_property
    def label_rows(self) -> dict[str, np.ndarray]:
        """Label -> its library rows (np.ndarray [shape=(r,), dtype=int64], ascending), computed once: at 1M
        tracks comparing every label string per query would cost more than the search."""
        labels = self.tracks["label"]
        return {str(k): np.asarray(v, dtype=np.int64) for k, v in labels.groupby(labels, sort=True).indices.items()}

    @functools.cached_property
    def projections(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "projections.parquet")

    @functools.cached_property
    def map_fit(self):
        """What the maps were fitted with (:class:`core.search.projection.MapFit`, from ``projection.npz``)."""
        from core.search.projection import MapFit

        return MapFit.load(self.path)

    @functools.cached_property
    def model(self):
        from core.model.encoder import load_model

        return load_model(self.path / "model.pt")

    @functools.cached_property
    def passages(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The library's passages and offsets (:mod:`core.search.passages`), None when the run has none."""
        from core.search.passages import read_passages

        return read_passages(self.path, n_tracks=len(self.tracks))

    @functools.cached_property
    def fingerprints(self):
        """The library's landmark fingerprints (:mod:`core.search.fingerprint_store`), None when it has none yet."""
        from core.search.fingerprint_store import read_fingerprints

        return read_fingerprints(self.path, n_tracks=len(self.tracks), sr=self.mel_params.sr)

    @property
    def mel_params(self):
        from core.audio.features import MelParams

        return MelParams.from_dict(self.config["mel_params"])


def run_path(run: str | Path) -> Path:
    """The folder of ``run``: a run id (a folder in :func:`runs_dir`), a run's alias, or the path of a run folder,
    absolute or relative, with or without a trailing slash (``artifacts/runs/ID/``)."""
    text = str(run).strip()
    run_id = run_id_of(text)  # a run id, or a run's alias (core.runs.aliases)
    if run_id is not None:
        return runs_dir() / run_id
    path = Path(text).expanduser()
    if text and path.is_dir():
        inside = runs_dir().resolve() / path.resolve().name
        return runs_dir() / path.resolve().name if inside == path.resolve() else path.resolve()
    raise RunError(f"no run named {text!r} in {runs_dir()}")


def load_run(run: str | Path) -> Run:
    """Open a complete run, by id or by folder path (see :func:`run_path`); :class:`RunError` names what is
    wrong otherwise (a missing, truncated or unreadable file)."""
    path = run_path(run)
    problem = run_problem(path)
    if problem:
        raise RunError(f"run {path.name!r} {problem}")
    return Run(run_id=path.name, path=path)


def run_problem(path: Path) -> str | None:
    """Why the run folder ``path`` cannot be opened ("is incomplete: missing model.pt", "is broken:
    embeddings.npy cannot be read ..."), or None. Reads the files' headers only, so listing many runs (or a
    1M-track one) stays cheap; the reason never names a server folder."""
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        return f"is incomplete: missing {', '.join(missing)}"
    for name in ("config.json", "metrics.json"):
        try:
            json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"is broken: {name} cannot be read (not valid JSON)"
    try:
        shape = np.load(path / "embeddings.npy", mmap_mode="r", allow_pickle=False).shape
    except Exception:  # noqa: BLE001 - numpy raises ValueError, EOFError or OSError for the same damage
        return "is broken: embeddings.npy cannot be read (truncated, or not a NumPy array file)"
    try:
        import pyarrow.parquet as pq

        n_tracks = pq.read_metadata(path / "tracks.parquet").num_rows
    except Exception:  # noqa: BLE001 - pyarrow's errors name the file's full path
        return "is broken: tracks.parquet cannot be read (truncated, or not a Parquet file)"
    if len(shape) != 2 or shape[0] != n_tracks:
        return f"is broken: {n_tracks} tracks but embeddings of shape {shape}"
    return None


def resolve_run(run: str | Path | None = None) -> Run:
    """The run a server or the bot answers from: ``run`` (an id or a folder path, see :func:`load_run`), or the
    newest run that opens when None; :class:`RunError` when there is none."""
    if run is None:
        run = first_healthy_run()
        if run is None:
            raise RunError("no complete run yet: build one with `python -m core demo` or `python -m core train`")
    return load_run(run)


def list_runs() -> list[str]:
    """Complete runs, newest first (hidden partial folders are not runs; a complete run may still be broken:
    see :func:`run_problem`)."""
    root = runs_dir()
    if not root.exists():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
            and all((p / f).exists() for f in REQUIRED_FILES)]
    # config.json is written once: results added to a run later (classifiers/) must not make it "newer"
    return [p.name for p in sorted(done, key=_written, reverse=True)]


def _written(folder: Path) -> float:
    try:
        return (folder / "config.json").stat().st_mtime
    except OSError:  # removed meanwhile
        return 0.0


def first_healthy_run() -> str | None:
    """The newest run that opens (a broken newer one is passed over), or None."""
    return next((r for r in list_runs() if run_problem(runs_dir() / r) is None), None)


def folder_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def run_summary(run_id: str) -> dict:
    """One row of the runs table: alias (None without), dataset, date, size, key config and evaluation figures;
    ``broken`` is None, or the reason the run cannot be opened (then only ``run_id``, ``alias`` and ``size_mb``
    are filled in)."""
    try:
        run = load_run(run_id)
        cfg, met = run.config, run.metrics
        n_tracks, n_labelled = len(run.tracks), int(run.tracks["label"].notna().sum())
    except (RunError, KeyError, ValueError, OSError) as error:  # KeyError etc.: a table of the wrong shape
        reason = str(error) if isinstance(error, RunError) else f"run {run_id!r} is broken: {type(error).__name__}"
        return {**dict.fromkeys(SUMMARY_COLUMNS), "run_id": run_id, "alias": read_alias(runs_dir() / run_id),
                "broken": reason, "size_mb": round(folder_size_mb(runs_dir() / run_id), 2)}
    learned, base = met.get("knn_eval") or {}, met.get("baseline_mfcc_knn_eval") or {}
    recording = met.get("recording_eval") or {}
    train = cfg.get("train", {})
    return {
        "run_id": run_id, "alias": read_alias(run.path), "dataset": cfg.get("dataset"), "created": cfg.get("created"),
        "tracks": n_tracks, "labelled": n_labelled,
        "size_mb": round(folder_size_mb(run.path), 2), "epochs": train.get("epochs"),
        "chunk_seconds": cfg.get("chunk_seconds"), "train_minutes": round(met.get("train_seconds", 0) / 60, 2),
        "final_loss": (met.get("loss") or [None])[-1],
        "knn5_acc": learned.get("knn_accuracy"), "p_at_5": learned.get("precision_at_k"),
        "mfcc_knn5_acc": base.get("knn_accuracy"), "mfcc_p_at_5": base.get("precision_at_k"),
        "recording_top1": recording.get("top1"), "recording_top5": recording.get("top5"),
        "kind": run_kind(cfg), "broken": None,
        "recipe": "musicnn reference" if run_kind(cfg) == "reference" else train.get("recipe", "(before recipes)"),
        "distill": train.get("distill"),
    }


SUMMARY_COLUMNS = ("run_id", "alias", "dataset", "created", "tracks", "labelled", "size_mb", "epochs", "chunk_seconds",
                   "train_minutes", "final_loss", "knn5_acc", "p_at_5", "mfcc_knn5_acc", "mfcc_p_at_5",
                   "recording_top1", "recording_top5", "kind", "broken", "recipe", "distill")


def run_kind(config: dict) -> str:
    """"trained" (the contrastive encoder, maybe distilled) or "reference" (the frozen pretrained musicnn)."""
    return "reference" if config.get("kind") == "reference" else "trained"


def runs_table() -> pd.DataFrame:
    """:func:`run_summary` of every complete run, newest first."""
    return pd.DataFrame([run_summary(r) for r in list_runs()])


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else value


def flat_config(config: dict) -> dict:
    """A run's nested config as ``{"train.lr": 0.001, "mel_params.n_mels": 96, ...}`` (lists as JSON text)."""
    out: dict = {}
    _flatten("", config, out)
    return out


def config_differences(run_ids: list[str]) -> pd.DataFrame:
    """Settings that differ between runs: one row per setting (``train.lr``, ``mel_params.n_mels``, ...),
    one column per run. Identifiers, dates and paths are left out: they always differ."""
    flat = {}
    for run_id in run_ids:
        row: dict = {}
        _flatten("", {k: v for k, v in load_run(run_id).config.items()
                      if k not in ("run_id", "created", "dataset_path")}, row)
        flat[run_id] = row
    table = pd.DataFrame(flat)
    differs = table.map(str).nunique(axis=1) > 1  # map, not astype: pandas 3 keeps NaN there, and a setting only
    # one run has (an older run's removed one, a newer run's recipe) would not count as a difference
    return table[differs].rename_axis("setting")

