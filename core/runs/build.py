"""Building a run: train the encoder on a dataset, embed the library, evaluate, fit the maps, write the folder."""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.base.errors import RunError
from core.base.io import atomic_write_json, atomic_write_npy, atomic_write_parquet
from core.base.locks import Busy, describe, file_lock
from core.base.progress import Progress
from core.data.dataset import Dataset, load_dataset
from core.evaluation.knn import evaluate_embeddings
from core.model.embed import embed_mels
from core.model.encoder import save_model
from core.runs.folder import library_versions, new_run_id, run_folder
from core.search.ann import index_run, needs_index
from core.search.fingerprint_store import build_fingerprints
from core.search.passages import Matcher, hop_frames_for, library_passages, write_passages
from core.search.projection import fit_projections
from core.training.checkpoint import checkpoint_path
from core.training.config import TrainConfig, chunk_frames_for
from core.training.loop import pick_device, train_encoder, use_threads
from core.training.teacher import mel_band_hz, teacher_targets


def train_run(dataset: str | Dataset, *, cfg: TrainConfig | None = None, progress: Optional[Progress] = None,
              stage: Optional[Callable[[str], None]] = None) -> str:
    """Train on a dataset and write a complete run folder.

    Parameters
    ----------
    dataset : str or Dataset
        Name of an ingested dataset.
    cfg : TrainConfig or None
        Every value of the training (:func:`core.training.config.load_recipe` resolves a named recipe); None:
        the default recipe. config.json's ``train`` records all of them, the recipe's name included.
    progress : Progress or None
        ``progress(epoch, epochs, "epoch 12", loss=mean_loss)`` after each epoch.
    stage : callable(message) or None
        Told when training resumes from a checkpoint and when each stage after training starts
        (embedding, evaluation, maps).

    Returns
    -------
    str
        The run id (folder name under ``artifacts/runs``).

    Raises
    ------
    DatasetError
        No such dataset, or too few tracks.
    RunError
        The same training (same dataset and config) is running in another process.
    """
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    cfg = cfg or TrainConfig()
    ds.require_audio()  # an imported feature table has no frames to key a checkpoint on, nor audio to train on
    checkpoint = checkpoint_path(ds, cfg)
    try:
        with file_lock(checkpoint.with_suffix(".lock"), what=f"train {ds.name}"):
            run_id = _train_run(ds, cfg, checkpoint, progress, stage or (lambda message: None))
    except Busy as busy:
        raise RunError(f"this training of dataset {ds.name!r} (same data, same settings) is already running in "
                       f"{describe(busy.holder)}; wait for it, or stop it and run this again to resume it") from None
    checkpoint.unlink(missing_ok=True)
    checkpoint.with_suffix(".lock").unlink(missing_ok=True)
    return run_id


def _train_run(ds: Dataset, cfg: TrainConfig, checkpoint: Path, progress: Optional[Progress],
               say: Callable[[str], None]) -> str:
    started = time.perf_counter()
    mels = ds.mels()
    chunk_frames = chunk_frames_for(cfg.chunk_seconds, ds.params)
    teacher = None
    if cfg.distill > 0:
        say("the musicnn teacher embeds the library (once per dataset; cached)")
        use_threads(cfg.threads)  # the training's threads already: the teacher's pass is most of the time
        teacher = teacher_targets(ds, layer=cfg.teacher_layer, max_patches=cfg.teacher_patches, progress=progress)
        say("training")
    encoder, losses = train_encoder(mels, cfg=cfg, chunk_frames=chunk_frames, n_mels=ds.params.n_mels,
                                    progress=progress, checkpoint=checkpoint, stage=say,
                                    band_hz=mel_band_hz(ds.params), teacher=teacher)
    train_seconds = time.perf_counter() - started
    say("embedding tracks")
    embeddings = embed_mels(encoder, mels, chunk_frames=chunk_frames, max_chunks=cfg.embed_chunks)
    say("embedding passages")
    passages = library_passages(encoder, mels, params=ds.params, chunk_frames=chunk_frames,
                                hop_seconds=cfg.passage_hop_seconds, progress=progress)
    matcher = Matcher(model=encoder, params=ds.params, chunk_frames=chunk_frames, embed_chunks=cfg.embed_chunks,
                      embeddings=embeddings, passages=passages, depth=cfg.rerank_depth,
                      hop_frames=hop_frames_for(cfg.passage_hop_seconds, ds.params))
    say("evaluating")
    evaluation = evaluate_embeddings(embeddings, tracks=ds.tracks, mels=mels, sr=ds.params.sr, seed=cfg.seed,
                                     progress=progress, score=matcher.scores)
    say("computing PCA, t-SNE and UMAP maps")
    coords, fit = fit_projections(embeddings, track_ids=ds.tracks["track_id"], seed=cfg.seed)

    run_id = new_run_id(ds.name)
    with run_folder(run_id) as folder:
        tracks = ds.tracks[["track_id", "path", "label", "duration_s", "artist", "title"]]
        atomic_write_parquet(folder / "tracks.parquet", tracks)
        atomic_write_npy(folder / "embeddings.npy", embeddings.astype(np.float32))
        atomic_write_parquet(folder / "projections.parquet", coords)
        fit.save(folder)
        save_model(folder / "model.pt", encoder)
        if passages is not None:
            write_passages(folder, *passages)
        if needs_index(len(embeddings)):  # above core.search.ann.EXACT_MAX_TRACKS tracks: a FAISS index
            say("building the search index")
            index_run(folder, embeddings, seed=cfg.seed)
        say("fingerprinting the tracks' audio (landmarks for live listening)")
        build_fingerprints(folder, tracks["path"].astype(str).tolist(), sr=ds.params.sr, progress=progress)
        atomic_write_json(folder / "config.json", {
            "run_id": run_id, "dataset": ds.name, "dataset_path": str(ds.path), "created": dt.datetime.now().isoformat(timespec="seconds"),
            "train": dataclasses.asdict(cfg), "seed": cfg.seed, "mel_params": ds.params.to_dict(),
            "chunk_frames": chunk_frames, "chunk_seconds": cfg.chunk_seconds, "model_args": encoder.model_args,
            "device": str(pick_device(cfg.device)), "versions": library_versions()})
        atomic_write_json(folder / "metrics.json", {
            "loss": losses, "train_seconds": round(train_seconds, 2),
            "total_seconds": round(time.perf_counter() - started, 2), "n_tracks": len(ds.tracks), **evaluation})
    return run_id
