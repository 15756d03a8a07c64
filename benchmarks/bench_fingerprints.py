"""The landmark fingerprint stage alone, under several settings: what chose :class:`FingerprintConfig`'s defaults.

    .venv/bin/python -m benchmarks.bench_fingerprints [--folder ../shared/data/emotify-dev] [--library 100]
        [--queries 40] [--settings '[{"fan_out": 5, "tolerance": 0}, {}]'] [--json]

The folder's tracks (decoded once at 22,050 Hz) are split (seeded) into a library of ``--library`` tracks, indexed
under each setting, and music outside it. ``--queries`` library tracks and half as many outside tracks give a 10 s
excerpt in each of the four conditions of :mod:`benchmarks.bench_listen` (its :func:`degrade`: room, band limit,
noise at 10 or 0 dB, gain, MP3 or Opus), and the first 1, 2, 3, 5 and 10 s of each are voted
(:meth:`FingerprintIndex.votes`). Per setting and condition: top-1 at each length, the source's median votes, and
the most votes an outside excerpt gave any track (what an identification threshold must stay above); and the
index's entries. A setting names :class:`FingerprintConfig` fields and ``tolerance`` (the vote's offset tolerance,
:data:`core.search.fingerprints.OFFSET_TOLERANCE`); ``{}`` is the defaults.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_listen import CONDITIONS, LENGTHS, condition_excerpt
from core.base.constants import SAMPLE_RATE as SR


def excerpts(signals: list, rows: np.ndarray, *, seed: int) -> list[tuple[np.ndarray, int, str]]:
    """Each row's degraded 10 s excerpt in each condition: (audio, row, condition name)."""
    return [(condition_excerpt(signals[row], sr=SR, row=int(row), condition=(band, snr), index=c, seed=seed),
             int(row), f"{band}_{snr:g}dB") for row in rows for c, (band, snr) in enumerate(CONDITIONS)]


def measure(signals: list, library: np.ndarray, queries: list, setting: dict) -> dict:
    """One setting: the library indexed, every excerpt voted at every length."""
    from core.search.fingerprints import OFFSET_TOLERANCE, FingerprintConfig, FingerprintIndex

    setting = dict(setting)
    tolerance = setting.pop("tolerance", OFFSET_TOLERANCE)
    cfg = FingerprintConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in setting.items()})
    start = time.perf_counter()
    index = FingerprintIndex.build([signals[r] for r in library], library, sr=SR, n_tracks=len(signals), cfg=cfg)
    built = time.perf_counter() - start
    allowed = np.zeros(len(signals), bool)
    allowed[library] = True
    found: dict = {}
    for x, row, condition in queries:
        for n in LENGTHS:
            rows, votes = index.votes(x[:n * SR], sr=SR, k=5, cfg=cfg, allowed=allowed, tolerance=tolerance)
            hit = len(rows) > 0 and rows[0] == row
            found.setdefault((condition, n), []).append((bool(allowed[row]), hit, int(votes[0]) if len(votes) else 0))
    figures = {}
    for (condition, n), seen in found.items():
        inside = [(hit, v) for is_in, hit, v in seen if is_in]
        figures[f"{condition}_{n}s"] = {"top1": round(float(np.mean([h for h, _ in inside])), 3),
                                        "median_votes_source": float(np.median([v if h else 0 for h, v in inside])),
                                        "max_votes_outside": max([v for is_in, _, v in seen if not is_in], default=0)}
    return {"setting": {**setting, "tolerance": tolerance}, "entries": int(len(index.rows)),
            "build_s": round(built, 1), "figures": figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fingerprints", description=__doc__.split("\n")[0])
    parser.add_argument("--folder", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "emotify-dev"))
    parser.add_argument("--library", type=int, default=100, help="tracks indexed (the rest are outside music)")
    parser.add_argument("--queries", type=int, default=40, help="library tracks voted (and half as many outside)")
    parser.add_argument("--settings", default='[{"fan_out": 5, "tolerance": 0}, {"fan_out": 10}, {}]',
                        help="JSON list of settings (FingerprintConfig fields and tolerance)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    from core.audio.decode import load_audio
    from core.data.library import find_audio_files

    paths = sorted(str(p) for p in find_audio_files(Path(args.folder)))
    signals = [load_audio(p, sr=SR, max_seconds=None) for p in paths]
    order = np.random.default_rng(args.seed).permutation(len(signals))
    library, outside = np.sort(order[:args.library]), np.sort(order[args.library:])
    queries = excerpts(signals, np.concatenate([library[:args.queries], outside[:args.queries // 2]]), seed=0)
    results = []
    for setting in json.loads(args.settings):
        results.append(measure(signals, library, queries, setting))
        r = results[-1]
        if not args.json:
            print(f"{json.dumps(r['setting'])}: {r['entries']:,} entries, built in {r['build_s']} s")
            for band, snr in CONDITIONS:
                name = f"{band}_{snr:g}dB"
                cells = [(n, r["figures"][f"{name}_{n}s"]) for n in LENGTHS]
                print(f"  {name:12s}" + "  ".join(f"{n}s {f['top1']:.2f} ({f['median_votes_source']:.0f} v, outside "
                                                  f"<= {f['max_votes_outside']})" for n, f in cells), flush=True)
    if args.json:
        print(json.dumps({"tracks": len(signals), "library": len(library), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
