"""Shared fixtures: a seeded rng, synthetic audio, and a tiny run built once per session.

Every test session gets its own artifacts folder (TIMBRE_ARTIFACTS), so tests never touch ``artifacts/``.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["TIMBRE_ARTIFACTS"] = tempfile.mkdtemp(prefix="timbre-test-artifacts-")
SHARED_DATA = ROOT.parent / "shared" / "data"

TINY_STYLES = ("electronic", "strings", "piano")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def sine(freq: float = 440.0, seconds: float = 4.0, sr: int = 22_050, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory) -> Path:
    """3 styles x 4 synthetic tracks of 8 s, as WAV files in <style>/ folders (labels from folder names)."""
    import soundfile as sf

    from core.demo import SR, synthesise_track

    root = tmp_path_factory.mktemp("tiny_library")
    for s, style in enumerate(TINY_STYLES):
        (root / style).mkdir()
        for i in range(4):
            sf.write(root / style / f"{style}_{i}.wav", synthesise_track(style, seconds=8.0, seed=100 * s + i), SR)
    return root


@pytest.fixture(scope="session")
def tiny_run_id(tiny_library) -> str:
    """A complete run trained for a few epochs on :func:`tiny_library` (dataset name 'tiny')."""
    from core.dataset import IngestConfig, ingest
    from core.train import TrainConfig, train_run

    ingest(tiny_library, "tiny", config=IngestConfig(workers=1))
    cfg = TrainConfig(epochs=3, batch_size=12, widths=(8, 16, 32, 64), embed_chunks=4, seed=0)
    return train_run("tiny", cfg=cfg)
