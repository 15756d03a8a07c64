"""Feature extraction speed: one shared STFT per track (what ingest does) vs one librosa call per feature.

    .venv/bin/python -m benchmarks.bench_features [--files 20] [--data DIR] [--ingest]

* shared: ``core.data.ingest._analyse``, the very function ingest's workers run: decode (soundfile / PyAV + soxr),
  one magnitude STFT, the log-mel and every audio feature derived from them (log-mel .npy written too).
* naive:  ``librosa.load`` and then each ``librosa.feature.*`` / onset / beat call on the waveform, so each one
  recomputes its own STFT (and the log-mel for the CNN is one more).

Both run in this process, one file at a time, after a warm-up file (numba compiles librosa's beat tracker on
first use). Audio: the MP3s of ``../shared/data/emotify-dev`` when present, else synthetic demo tracks.
``--ingest`` also times ``core.data.ingest.ingest`` with 2 worker processes on the same files (what
``python -m core ingest DIR --name NAME --workers 2`` does).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "emotify-dev"


def shared_way(path: Path, mel_dir: Path) -> dict:
    """Exactly what an ingest worker does for one file."""
    from core.audio.features import MelParams
    from core.data.ingest import IngestConfig, _analyse

    cfg = IngestConfig()
    line = _analyse((str(path), "bench", MelParams().to_dict(),
                     {"max_seconds": cfg.max_seconds, "min_seconds": cfg.min_seconds, "features": True,
                      "mel_dir": str(mel_dir)}))
    if "error" in line:
        raise RuntimeError(f"{path}: {line['error']}")
    return {"duration_s": line["duration_s"], **line["features"]}


def naive_way(path: Path) -> dict:
    """librosa.load, then one librosa call per feature on the waveform (each computes its own STFT)."""
    import librosa

    from core.audio.features import MelParams

    p = MelParams()
    sr, n_fft, hop = p.sr, p.n_fft, p.hop_length
    y, _ = librosa.load(path, sr=sr, mono=True, duration=600.0)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop,
                                                             n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax))
    out = {"duration_s": y.size / sr}
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, hop_length=hop)
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    out["tempo_bpm"] = float(np.atleast_1d(tempo)[0])
    out["beat_strength"] = float(onset[beats].mean() / (onset.mean() + 1e-9)) if len(beats) else 0.0
    out["onset_strength_mean"], out["onset_strength_std"] = float(onset.mean()), float(onset.std())
    per_feature = {
        "rms": librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0],
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=n_fft, hop_length=hop)[0],
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr, n_fft=n_fft, hop_length=hop)[0],
        "spectral_rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr, n_fft=n_fft, hop_length=hop)[0],
        "spectral_flatness": librosa.feature.spectral_flatness(y=y, n_fft=n_fft, hop_length=hop)[0],
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0],
    }
    for name, values in per_feature.items():
        out[f"{name}_mean"], out[f"{name}_std"] = float(values.mean()), float(values.std())
    contrast = librosa.feature.spectral_contrast(y=y, sr=sr, n_fft=n_fft, hop_length=hop, fmin=100.0)
    out.update({f"spectral_contrast_{i}_mean": float(v.mean()) for i, v in enumerate(contrast)})
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=n_fft, hop_length=hop, n_mels=p.n_mels)
    out.update({f"mfcc_{i}_mean": float(v.mean()) for i, v in enumerate(mfcc, start=1)})
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, n_fft=n_fft, hop_length=hop)
    out.update({f"chroma_{i}_mean": float(v.mean()) for i, v in enumerate(chroma)})
    out["_mel_frames"] = mel.shape[1]
    return out


def audio_files(data: Path, n: int) -> list[Path]:
    """``n`` files spread over the folder's sub-folders (every genre), or synthetic WAVs when it is absent."""
    from core.data.library import find_audio_files

    if data.is_dir():
        files = find_audio_files(data)
        by_folder: dict[str, list[Path]] = {}
        for f in files:
            by_folder.setdefault(f.parent.name, []).append(f)
        spread = [f for group in zip(*by_folder.values()) for f in group]
        return spread[:n]
    import soundfile as sf

    from core.demo import SR, STYLES, synthesise_track

    folder = Path(tempfile.mkdtemp(prefix="bench-audio-"))
    paths = []
    for i in range(n):
        path = folder / f"{STYLES[i % len(STYLES)]}_{i}.wav"
        sf.write(path, synthesise_track(STYLES[i % len(STYLES)], seconds=30.0, seed=i), SR)
        paths.append(path)
    return paths


def time_each(files: list[Path], run) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    results = [run(f) for f in files]
    return time.perf_counter() - started, results


def ingest_two_workers(files: list[Path]) -> float:
    """Wall time of ``core.data.ingest.ingest`` with 2 workers on links to ``files`` (fresh artifacts folder)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-library-"))
    for i, f in enumerate(files):
        (folder / f"{i:04d}{f.suffix}").symlink_to(f)
    os.environ["TIMBRE_ARTIFACTS"] = tempfile.mkdtemp(prefix="bench-artifacts-")
    from core.data.ingest import IngestConfig, ingest

    started = time.perf_counter()
    ingest(folder, "bench", labels=False, config=IngestConfig(workers=2))
    return time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20, help="number of files to time (default 20)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of audio files")
    parser.add_argument("--ingest", action="store_true", help="also time ingest with 2 worker processes")
    args = parser.parse_args(argv)
    files = audio_files(args.data, args.files + 1)
    warm, files = files[0], files[1:]
    source = args.data if args.data.is_dir() else "synthetic demo tracks (no data folder)"
    print(f"{len(files)} files from {source}; 1 more for warm-up; {os.cpu_count()} CPU cores; one process")
    with tempfile.TemporaryDirectory() as mel_dir:
        shared_way(warm, Path(mel_dir))
        naive_way(warm)
        shared_s, shared = time_each(files, lambda f: shared_way(f, Path(mel_dir)))
        naive_s, naive = time_each(files, naive_way)
    audio_s = sum(r["duration_s"] for r in shared)
    print(f"audio: {audio_s:.0f} s ({audio_s / len(files):.1f} s per file)")
    for name, seconds in ((f"shared STFT (decode + log-mel + {len(shared[0]) - 1} features)", shared_s),
                          ("naive (librosa.load + one librosa call per feature)", naive_s)):
        print(f"{name:<53s} {seconds:7.2f} s = {audio_s / seconds:5.0f}x real time "
              f"({1000 * seconds / len(files):.0f} ms per file)")
    print(f"shared / naive speed: {naive_s / shared_s:.1f}x")
    same = [k for k in naive[0] if k.startswith(("spectral_", "zero_crossing"))]
    rel = max(abs(s[k] - n[k]) / (abs(n[k]) + 1e-12) for s, n in zip(shared, naive) for k in same)
    print(f"same input, same numbers: the {len(same)} spectral / zero-crossing features agree to {rel:.1e} (relative); "
          "MFCC, RMS, onset and tempo differ by definition (mel band edges and floor, RMS windowing)")
    if args.ingest:
        wall = ingest_two_workers(files)
        print(f"ingest, 2 worker processes: {wall:.2f} s = {audio_s / wall:.0f}x real time")


if __name__ == "__main__":
    main()
