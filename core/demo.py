"""A built-in demo corpus: short synthetic tracks in six clearly different styles.

Each track draws its own tempo, key, mix and instrument details from a seeded generator, so a style is a
family of tracks rather than one track repeated. The corpus is written as WAV files under
``artifacts/demo/audio/<style>/`` and then ingested and trained on like any library.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.base.config import MAX_EPOCHS, MAX_SEED, MAX_THREADS, check_bounds, doc
from core.base.constants import SAMPLE_RATE
from core.base.paths import artifacts_dir
from core.base.progress import Progress, or_silent

SR = SAMPLE_RATE


STYLES = ("electronic", "strings", "guitar", "piano", "rock", "hiphop")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Size of the demo corpus and of its training run: about 100 s from nothing on a quiet 2-core machine, a
    numba cache included (`python -m benchmarks.bench_demo --cold-numba`; about 4 min at load 8)."""

    tracks_per_style: int = doc(8, "48 tracks: clusters, a 5-NN evaluation and 48 recording queries still mean "
                                   "something; synthesis and ingest cost a third of 72 x 20 s", at_least=1,
                                at_most=1000)
    seconds: float = doc(12.0, "four distinct 3 s training chunks per track (at most 10 min)", at_least=1.0,
                         at_most=600.0)
    seed: int = doc(7, "the corpus is the same on every machine", at_least=0, at_most=MAX_SEED)
    epochs: int = doc(60, "120 steps of 24 tracks: the six styles separate (5-NN 1.000); training is 16 s of the "
                          "demo's 100 s (README: Benchmarks)", at_least=1, at_most=MAX_EPOCHS)
    batch_size: int = doc(24, "half the library per step: 46 negatives per positive pair", at_least=2,
                         at_most=4096)
    teacher_patches: int = doc(4, "3 s patches per track musicnn embeds for distillation: half the default, the "
                                  "tracks are short and uniform", at_least=1, at_most=256)
    widths: tuple[int, ...] = doc((8, 16, 32, 64), "half the default encoder's widths, a third of its time a step: "
                                                   "six synthetic styles need less than real music", at_least=1, at_most=1024)
    threads: int = doc(1, "one torch thread: on a busy 2-core machine two threads wait for each other (a step "
                          "took 2.5 s with two, 2.0 s with one, at load 6)", at_least=0, at_most=MAX_THREADS)

    def __post_init__(self):
        check_bounds(self)


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def _env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def _place(out: np.ndarray, sound: np.ndarray, start: int, gain: float = 1.0) -> None:
    end = min(len(out), start + len(sound))
    if start < end:
        out[start:end] += gain * sound[:end - start]


def _kick(rng, length=0.35, f0=None) -> np.ndarray:
    n = int(length * SR)
    t = np.arange(n) / SR
    f = (f0 or rng.uniform(45, 60)) + 90 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * 9)


def _noise_hit(rng, length: float, decay: float, highpass: bool) -> np.ndarray:
    n = int(length * SR)
    x = rng.standard_normal(n)
    if highpass:
        x = np.diff(x, prepend=0.0)
    return x * _env(n, 0.001, decay)


def _snare(rng) -> np.ndarray:
    n = int(0.25 * SR)
    t = np.arange(n) / SR
    return 0.6 * _noise_hit(rng, 0.25, 0.06, True) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25)


def _osc(freq: float, n: int, kind: str, rng, detune: float = 0.0) -> np.ndarray:
    t = np.arange(n) / SR
    phase = (freq * (1 + detune) * t + rng.uniform()) % 1.0
    if kind == "saw":
        return 2 * phase - 1
    if kind == "square":
        return np.sign(phase - 0.5)
    return np.sin(2 * np.pi * phase)


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, min(cutoff, SR / 2 - 100), fs=SR, output="sos"), x)


def _pluck(freq: float, seconds: float, rng, brightness: float = 0.5) -> np.ndarray:
    """Karplus-Strong plucked string: y[n] = d * (y[n-P] + y[n-P-1]) / 2, one period P at a time."""
    period = max(2, int(SR / freq))
    n = int(seconds * SR)
    out = np.zeros(n + 2 * period + 1)
    burst = rng.uniform(-1, 1, period + 1)
    out[:period + 1] = brightness * burst + (1 - brightness) * np.convolve(burst, [0.5, 0.5], "same")
    for s in range(period + 1, n, period):
        out[s:s + period] = 0.996 * 0.5 * (out[s - period:s] + out[s - period - 1:s - 1])
    return out[:n]


