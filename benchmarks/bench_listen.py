"""Listening benchmark: the streaming matcher's accuracy on degraded live excerpts, its identification rule, and
the time of one live update beside matching each window from scratch.

    .venv/bin/python -m benchmarks.bench_listen [--run RUN] [--queries 50] [--sizes 10000 100000] [--json]

1. accuracy: the run's tracks are split (seeded) into a library half (the search is restricted to those rows)
   and an outside half (music that is not in the library). A 10 s excerpt of a track at a random offset is
   degraded as a phone or a laptop microphone would record it (:func:`degrade`: a synthesised room impulse
   response, a band limit, white noise at an SNR, a random gain with clipping, an MP3 or Opus re-encode) and
   played into :class:`core.service.listen.StreamMatcher` as a live stream twice: with the run's landmark
   fingerprints as its first stage (``combined``: fingerprint candidates re-ranked by the embedding; built first
   when the run has none) and, a library track's, without (``passages``: the embedding's candidates re-ranked by
   passages); the update after 1, 2, 3, 5 and 10 s gives top-1 and top-5 (the source track first / among the
   first five). Beside them, the fingerprint stage alone (:mod:`core.search.fingerprints`: votes on time
   offsets) looks up the first 1, 2, 3, 5 and 10 s of the same excerpts;
2. identification: the same streams (library and outside tracks) through the rule of
   :mod:`core.service.identify` on the combined stage; its thresholds are calibrated on half of the tracks (the
   rule identifying the most calibration streams rightly with no false identification among them) and the
   figures are measured on the other half: share identified (rightly), seconds to identify, false
   identifications (a library stream identified as another track, an outside stream identified at all);
3. speed: one live update (the newest chunks embedded, search, passages, the window's landmarks voted, map
   positions) against a library of ``--sizes`` tracks: the run's library plus synthetic distractors drawn from a
   Gaussian with the mean and covariance of its embeddings and passages (the ANN index above 50,000 tracks, as a
   real run) and synthetic fingerprints (``--fp-seconds`` of landmarks per track, hashes drawn from the run's
   own), beside matching the same window from scratch (a new matcher fed the whole window); the fingerprint
   index's size, the time to lay it out and to fingerprint a track are given for each size; at the largest size
   the accuracy of section 1 (10 dB, laptop band) is measured again among the distractors.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import statistics
import time

import numpy as np

LENGTHS = (1, 2, 3, 5, 10)  # seconds into the stream at which top-1 is read
BANDS = {"laptop": (100.0, 8000.0), "phone": (300.0, 3400.0)}
CONDITIONS = [("laptop", 10.0), ("laptop", 0.0), ("phone", 10.0), ("phone", 0.0)]
STREAM_SECONDS = 10.0


# ------------------------------------------------------------------------------------------------ degradation

def room_response(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A synthesised room impulse response: the direct sound, then exponentially decaying noise (RT60 0.2-0.6 s)
    after a few ms, a living room to a small hall."""
    rt60 = rng.uniform(0.2, 0.6)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 10 ** (rng.uniform(-12, -6) / 20)
    tail[:int(0.003 * sr)] = 0.0
    tail[0] = 1.0
    return tail / np.sqrt(np.sum(tail ** 2))


