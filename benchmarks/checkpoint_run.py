"""A run folder from a training checkpoint (inference only: no training step), for benchmarks that need a real-music
run while its training is still going.

    TIMBRE_ARTIFACTS=/tmp/listen-artifacts .venv/bin/python -m benchmarks.checkpoint_run \\
        --dataset emotify-dev --checkpoint artifacts/checkpoints/emotify-dev-<key>.pt [--datasets-from artifacts]

The encoder's weights come from the checkpoint (the default recipe's architecture); embeddings, passages and
maps are computed as training computes them after its last epoch, and the run is written under
``TIMBRE_ARTIFACTS`` (point it away from the project's artifacts, so that the half-trained run is never listed
beside real ones). ``--datasets-from`` links the dataset in from another artifacts folder. The evaluation is left
out (``metrics.json`` names the checkpoint's epoch).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint_run", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--datasets-from", help="an artifacts folder whose datasets/NAME is linked in")
    args = parser.parse_args(argv)
    import torch

    from core.base.io import atomic_write_json, atomic_write_npy, atomic_write_parquet
    from core.base.paths import datasets_dir
    from core.data.dataset import load_dataset
    from core.model.embed import embed_mels
    from core.model.encoder import save_model
    from core.runs.folder import new_run_id, run_folder
    from core.search.passages import library_passages, write_passages
    from core.search.projection import fit_projections
    from core.training.config import TrainConfig, chunk_frames_for
    from core.training.loop import build_model

    if args.datasets_from:
        link = datasets_dir() / args.dataset
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to((Path(args.datasets_from) / "datasets" / args.dataset).resolve())
    ds = load_dataset(args.dataset)
    cfg = TrainConfig()
    mels = ds.mels()
    encoder, _ = build_model(mels, cfg=cfg, n_mels=ds.params.n_mels)
    blob = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    encoder.load_state_dict(blob["encoder"])
    epochs = len(blob["losses"])
    chunk_frames = chunk_frames_for(cfg.chunk_seconds, ds.params)
    print(f"checkpoint after {epochs} of {cfg.epochs} epochs; embedding {len(mels)} tracks", file=sys.stderr)
    embeddings = embed_mels(encoder, mels, chunk_frames=chunk_frames, max_chunks=cfg.embed_chunks)
    passages = library_passages(encoder, mels, params=ds.params, chunk_frames=chunk_frames,
                                hop_seconds=cfg.passage_hop_seconds)
    coords, fit = fit_projections(embeddings, track_ids=ds.tracks["track_id"], seed=cfg.seed)
    run_id = new_run_id(f"{ds.name}-epoch{epochs}")
    with run_folder(run_id) as folder:
        atomic_write_parquet(folder / "tracks.parquet",
                             ds.tracks[["track_id", "path", "label", "duration_s", "artist", "title"]])
        atomic_write_npy(folder / "embeddings.npy", embeddings.astype(np.float32))
        atomic_write_parquet(folder / "projections.parquet", coords)
        fit.save(folder)
        save_model(folder / "model.pt", encoder)
        write_passages(folder, *passages)
        atomic_write_json(folder / "config.json", {
            "run_id": run_id, "dataset": ds.name, "dataset_path": str(ds.path),
            "created": dt.datetime.now().isoformat(timespec="seconds"), "train": dataclasses.asdict(cfg),
            "seed": cfg.seed, "mel_params": ds.params.to_dict(), "chunk_frames": chunk_frames,
            "chunk_seconds": cfg.chunk_seconds, "model_args": encoder.model_args, "device": "cpu", "versions": {}})
        atomic_write_json(folder / "metrics.json", {"loss": blob["losses"], "n_tracks": len(ds.tracks),
                                                    "checkpoint_epochs": epochs})
    print(run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