def _piano_note(freq: float, seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    tone = sum((0.6 ** h) * np.sin(2 * np.pi * freq * (h + 1) * np.sqrt(1 + 0.0004 * (h + 1) ** 2) * t)
               * np.exp(-t * (1.5 + 0.8 * h)) for h in range(8))
    return tone * np.minimum(1.0, t / 0.003)


def _chord(root: int, minor: bool) -> list[int]:
    return [root, root + (3 if minor else 4), root + 7]


def _progression(rng, key: int, minor: bool, bars: int) -> list[tuple[int, bool]]:
    steps = [(0, minor), (5, minor), (7, False), (3 if minor else 9, not minor)]
    order = rng.permutation(4)
    return [(key + steps[order[b % 4]][0], steps[order[b % 4]][1]) for b in range(bars)]


def electronic(rng, n: int) -> np.ndarray:
    bpm = rng.uniform(118, 135)
    beat = int(60 / bpm * SR)
    out = np.zeros(n)
    key = int(rng.integers(33, 45))
    wave = rng.choice(["saw", "square"])
    for i, start in enumerate(range(0, n, beat)):
        _place(out, _kick(rng), start, 0.9)
        _place(out, _noise_hit(rng, 0.05, 0.015, True), start + beat // 2, 0.25)
        bass = _osc(_midi_hz(key + [0, 0, 7, 5][i % 4]), beat // 2, wave, rng)
        _place(out, _lowpass(bass, rng.uniform(500, 1500)) * _env(beat // 2, 0.005, 0.15), start + beat // 2, 0.35)
    arp_step = beat // 4
    lead = [key + 24 + s for s in rng.choice([0, 3, 7, 10, 12], size=8)]
    for j, start in enumerate(range(0, n, arp_step)):
        tone = _osc(_midi_hz(lead[j % 8]), arp_step, wave, rng) * _env(arp_step, 0.002, 0.06)
        _place(out, _lowpass(tone, 3000), start, 0.12)
    return out


def strings(rng, n: int) -> np.ndarray:
    out = np.zeros(n)
    key, minor = int(rng.integers(48, 60)), bool(rng.integers(2))
    bar = int(rng.uniform(2.5, 4.0) * SR)
    for b, (root, m) in enumerate(_progression(rng, key, minor, n // bar + 1)):
        length = bar + SR // 2
        t = np.arange(length) / SR
        swell = np.minimum(1, t / rng.uniform(0.4, 0.9)) * np.minimum(1, (length / SR - t) / 0.5)
        vibrato = 1 + 0.003 * np.sin(2 * np.pi * 5.5 * t)
        voices = sum(_lowpass(2 * ((_midi_hz(note + o) * (1 + d) * np.cumsum(vibrato) / SR) % 1.0) - 1, 2500)
                     for note in _chord(root, m) for o in (-12, 0) for d in (-0.004, 0.004))
        _place(out, voices * swell, b * bar, 0.08)
    return out


def guitar(rng, n: int) -> np.ndarray:
    out = np.zeros(n)
    key, minor = int(rng.integers(40, 52)), bool(rng.integers(2))
    step = int(60 / rng.uniform(80, 120) / 2 * SR)
    pattern = rng.permutation([0, 1, 2, 1, 2, 0, 2, 1])
    prog = _progression(rng, key, minor, n // (8 * step) + 1)
    for j, start in enumerate(range(0, n, step)):
        root, m = prog[j // 8]
        note = _chord(root, m)[pattern[j % 8]] + 12 * (j % 8 >= 4)
        _place(out, _pluck(_midi_hz(note), 1.2, rng, rng.uniform(0.3, 0.8)), start, 0.5)
    return out


def piano(rng, n: int) -> np.ndarray:
    out = np.zeros(n)
    key, minor = int(rng.integers(55, 67)), bool(rng.integers(2))
    step = int(60 / rng.uniform(90, 160) / 2 * SR)
    prog = _progression(rng, key, minor, n // (8 * step) + 1)
    for j, start in enumerate(range(0, n, step)):
        root, m = prog[j // 8]
        chord = _chord(root, m) + [root + 12]
        _place(out, _piano_note(_midi_hz(chord[[0, 1, 2, 3, 2, 1, 3, 2][j % 8]]), 1.5), start, 0.3)
        if j % 8 == 0:
            _place(out, _piano_note(_midi_hz(root - 12), 3.0), start, 0.3)
    return out


def rock(rng, n: int) -> np.ndarray:
    bpm = rng.uniform(100, 150)
    beat = int(60 / bpm * SR)
    out = np.zeros(n)
    key = int(rng.integers(38, 47))
    drive = rng.uniform(4, 10)
    for i, start in enumerate(range(0, n, beat)):
        _place(out, _kick(rng), start, 0.6) if i % 2 == 0 else _place(out, _snare(rng), start, 0.6)
        _place(out, _noise_hit(rng, 0.12, 0.05, True), start, 0.15)
        root = key + [0, 0, 5, 3, 7, 5, 3, 0][(i // 2) % 8]
        length = beat
        chord = sum(_osc(_midi_hz(note), length, "saw", rng, d) for note in (root, root + 7, root + 12)
                    for d in (-0.003, 0.003))
        chord = np.tanh(drive * _lowpass(chord, 3500)) * _env(length, 0.005, 0.8)
        _place(out, chord, start, 0.25)
    return out


def hiphop(rng, n: int) -> np.ndarray:
    bpm = rng.uniform(82, 96)
    beat = int(60 / bpm * SR)
    swing = rng.uniform(0.6, 0.68)
    out = np.zeros(n)
    key = int(rng.integers(28, 36))
    for i, start in enumerate(range(0, n, beat)):
        if i % 4 in (0, 2) or rng.uniform() < 0.2:
            _place(out, _kick(rng, 0.6, rng.uniform(40, 50)), start, 1.0)
        if i % 4 in (1, 3):
            _place(out, _snare(rng), start, 0.5)
        for off in (0, int(swing * beat)):
            _place(out, _noise_hit(rng, 0.04, 0.01, True), start + off, 0.18)
        sub = _osc(_midi_hz(key + [0, 3, 5, 3][(i // 4) % 4]), beat, "sine", rng) * _env(beat, 0.01, 0.4)
        _place(out, sub, start, 0.5)
    chord_len = 4 * beat
    for b, start in enumerate(range(0, n, chord_len)):
        root = key + 36 + [0, 3, 5, 3][b % 4]
        keys = sum(_osc(_midi_hz(note), chord_len, "sine", rng) for note in (root, root + 3, root + 10))
        _place(out, keys * _env(chord_len, 0.02, 1.5), start, 0.06)
    return out


GENERATORS: dict[str, Callable] = {"electronic": electronic, "strings": strings, "guitar": guitar,
                                   "piano": piano, "rock": rock, "hiphop": hiphop}


def synthesise_track(style: str, *, seconds: float = 20.0, seed: int = 0) -> np.ndarray:
    """One demo track of ``style``, np.ndarray [shape=(seconds * SR,), dtype=float32], peak 0.9."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    y = GENERATORS[style](rng, n)[:n]
    y = y + 10 ** (-rng.uniform(50, 70) / 20) * rng.standard_normal(n)  # a faint noise floor, like a recording
    return (0.9 * y / max(np.abs(y).max(), 1e-9)).astype(np.float32)


def write_corpus(folder: Path, *, cfg: DemoConfig | None = None, progress: Optional[Progress] = None) -> Path:
    """Write ``tracks_per_style`` WAV files per style under ``folder/<style>/`` (existing files are kept).

    ``progress(done, total, file_name)`` after each file.
    """
    import soundfile as sf

    cfg, progress = cfg or DemoConfig(), or_silent(progress)
    total = len(STYLES) * cfg.tracks_per_style
    done = 0
    for s, style in enumerate(STYLES):
        (folder / style).mkdir(parents=True, exist_ok=True)
        for i in range(cfg.tracks_per_style):
            path = folder / style / f"{style}_{i:02d}.wav"
            if not path.exists():
                y = synthesise_track(style, seconds=cfg.seconds, seed=cfg.seed * 1000 + s * 100 + i)
                tmp = path.with_suffix(".tmp.wav")
                sf.write(tmp, y, SR, subtype="PCM_16")
                tmp.replace(path)
            done += 1
            progress(done, total, path.name)
    return folder


def demo_audio_dir() -> Path:
    return artifacts_dir() / "demo" / "audio"


DEMO_DATASET = "demo"


STAGES = ("synthesising", "ingesting", "training", "working")


def _in_stage(stage: str, progress: Progress) -> Progress:
    """``progress`` with every message prefixed by the stage ("training: epoch 3")."""
    def tell(done: int, total: int, message: str = "", **values: float) -> None:
        progress(done, total, f"{stage}: {message}" if message else stage, **values)

    return tell


def _epochs_or_working(progress: Progress) -> Progress:
    """``progress`` of training: its epochs in the "training" stage, the rest (the musicnn teacher's pass,
    passages, the evaluation's recordings) in "working", so the teacher is never labelled training."""
    training, working = _in_stage("training", progress), _in_stage("working", progress)

    def tell(done: int, total: int, message: str = "", **values: float) -> None:
        (training if message.startswith("epoch") else working)(done, total, message, **values)

    return tell


def build_demo(*, cfg: DemoConfig | None = None, progress: Optional[Progress] = None) -> str:
    """Synthesise, ingest and train the demo; returns the run id.

    ``progress(done, total, "<stage>: <what>", **values)`` counts the steps of each stage in turn
    (:data:`STAGES`: "synthesising: rock_03.wav", "ingesting: piano/piano_01.wav", "training: epoch 7" with
    ``loss``, and "working: evaluating" (1 of 1) for each step around the training: the teacher's pass,
    passages, evaluation, maps); ``done`` starts again from 1 when a stage begins.
    """
    from core.data.ingest import ingest
    from core.runs.build import train_run
    from core.training.config import TrainConfig

    cfg, progress = cfg or DemoConfig(), or_silent(progress)
    working = _in_stage("working", progress)  # the teacher's pass, passages, evaluation, maps: one step each
    folder = write_corpus(demo_audio_dir(), cfg=cfg, progress=_in_stage("synthesising", progress))
    working(1, 1, "preparing the audio analysis (its compiled code is built once per machine)")  # else silent
    ingest(folder, DEMO_DATASET, progress=_in_stage("ingesting", progress))
    train_cfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, teacher_patches=cfg.teacher_patches,
                            widths=cfg.widths, threads=cfg.threads, seed=cfg.seed)
    return train_run(DEMO_DATASET, cfg=train_cfg, progress=_epochs_or_working(progress),
                     stage=lambda message: working(1, 1, message))
