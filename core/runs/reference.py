"""The frozen pretrained reference (musicnn) as a run folder: its embeddings of a library, evaluated and mapped.

``python -m core reference --dataset NAME`` embeds every track of an ingested dataset with
:class:`core.model.reference.ReferenceEncoder` and writes a normal run folder (tracks, embeddings, maps,
evaluation, ``model.pt``), so every page, the API and comparisons treat it as any other run."""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Callable, Optional

import numpy as np
import torch

from core.base.errors import DatasetError
from core.base.io import atomic_write_json, atomic_write_npy, atomic_write_parquet
from core.base.progress import Progress
from core.data.dataset import Dataset, load_dataset
from core.model import musicnn
from core.model.reference import library_patch_features, pretrained_encoder, save_reference
from core.runs.config import ReferenceConfig


def reference_run(dataset: str | Dataset, *, cfg: ReferenceConfig | None = None, progress: Optional[Progress] = None,
                  stage: Optional[Callable[[str], None]] = None) -> str:
    """Embed a dataset with the frozen musicnn reference and write a complete run folder.

    Returns
    -------
    str
        The run id.

    Raises
    ------
    DatasetError
        No such dataset, a feature table without audio, or no track whose audio can still be read.
    """
    from core.evaluation.knn import evaluate_embeddings
    from core.runs.folder import library_versions, new_run_id, run_folder
    from core.search.projection import fit_projections

    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    ds.require_audio()
    cfg = cfg or ReferenceConfig()
    say = stage or (lambda message: None)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    started = time.perf_counter()
    model = pretrained_encoder(layer=cfg.layer)
    feats = library_patch_features(ds, layer=cfg.layer, max_patches=cfg.max_patches, progress=progress, model=model)
    keep = [i for i, f in enumerate(feats) if f is not None]
    if not keep:
        raise DatasetError(f"dataset {ds.name!r}: none of its audio files can be read any more")
    if len(keep) < len(feats):
        say(f"{len(feats) - len(keep)} track(s) left out: their audio can no longer be read")
    track_means = np.stack([feats[i].mean(axis=0) for i in keep])
    model.feature_mean.copy_(torch.as_tensor(track_means.mean(axis=0)))
    model.feature_std.copy_(torch.as_tensor(np.maximum(track_means.std(axis=0), 1e-6)))
    embeddings = model.finish(track_means)
    tracks = ds.tracks.iloc[keep].reset_index(drop=True)
    embed_seconds = time.perf_counter() - started

    say("evaluating")
    sr = ds.params.sr
    evaluation = evaluate_embeddings(
        embeddings, tracks=tracks, mels=[ds.mel(t) for t in tracks["track_id"]], sr=sr, seed=cfg.seed,
        score=lambda signals: model.embed_signals(signals, sr=sr, max_patches=cfg.max_patches) @ embeddings.T,
        progress=progress)  # no passages: the reference searches by track embedding only
    say("computing PCA, t-SNE and UMAP maps")
    coords, fit = fit_projections(embeddings, track_ids=tracks["track_id"], seed=cfg.seed)
    run_id = new_run_id(f"{ds.name}-musicnn")
    with run_folder(run_id) as folder:
        atomic_write_parquet(folder / "tracks.parquet", tracks[["track_id", "path", "label", "duration_s", "artist", "title"]])
        atomic_write_npy(folder / "embeddings.npy", embeddings)
        atomic_write_parquet(folder / "projections.parquet", coords)
        fit.save(folder)
        save_reference(folder / "model.pt", model)
        atomic_write_json(folder / "config.json", {
            "run_id": run_id, "dataset": ds.name, "dataset_path": str(ds.path), "kind": "reference",
            "created": dt.datetime.now().isoformat(timespec="seconds"), "reference": dataclasses.asdict(cfg),
            "train": {"embed_chunks": cfg.max_patches}, "seed": cfg.seed, "mel_params": ds.params.to_dict(),
            "chunk_frames": musicnn.PATCH_FRAMES, "chunk_seconds": 3.0, "model_args": model.model_args,
            "device": "cpu", "versions": library_versions()})
        atomic_write_json(folder / "metrics.json", {
            "loss": [], "train_seconds": 0.0, "embed_seconds": round(embed_seconds, 2),
            "total_seconds": round(time.perf_counter() - started, 2), "n_tracks": len(tracks), **evaluation})
    return run_id