def reencode(x: np.ndarray, sr: int, codec: str) -> np.ndarray:
    """``x`` through a lossy codec and back (MP3 64 kbit/s, or Opus 24 kbit/s at 48 kHz), at ``sr``."""
    import av

    from core.audio.decode import load_audio

    buffer = io.BytesIO()
    rate = 48_000 if codec == "libopus" else sr
    fmt = "ogg" if codec == "libopus" else "mp3"
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 24_000 if codec == "libopus" else 64_000
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(x[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = sr
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    buffer.name = f"excerpt.{fmt}"
    y = load_audio(buffer, sr=sr, max_seconds=None)
    return np.pad(y, (0, max(0, len(x) - len(y))))[:len(x)]


def degrade(y: np.ndarray, *, sr: int, rng: np.random.Generator, band: tuple[float, float], snr_db: float,
            seconds: float = STREAM_SECONDS) -> np.ndarray:
    """A random ``seconds`` excerpt of ``y`` as a microphone in a room records it: room response, band limit
    (8th-order Butterworth band-pass), white noise ``snr_db`` below the music, a gain of -20 to +6 dB (clipped),
    an MP3 or Opus re-encode (even odds). np.ndarray [shape=(seconds * sr,), dtype=float32]."""
    from scipy.signal import butter, fftconvolve, sosfilt

    n = int(round(seconds * sr))
    start = int(rng.integers(0, max(1, len(y) - n + 1)))
    x = np.asarray(y[start:start + n], dtype=np.float64)
    x = fftconvolve(x, room_response(rng, sr))[:len(x)]
    x = sosfilt(butter(4, [band[0], min(band[1], 0.45 * sr)], btype="bandpass", fs=sr, output="sos"), x)
    power = float(np.mean(x ** 2)) or 1e-12
    x = x + rng.standard_normal(len(x)) * np.sqrt(power * 10 ** (-snr_db / 10))
    x = x / max(np.sqrt(np.mean(x ** 2)), 1e-9) * 0.1 * 10 ** (rng.uniform(-20, 6) / 20)
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    return reencode(x, sr, "libmp3lame" if rng.random() < 0.5 else "libopus")


def condition_excerpt(y: np.ndarray, *, sr: int, row: int, condition: tuple, index: int, seed: int) -> np.ndarray:
    """Track ``row``'s degraded excerpt in ``condition`` (band name, SNR), the ``index``-th condition asked for: the
    same for every benchmark that asks (its random numbers seeded by the seed, the row and the index)."""
    band, snr = condition
    return degrade(y, sr=sr, rng=np.random.default_rng([seed, row, index]), band=BANDS[band], snr_db=snr)


# ------------------------------------------------------------------------------------------------ streams

@dataclasses.dataclass
class Stream:
    """One degraded excerpt played live: its source row, whether that is in the library, and per update the
    top rows, scores, the top-1's passage match and alignment."""

    source: int
    inside: bool
    condition: tuple
    updates: list  # the combined stage (fingerprints, then the embedding): (seconds, rows, scores, passage, aligned, votes)
    passages: list = dataclasses.field(default_factory=list)  # the same without fingerprints (library streams)
    candidates: list = dataclasses.field(default_factory=list)  # per combined update: (rows, embedding scores, votes)
    landmarks: dict = dataclasses.field(default_factory=dict)  # seconds -> (rows, votes) of the fingerprint stage


def play(run, y: np.ndarray, rows: np.ndarray, *, fingerprints: bool = True, candidates: list | None = None):
    """``y`` streamed live (an update a second, the last at its end): per update the seconds, top rows and scores,
    and the top-1's passage match, alignment and votes; every update's candidates (rows, embedding scores,
    votes) appended to ``candidates``."""
    from core.service.listen import ListenConfig, StreamMatcher

    stream = StreamMatcher(run, config=ListenConfig(k=5, fingerprints=fingerprints), rows=rows)
    sr, out = run.mel_params.sr, []
    for i in range(0, len(y), sr):
        u = stream.feed(y[i:i + sr])
        if u is None and i + sr >= len(y) and stream.total > stream.last_update:
            u = stream.update()
        if u is None:
            continue
        t = u.neighbours
        top = [float(t[c].iloc[0]) if len(t) else np.nan for c in ("passage", "aligned", "votes")]
        out.append((u.seconds, t["row"].to_numpy(), t["score"].to_numpy(np.float64), *top))
        if candidates is not None:
            candidates.append(None if u.silent else stream.candidates)
    return out


def make_streams(run, sources: np.ndarray, inside: np.ndarray, library: np.ndarray, *, seed: int,
                 conditions=CONDITIONS, compare: bool = True) -> list[Stream]:
    """Each source's degraded excerpts played live through the combined stage (and with ``compare`` through
    passages alone, and their first 1, 2, 3, 5, 10 s looked up by the run's fingerprints alone)."""
    from core.audio.decode import load_audio

    sr = run.mel_params.sr
    fingerprints = run.fingerprints
    streams = []
    for i, (row, is_in) in enumerate(zip(sources, inside)):
        y = load_audio(run.tracks["path"].iloc[row], sr=sr, max_seconds=None)
        for c, (band, snr) in enumerate(conditions):
            x = condition_excerpt(y, sr=sr, row=int(row), condition=(band, snr), index=c, seed=seed)
            found: list = []
            streams.append(Stream(int(row), bool(is_in), (band, snr), play(run, x, library, candidates=found),
                                  passages=play(run, x, library, fingerprints=False) if compare and is_in else [],
                                  candidates=found))
            if fingerprints is not None and compare:
                allowed = np.zeros(len(run.tracks), bool)
                allowed[library] = True
                streams[-1].landmarks = {n: fingerprints.votes(x[:n * sr], sr=sr, k=5, allowed=allowed)
                                         for n in LENGTHS}
        print(f"  streams of {i + 1}/{len(sources)} tracks", flush=True)
    return streams


def accuracy(streams: list[Stream], stage: str = "updates") -> dict:
    """top-1 / top-5 per condition and length, library streams only, of one stage (``updates``: combined, or
    ``passages``)."""
    out = {}
    for band, snr in dict.fromkeys(s.condition for s in streams):
        mine = [s for s in streams if s.inside and s.condition == (band, snr)]
        for length in LENGTHS:
            at = [next(u for u in getattr(s, stage) if u[0] >= length - 1e-6) for s in mine]
            out[f"{band}_{snr:g}dB_{length}s"] = {
                "top1": round(float(np.mean([u[1][0] == s.source for s, u in zip(mine, at)])), 3),
                "top5": round(float(np.mean([s.source in u[1][:5] for s, u in zip(mine, at)])), 3), "n": len(mine)}
    return out


def fingerprint_figures(streams: list[Stream]) -> dict:
    """The fingerprint stage beside the passages: top-1 / top-5 per condition and length (library streams), and
    the most votes any outside stream gave one track (what a vote threshold must stay above)."""
    out = {}
    for band, snr in dict.fromkeys(s.condition for s in streams):
        mine = [s for s in streams if s.condition == (band, snr)]
        for n in LENGTHS:
            found = [(s.source, *s.landmarks[n]) for s in mine if s.inside]
            out[f"{band}_{snr:g}dB_{n}s"] = {
                "top1": round(float(np.mean([len(r) > 0 and r[0] == src for src, r, _ in found])), 3),
                "top5": round(float(np.mean([src in r[:5] for src, r, _ in found])), 3),
                "median_votes_source": float(np.median([v[0] if len(r) and r[0] == src else 0
                                                        for src, r, v in found])),
                "max_votes_outside": int(max([s.landmarks[n][1][0] if len(s.landmarks[n][1]) else 0
                                              for s in mine if not s.inside], default=0)), "n": len(found)}
    return out


# ------------------------------------------------------------------------------------------------ the rule

def replay(stream: Stream, rule) -> tuple[int | None, float | None]:
    from core.service.identify import Identification

    ident = Identification(rule=rule)
    for seconds, rows, scores, passage, aligned, votes in stream.updates:
        ident.step(rows, scores, passage, aligned, seconds=seconds, votes=votes)
    return ident.row, ident.seconds


def rule_rates(streams: list[Stream], rule) -> dict:
    inside = [s for s in streams if s.inside]
    outside = [s for s in streams if not s.inside]
    got_in = [replay(s, rule) for s in inside]
    got_out = [replay(s, rule) for s in outside]
    right = [sec for s, (row, sec) in zip(inside, got_in) if row == s.source]
    wrong_in = sum(row is not None and row != s.source for s, (row, _) in zip(inside, got_in))
    wrong_out = sum(row is not None for row, _ in got_out)
    return {"identified": round(len(right) / max(len(inside), 1), 3),
            "median_seconds": None if not right else statistics.median(right),
            "false_inside": round(wrong_in / max(len(inside), 1), 3),
            "false_outside": round(wrong_out / max(len(outside), 1), 3),
            "false": round((wrong_in + wrong_out) / max(len(streams), 1), 3),
            "n_inside": len(inside), "n_outside": len(outside)}


def calibrate(streams: list[Stream]):
    """The rule whose thresholds identify the most calibration streams rightly while identifying no outside
    stream and no library stream wrongly (ties: the larger thresholds)."""
    from core.service.identify import IdentifyRule

    best, best_key = IdentifyRule(), None
    for confirm in (1, 2, 3):
        for margin in (0.0, 0.02, 0.05, 0.1, 0.2):
            for votes in (6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80):
                rule = IdentifyRule(confirm=confirm, min_margin=margin, min_votes=votes)
                rates = rule_rates(streams, rule)
                if rates["false"] > 0:
                    continue
                key = (rates["identified"], -(rates["median_seconds"] or 99), votes, margin, confirm)
                if best_key is None or key > best_key:
                    best, best_key = rule, key
    return best


# ------------------------------------------------------------------------------------------------ speed

class PooledPassages:
    """Passages of a big library: the real ones for the first rows, the distractors' drawn from a pool (as
    costly to gather and compare, without gigabytes of random numbers)."""

    def __init__(self, real: np.ndarray, pool: np.ndarray, n_total: int):
        self.real, self.pool, self.shape = real, pool, (n_total, real.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, take):
        take = np.asarray(take)
        out = np.empty((len(take), self.shape[1]), dtype=np.float16)
        mine = take < len(self.real)
        out[mine] = self.real[take[mine]]
        out[~mine] = self.pool[take[~mine] % len(self.pool)]
        return out


def synthetic_fingerprints(run, n: int, *, seconds: float, seed: int = 0):
    """The run's fingerprint index grown to ``n`` tracks: each distractor gets ``seconds`` of landmarks at the
    run's own rate per second, hashes drawn from the run's hash frequencies (common ones stay common, so buckets
    are as uneven as real music makes them), anchor frames at random. Laid out directly (the real entries first in
    each bucket, then the distractors' spread evenly over their rows, in row order as a build leaves them), not
    sorted: the build's time is measured on the real tracks instead (:func:`fingerprint_build`)."""
    from core.search.fingerprints import HOP, FingerprintIndex

    real = run.fingerprints
    rng = np.random.default_rng(seed)
    counts = np.diff(np.asarray(real.starts))
    rate = len(real.rows) / float(run.tracks["duration_s"].sum())
    m = n - real.n_tracks
    extra = rng.multinomial(int(m * seconds * rate), counts / counts.sum())
    starts = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts + extra, out=starts[1:])
    extra_starts = np.concatenate([[0], np.cumsum(extra)])
    rows, times = np.empty(int(starts[-1]), np.int32), np.empty(int(starts[-1]), np.uint16)
    frames = int(seconds * run.mel_params.sr / HOP)
    for a in range(0, int(extra_starts[-1]), 1 << 24):  # in pieces: no temporaries of the whole size
        at = np.arange(a, min(a + (1 << 24), int(extra_starts[-1])))
        bucket = np.searchsorted(extra_starts, at, side="right") - 1
        j = at - extra_starts[bucket]
        place = starts[bucket] + counts[bucket] + j
        rows[place] = real.n_tracks + ((j + rng.random(len(at))) * m / extra[bucket]).astype(np.int64)
        times[place] = rng.integers(0, frames, size=len(at), dtype=np.uint16)
    bucket = np.repeat(np.arange(len(counts)), counts)
    at = starts[bucket] + np.arange(len(real.rows)) - np.asarray(real.starts)[bucket]
    rows[at], times[at] = real.rows, real.times
    return FingerprintIndex(starts=starts, rows=rows, times=times, n_tracks=n)


def fingerprint_build(run, n: int, index, *, tracks: int = 10) -> dict:
    """What fingerprinting ``n`` tracks costs: landmarks of one track (mean of ``tracks`` of the run's, decoding
    apart), the index laid out (the run's landmarks laid out again, per entry), and the index's size."""
    from core.audio.decode import load_audio
    from core.search.fingerprints import FingerprintIndex, landmarks

    sr = run.mel_params.sr
    signals = [load_audio(p, sr=sr, max_seconds=None) for p in run.tracks["path"].iloc[:tracks]]
    start = time.perf_counter()
    made = [landmarks(y, sr=sr) for y in signals]
    per_track = (time.perf_counter() - start) / len(signals)
    real = run.fingerprints
    hashes = np.repeat(np.arange(len(real.starts) - 1, dtype=np.uint32), np.diff(np.asarray(real.starts)))
    start = time.perf_counter()
    FingerprintIndex.from_landmarks(hashes, np.asarray(real.rows), np.asarray(real.times).astype(np.int32),
                                    n_hashes=len(real.starts) - 1, n_tracks=real.n_tracks)
    per_entry = (time.perf_counter() - start) / max(len(real.rows), 1)
    seconds_per_track = float(np.mean([len(y) / sr for y in signals]))
    return {"index_mb": round(index.size_bytes / 1e6, 1), "entries": int(len(index.rows)),
            "landmarks_per_track": int(np.mean([len(h) for h, _ in made])), "track_seconds": round(seconds_per_track, 1),
            "landmarks_ms_per_track": round(per_track * 1000, 1),
            "build_s_estimated": round(n * per_track + len(index.rows) * per_entry, 1)}  # one process, no decoding


def big_library(run, n: int, *, seed: int = 0, fp_seconds: float = 30.0):
    """``run`` grown to ``n`` tracks with Gaussian distractors (its embeddings' and passages' mean and
    covariance), searched through an IVF index above 50,000 tracks as a real run would be."""
    import pandas as pd

    from core.runs.folder import load_run
    from core.search.ann import build_index, needs_index

    rng = np.random.default_rng(seed)

    def like(x: np.ndarray, m: int) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        z = rng.multivariate_normal(x.mean(axis=0), np.cov(x.T), size=m).astype(np.float32)
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    big = load_run(run.run_id)
    m = n - len(run.tracks)
    emb = np.concatenate([run.embeddings, like(run.embeddings, m)])
    passages, offsets = run.passages
    per = int(np.median(np.diff(offsets)))
    fake = pd.DataFrame({"track_id": [f"x{i}" for i in range(m)], "path": [f"/music/x{i}.mp3" for i in range(m)],
                         "label": None, "title": None, "artist": None})
    big.__dict__["tracks"] = pd.concat([run.tracks, fake], ignore_index=True)
    big.__dict__["embeddings"] = emb
    big.__dict__["index"] = build_index(emb, seed=seed) if needs_index(n) else None
    all_offsets = np.concatenate([offsets, offsets[-1] + per * np.arange(1, m + 1)])
    pool = like(np.asarray(passages[:200_000]), 200_000).astype(np.float16)
    big.__dict__["passages"] = (PooledPassages(np.asarray(passages), pool, int(all_offsets[-1])), all_offsets)
    coords = run.projections
    fake_xy = rng.normal(size=(m, 2)).astype(np.float32)
    big.__dict__["projections"] = pd.concat([coords, pd.DataFrame(
        {"track_id": fake["track_id"], **{f"{p}_{a}": fake_xy[:, i] for p in ("pca", "tsne", "umap")
                                           for i, a in enumerate("xy")}})], ignore_index=True)
    big.__dict__["fingerprints"] = synthetic_fingerprints(run, n, seconds=fp_seconds, seed=seed)
    big.__dict__["model"] = run.model  # loaded once: core.search.matcher_for(big) searches emb and the pooled passages
    return big


def update_times(run, y: np.ndarray, *, updates: int = 20) -> dict:
    """Median and 95th percentile of one live update in a full 10 s window, and of matching that window from
    scratch (a new matcher fed the whole window: it embeds all of it, votes its landmarks, searches, re-ranks,
    places it)."""
    from core.service.listen import StreamMatcher

    def from_scratch(window: np.ndarray) -> None:
        StreamMatcher(run).feed(window)

    sr = run.mel_params.sr
    warm = 3  # the first updates pay one-off costs (torch's first passes, numba)
    y = np.tile(y, int(np.ceil((STREAM_SECONDS + warm + updates + 1) * sr / len(y))))
    stream = StreamMatcher(run)
    assert stream.fingerprints is not None, "the timed library has fingerprints"
    stream.feed(y[:int(STREAM_SECONDS * sr)])
    for i in range(warm):
        at = int((STREAM_SECONDS + i) * sr)
        stream.feed(y[at:at + sr])
        from_scratch(y[at + sr - int(STREAM_SECONDS * sr):at + sr])
    y = y[warm * sr:]
    live, scratch = [], []
    for i in range(updates):
        at = int((STREAM_SECONDS + i) * sr)
        start = time.perf_counter()
        stream.feed(y[at:at + sr])
        live.append(time.perf_counter() - start)
        start = time.perf_counter()
        from_scratch(y[at + sr - int(STREAM_SECONDS * sr):at + sr])
        scratch.append(time.perf_counter() - start)
    q = lambda xs, p: round(float(np.percentile(xs, p)) * 1000, 1)  # noqa: E731
    return {"live_ms_median": q(live, 50), "live_ms_p95": q(live, 95),
            "scratch_ms_median": q(scratch, 50), "scratch_ms_p95": q(scratch, 95),
            "speedup": round(statistics.median(scratch) / statistics.median(live), 1)}


# ------------------------------------------------------------------------------------------------ main

def save_streams(streams: list[Stream], path: str) -> None:
    """Every stream's updates as JSON lines (to study other rules without streaming again)."""
    with open(path, "w") as out:
        for s in streams:
            out.write(json.dumps({"source": s.source, "inside": s.inside, "condition": list(s.condition), "updates": [
                [sec, rows.tolist(), scores.tolist(), *rest] for sec, rows, scores, *rest in s.updates]}) + "\n")


def strength_top1(streams: list[Stream], cfg) -> dict:
    """top-1 of the library streams per condition and length had the candidates been ranked by embedding score
    plus ``cfg``'s fingerprint strength (:meth:`core.service.listen.ListenConfig.strength`), and the mean."""
    out = {}
    for band, snr in dict.fromkeys(s.condition for s in streams):
        mine = [s for s in streams if s.inside and s.condition == (band, snr)]
        for length in LENGTHS:
            hits = []
            for s in mine:
                at = next(i for i, u in enumerate(s.updates) if u[0] >= length - 1e-6)
                found = s.candidates[at]
                hits.append(found is not None and found[0][np.argmax(found[1] + cfg.strength(found[2]))] == s.source)
            out[f"{band}_{snr:g}dB_{length}s"] = round(float(np.mean(hits)), 3)
    out["mean"] = round(float(np.mean(list(out.values()))), 3)
    return out


def calibrate_strength(calibration: list[Stream], test: list[Stream]) -> dict:
    """The fingerprint strength's floor and half (:class:`core.service.listen.ListenConfig`) that rank the
    calibration streams' sources first most often (mean top-1 over conditions and lengths), and what it and the
    default give on the test streams."""
    from core.service.listen import ListenConfig

    grid = [ListenConfig(vote_floor=f, vote_half=h) for f in (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
            for h in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)]
    best = max(grid, key=lambda c: (strength_top1(calibration, c)["mean"], c.vote_floor, c.vote_half))
    return {"vote_floor": best.vote_floor, "vote_half": best.vote_half,
            "calibration_mean": strength_top1(calibration, best)["mean"],
            "test": strength_top1(test, best), "test_default": strength_top1(test, ListenConfig())}


def quality(run, sources, inside, library, *, seed: int, save: str | None = None) -> dict:
    """Sections 1 and 2: accuracy per condition and length, the rule calibrated on tracks of even row and its
    rates on tracks of odd row (and the default rule's on those)."""
    from core.service.identify import IdentifyRule

    streams = make_streams(run, sources, inside, library, seed=seed)
    if save:
        save_streams(streams, save)
    calibration = [s for s in streams if s.source % 2 == 0]
    test = [s for s in streams if s.source % 2 == 1]
    rule = calibrate(calibration)

    def rates(chosen) -> dict:
        return {f"{b}_{s:g}dB": rule_rates([x for x in test if x.condition == (b, s)], chosen) for b, s in CONDITIONS}

    return {"accuracy": accuracy(streams), "accuracy_passages": accuracy(streams, "passages"),
            "fingerprints": fingerprint_figures(streams), "rule_calibrated": dataclasses.asdict(rule),
            "identification_calibrated": rates(rule), "rule_default": dataclasses.asdict(IdentifyRule()),
            "identification_default": rates(IdentifyRule()),
            "strength": calibrate_strength(calibration, test),
            "n_calibration_streams": len(calibration), "n_test_streams": len(test)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_listen", description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="run id (default: the newest run of emotify-dev, else the newest run)")
    parser.add_argument("--queries", type=int, default=50, help="library tracks and outside tracks each streamed")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000], help="library sizes timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (1: a shared machine's cores "
                                                              "are not oversubscribed; both paths get the same)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--save-streams", help="write every stream's updates to this JSON-lines file")
    parser.add_argument("--fp-seconds", type=float, default=30.0, help="seconds of landmarks of each synthetic "
                                                                       "distractor track in the timed libraries")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    from core.audio.decode import load_audio
    from core.runs.folder import list_runs, load_run

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    run_id = args.run or next((r for r in reversed(list_runs()) if load_run(r).config.get("dataset") == "emotify-dev"),
                              list_runs()[-1])
    run = load_run(run_id)
    if run.fingerprints is None:
        from core.search.fingerprint_store import add_fingerprints

        print(f"run {run_id} has no fingerprints: building them", flush=True)
        add_fingerprints(run)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(run.tracks))
    library, outside = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    q = min(args.queries, len(library), len(outside))
    sources = np.concatenate([rng.choice(library, q, replace=False), rng.choice(outside, q, replace=False)])
    inside = np.arange(2 * q) < q
    print(f"run {run_id}: {len(library)} library tracks, {len(outside)} outside; {q} + {q} streams x "
          f"{len(CONDITIONS)} conditions", flush=True)
    figures = {"run": run_id, "library_tracks": len(library), "outside_tracks": len(outside), "speed": {}}
    if q:
        figures.update(quality(run, sources, inside, library, seed=args.seed, save=args.save_streams))
    y = load_audio(run.tracks["path"].iloc[int(library[0])], sr=run.mel_params.sr, max_seconds=None)
    for n in args.sizes:
        big = big_library(run, n, seed=args.seed, fp_seconds=args.fp_seconds)
        figures["speed"][str(n)] = {**update_times(big, y), "fingerprints": fingerprint_build(run, n, big.fingerprints)}
        print(f"  {n} tracks: {figures['speed'][str(n)]}", flush=True)
        del big
    if args.sizes and q:
        big = big_library(run, max(args.sizes), seed=args.seed, fp_seconds=args.fp_seconds)
        few = sources[:q][:20]
        searched = np.concatenate([library, np.arange(len(run.tracks), len(big.tracks))])
        at_scale = make_streams(big, few, np.ones(len(few), bool), searched, seed=args.seed,
                                conditions=[("laptop", 10.0)], compare=False)
        figures["accuracy_at_scale"] = {"tracks": max(args.sizes), **accuracy(at_scale)}
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
