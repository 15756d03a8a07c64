"""Embed a whole dataset with a run's encoder: ``python -m core embed-dataset --run RUN --dataset NAME``.

Written beside the dataset, one folder per run (the run folder stays the record of its training)::

    datasets/NAME/embeddings/<run_id>/
        embeddings.npy    float32 [shape=(n_tracks, embedding_dim)], L2-normalised, rows in tracks.parquet order
        tracks.parquet    track_id of each row
        meta.json         run id, dataset, device, engine, seconds

Tracks go in groups of up to ``group_tracks`` (in shard order, so each group reads few shards sequentially):
in this process with ``engine="pool"``, or one Ray task per group with ``engine="ray"`` (each task asks for
one GPU when the cluster has any). The forward passes run on CUDA whenever the process running them has it.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.base.errors import DatasetError, TimbreError
from core.base.io import atomic_write_json, atomic_write_npy, atomic_write_parquet, write_folder
from core.base.progress import Progress, or_silent
from core.data.dataset import load_dataset
from core.data.engines import engine_map
from core.data.shards import MelStore
from core.runs.folder import load_run


@dataclasses.dataclass
class EmbedResult:
    path: Path
    n_tracks: int
    dim: int
    device: str
    seconds: float


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=2)
def _model(model_path: str):
    from core.model.encoder import load_model

    return load_model(model_path)


def _embed_group(job: tuple[int, str, str, list[str], int, int]) -> tuple[int, np.ndarray, str]:
    """Worker: (group number, embeddings np.ndarray [shape=(len(track_ids), dim)], device) of one group."""
    from core.model.embed import embed_mels

    number, model_path, mel_dir, track_ids, chunk_frames, max_chunks = job
    store, device = MelStore(Path(mel_dir)), torch_device()
    x = embed_mels(_model(model_path), [store.mel(t) for t in track_ids], chunk_frames=chunk_frames,
                   max_chunks=max_chunks, device=device)
    return number, x, device


def _crashed(job, reason: str):
    raise TimbreError(f"embedding tracks {job[3][0]}..{job[3][-1]} failed: {reason}; run it again")


def embed_dataset(run: str | Path, dataset: str, *, engine: str = "pool", ray_address: str = "",
                  group_tracks: int = 1000, progress: Optional[Progress] = None) -> EmbedResult:
    """Embed every track of ``dataset`` with the encoder of ``run``.

    Parameters
    ----------
    run : str or Path
        Run id or folder.
    dataset : str
        Dataset name; its log-mel parameters must be the run's.
    engine : {"pool", "ray"}
        Where the groups run: this process, or Ray tasks (``ray_address`` joins a cluster; the dataset and run
        folders must then be on a file system every node sees under the same path).
    group_tracks : int
        Tracks per group (per Ray task).
    progress : Progress or None
        ``progress(tracks_done, n_tracks, "embedding")`` after each group.

    Returns
    -------
    EmbedResult
        ``path`` is the output folder.
    """
    start = time.perf_counter()
    progress = or_silent(progress)
    r, ds = load_run(run), load_dataset(dataset)
    ds.require_audio()
    if r.config.get("kind") == "reference":
        raise DatasetError(f"run {r.run_id!r} is the frozen musicnn reference, which embeds from the audio files, "
                           f"not from log-mels: `python -m core reference --dataset {dataset}` embeds a dataset with it")
    if ds.params.to_dict() != r.mel_params.to_dict():
        raise DatasetError(f"dataset {dataset!r} was analysed with other log-mel parameters than run {r.run_id!r}: "
                           "re-ingest it with the run's parameters")
    mel_dir = ds.path / "mels"
    refs_path = mel_dir / "refs.parquet"
    order = ds.tracks["track_id"].tolist()
    if refs_path.exists():  # shard order: a group reads one or two shards front to back
        refs = pd.read_parquet(refs_path).set_index("track_id").loc[order]
        order = refs.sort_values(["shard", "start"]).index.tolist()
    groups = [order[i:i + group_tracks] for i in range(0, len(order), group_tracks)]
    jobs = [(i, str(r.path / "model.pt"), str(mel_dir), g, int(r.config["chunk_frames"]),
             int(r.config["train"]["embed_chunks"])) for i, g in enumerate(groups)]
    parts, devices, done = {}, set(), 0
    for i, x, device in engine_map(_embed_group, jobs, engine=engine, workers=1 if engine == "pool" else 0,
                                   address=ray_address, on_crash=_crashed, num_gpus=None):
        parts[i] = x
        devices.add(device)
        done += len(x)
        progress(done, len(order), "embedding")
    position = {t: k for k, t in enumerate(order)}
    x = np.concatenate([parts[i] for i in range(len(groups))])[[position[t] for t in ds.tracks["track_id"]]]
    seconds = time.perf_counter() - start
    device = ",".join(sorted(devices))

    def write(folder: Path) -> None:
        atomic_write_npy(folder / "embeddings.npy", x)
        atomic_write_parquet(folder / "tracks.parquet", ds.tracks[["track_id"]])
        atomic_write_json(folder / "meta.json", {"run_id": r.run_id, "dataset": dataset, "n_tracks": len(x),
                                                 "dim": int(x.shape[1]), "device": device, "engine": engine,
                                                 "seconds": round(seconds, 2)})

    out = ds.path / "embeddings" / r.run_id
    write_folder(out, write)
    return EmbedResult(path=out, n_tracks=len(x), dim=int(x.shape[1]), device=device, seconds=seconds)


def load_dataset_embeddings(run_id: str, dataset: str) -> tuple[pd.DataFrame, np.ndarray]:
    """(tracks with ``track_id``, embeddings np.ndarray [shape=(n_tracks, dim)]) written by :func:`embed_dataset`."""
    folder = load_dataset(dataset).path / "embeddings" / run_id
    if not (folder / "embeddings.npy").exists():
        raise DatasetError(f"dataset {dataset!r} has no embeddings of run {run_id!r}: run `python -m core "
                           f"embed-dataset --run {run_id} --dataset {dataset}`")
    return pd.read_parquet(folder / "tracks.parquet"), np.load(folder / "embeddings.npy", allow_pickle=False)
