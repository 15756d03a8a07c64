"""Pipeline benchmarks, each beside a naive reference measured in the same process.

    .venv/bin/python -m benchmarks.bench_pipeline [--files 40] [--library 10000] [--train]

1. ingest of 44.1 kHz stereo MP3 (decode, resample, log-mel), all cores, vs ``librosa.load`` + ``melspectrogram``
   per file (one process);
2. embedding of ingested tracks vs the naive per-file path (librosa load + mel + embed one track at a time);
3. ``recommend`` for a 30 s MP3 against a 10,000-track library, model loaded;
4. (``--train``) default training on emotify-dev (200 clips of 60 s).

Uses ../shared/data/emotify-dev when present, else synthesises stereo 44.1 kHz MP3s.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TIMBRE_ARTIFACTS", tempfile.mkdtemp(prefix="timbre-bench-"))
EMOTIFY = ROOT.parent / "shared" / "data" / "emotify-dev"


def mp3_library(n_files: int, folder: Path) -> Path:
    """Symlinks to ``n_files`` emotify MP3s (spread over genres), or synthetic stereo 44.1 kHz MP3s."""
    folder.mkdir(parents=True, exist_ok=True)
    if EMOTIFY.is_dir():
        files = sorted(EMOTIFY.glob("*/*.mp3"))
        for mp3 in files[:: max(1, len(files) // n_files)][:n_files]:
            (folder / mp3.parent.name).mkdir(exist_ok=True)
            (folder / mp3.parent.name / mp3.name).symlink_to(mp3)
        return folder
    import soundfile as sf

    from core.demo import STYLES, synthesise_track

    for i in range(n_files):
        y = synthesise_track(STYLES[i % len(STYLES)], seconds=60.0, seed=i)
        import soxr

        y44 = soxr.resample(y, 22050, 44100)
        sf.write(folder / f"{i}.mp3", np.stack([y44, 0.8 * y44], axis=1), 44100, format="MP3")
    return folder


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def naive_mel(path):
    import librosa

    y, sr = librosa.load(path, sr=22050, mono=True)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=96))
    return y, mel


def bench_ingest(folder: Path, results: dict) -> str:
    from core.data.ingest import IngestConfig, ingest

    files = sorted(folder.rglob("*.mp3"))
    _, naive_s = timed(lambda: [naive_mel(str(f)) for f in files])
    report, ours_s = timed(lambda: ingest(folder, "bench", config=IngestConfig(features=False)))
    audio = report.audio_seconds
    shutil.rmtree(report.dataset_dir)
    report_f, ours_f_s = timed(lambda: ingest(folder, "bench", config=IngestConfig(features=True)))
    results["ingest"] = {"files": len(files), "audio_min": round(audio / 60, 1),
                         "naive_librosa_x_realtime": round(audio / naive_s, 1),
                         "ours_x_realtime": round(audio / ours_s, 1),
                         "ours_with_features_x_realtime": round(audio / ours_f_s, 1),
                         "workers": os.cpu_count()}
    return "bench"


def bench_embed(dataset: str, folder: Path, run, results: dict) -> None:
    import torch

    from core.data.dataset import load_dataset
    from core.model.embed import embed_mels

    ds = load_dataset(dataset)
    mels = ds.mels()
    audio = float(ds.tracks["duration_s"].sum())
    cf, chunks = run.config["chunk_frames"], run.config["train"]["embed_chunks"]
    model = run.model
    embed_mels(model, mels[:2], chunk_frames=cf, max_chunks=chunks)  # warm-up
    _, ours_s = timed(lambda: embed_mels(model, mels, chunk_frames=cf, max_chunks=chunks))

    def naive():
        for f in sorted(folder.rglob("*.mp3")):
            _, mel = naive_mel(str(f))
            pieces = [mel[:, s:s + cf] for s in range(0, mel.shape[1] - cf + 1, cf)]
            with torch.inference_mode():
                [model(torch.from_numpy(p[None].astype(np.float32))) for p in pieces]

    _, naive_s = timed(naive)
    results["embed"] = {"tracks": len(mels), "chunks_per_track_max": chunks,
                        "naive_load_mel_embed_chunk_by_chunk_x_realtime": round(audio / naive_s, 1),
                        "ours_x_realtime": round(audio / ours_s, 1)}


def fake_library(run, n: int):
    """A run folder with ``n`` tracks: ``run``'s model, random unit embeddings and passages (55 per track, as
    for 30 s tracks at the 0.5 s hop), map coordinates."""
    import pandas as pd

    from core.base.io import atomic_write_json, atomic_write_npy, atomic_write_parquet
    from core.runs.folder import load_run, run_folder
    from core.search.passages import write_passages
    from core.search.projection import fit_pca

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, run.embeddings.shape[1])).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"t{i:05d}" for i in range(n)]
    with run_folder(f"bench-{n}") as folder:
        shutil.copy(run.path / "model.pt", folder / "model.pt")
        atomic_write_json(folder / "config.json", run.config)
        atomic_write_json(folder / "metrics.json", {})
        atomic_write_parquet(folder / "tracks.parquet", pd.DataFrame({
            "track_id": ids, "path": [f"/music/{i}.mp3" for i in ids], "label": None, "duration_s": 30.0,
            "artist": None, "title": None}))
        atomic_write_npy(folder / "embeddings.npy", emb)
        passages = rng.normal(size=(n * 55, emb.shape[1])).astype(np.float32)
        write_passages(folder, passages / np.linalg.norm(passages, axis=1, keepdims=True), np.arange(0, n * 55 + 1, 55))
        pca, fit = fit_pca(emb)
        xy = rng.normal(size=(n, 2)).astype(np.float32)
        atomic_write_parquet(folder / "projections.parquet", pd.DataFrame({
            "track_id": ids, "pca_x": pca[:, 0], "pca_y": pca[:, 1], "tsne_x": xy[:, 0], "tsne_y": xy[:, 1],
            "umap_x": xy[:, 1], "umap_y": xy[:, 0]}))
        fit.save(folder)
    return load_run(f"bench-{n}")


def bench_recommend(run, folder: Path, n: int, results: dict) -> None:
    import soundfile as sf
    import torch

    from core.audio.decode import load_audio
    from core.service.query import recommend_file

    big = fake_library(run, n)
    big.model, big.embeddings, big.projections, big.map_fit  # loaded once, like the app's cache
    query = Path(tempfile.mkdtemp()) / "query30.mp3"
    y = load_audio(sorted(folder.rglob("*.mp3"))[0], sr=44100, max_seconds=30.0)
    sf.write(query, np.stack([y, y], axis=1), 44100, format="MP3")
    recommend_file(big, query)  # warm-up
    times = [timed(lambda: recommend_file(big, query, k=5))[1] for _ in range(5)]

    def naive():
        _, mel = naive_mel(str(query))
        cf = run.config["chunk_frames"]
        with torch.inference_mode():
            z = torch.stack([big.model(torch.from_numpy(mel[None, :, s:s + cf].astype(np.float32)))[0]
                             for s in range(0, mel.shape[1] - cf + 1, cf)]).mean(0).numpy()
        sims = [float(np.dot(z, e) / (np.linalg.norm(z) * np.linalg.norm(e))) for e in big.embeddings]
        return np.argsort(sims)[::-1][:5]

    naive_times = [timed(naive)[1] for _ in range(3)]
    results["recommend"] = {"library_tracks": n, "query_seconds": 30,
                            "naive_median_s": round(float(np.median(naive_times)), 3),
                            "ours_median_s": round(float(np.median(times)), 3), "ours_max_s": round(max(times), 3)}


def bench_train(results: dict) -> None:
    from core.data.ingest import ingest
    from core.runs.build import train_run
    from core.runs.folder import load_run
    from core.training.config import TrainConfig

    ingest(EMOTIFY, "emotify_bench")
    run_id, seconds = timed(lambda: train_run("emotify_bench", cfg=TrainConfig()))
    metrics = load_run(run_id).metrics
    results["train"] = {"tracks": metrics["n_tracks"], "train_seconds": metrics["train_seconds"],
                        "total_seconds_with_embedding_eval_maps": round(seconds, 1),
                        "knn_eval": metrics["knn_eval"], "baseline_mfcc_knn_eval": metrics["baseline_mfcc_knn_eval"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40, help="MP3 files for the ingest and embedding benchmarks")
    parser.add_argument("--library", type=int, default=10_000, help="library size for the recommend benchmark")
    parser.add_argument("--train", action="store_true", help="also time default training on emotify-dev")
    parser.add_argument("--out", default=None, help="write the figures as JSON here too")
    args = parser.parse_args()

    from core.runs.build import train_run
    from core.runs.folder import load_run
    from core.training.config import TrainConfig

    results: dict = {"machine": f"{os.cpu_count()} cores", "data": "emotify-dev MP3" if EMOTIFY.is_dir() else "synthetic MP3"}
    folder = mp3_library(args.files, Path(tempfile.mkdtemp()) / "mp3")
    dataset = bench_ingest(folder, results)
    print(json.dumps(results["ingest"]), flush=True)
    run = load_run(train_run(dataset, cfg=TrainConfig(epochs=1)))  # the default architecture; weights don't matter here
    bench_embed(dataset, folder, run, results)
    print(json.dumps(results["embed"]), flush=True)
    bench_recommend(run, folder, args.library, results)
    print(json.dumps(results["recommend"]), flush=True)
    if args.train and EMOTIFY.is_dir():
        bench_train(results)
        print(json.dumps(results["train"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
