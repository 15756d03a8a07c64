import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.base.constants import SAMPLE_RATE
from core.demo import STYLES, DemoConfig, _in_stage, synthesise_track, write_corpus
from core.runs.folder import load_run


def test_configs_are_frozen_and_defaults_are_not_shared_instances():
    import inspect

    from core import demo
    from core.data.ingest import IngestConfig, ingest
    from core.runs.build import train_run
    from core.training.config import TrainConfig

    for cls in (IngestConfig, TrainConfig, demo.DemoConfig):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cls(), dataclasses.fields(cls)[0].name, None)
    for fn in (ingest, train_run, demo.build_demo, demo.write_corpus):
        for p in inspect.signature(fn).parameters.values():
            assert not dataclasses.is_dataclass(p.default), f"{fn.__name__}({p.name}=...) shares one instance"


def test_write_corpus_reports_progress_and_writes_the_project_rate(tmp_path):
    seen = []
    write_corpus(tmp_path, cfg=DemoConfig(tracks_per_style=1, seconds=1.0),
                 progress=_in_stage("synthesising", lambda d, t, m="", **v: seen.append((d, t, m))))
    assert seen[0] == (1, 6, "synthesising: electronic_00.wav") and seen[-1] == (6, 6, "synthesising: hiphop_00.wav")
    info = sf.info(tmp_path / "piano" / "piano_00.wav")
    assert info.samplerate == SAMPLE_RATE and info.frames == SAMPLE_RATE


def test_the_teacher_pass_and_evaluation_are_working_steps_and_only_epochs_are_training():
    from core.demo import _epochs_or_working

    seen = []
    tell = _epochs_or_working(lambda d, t, m="", **v: seen.append(m))
    tell(3, 48, "musicnn: rock_03.wav")
    tell(1, 60, "epoch 1", loss=2.0)
    tell(10, 48, "recordings")
    assert seen == ["working: musicnn: rock_03.wav", "training: epoch 1", "working: recordings"]


def test_stage_prefix_keeps_values():
    seen = []
    _in_stage("training", lambda d, t, m="", **v: seen.append((d, t, m, v)))(3, 40, "epoch 3", loss=0.5)
    _in_stage("training", lambda d, t, m="", **v: seen.append((d, t, m, v)))(1, 2)
    assert seen == [(3, 40, "training: epoch 3", {"loss": 0.5}), (1, 2, "training", {})]


def test_tracks_are_seeded_and_normalised():
    a, b = synthesise_track("rock", seconds=1.0, seed=3), synthesise_track("rock", seconds=1.0, seed=3)
    assert np.array_equal(a, b) and a.shape == (SAMPLE_RATE,) and np.abs(a).max() == pytest.approx(0.9, abs=1e-3)


def test_the_demo_command_builds_a_complete_run_from_nothing(tmp_path):
    """``python -m core demo`` as a user runs it (smaller): synthesis, ingest, teacher, training, passages,
    evaluation and maps end in one complete run folder of the six styles."""
    env = {**os.environ, "TIMBRE_ARTIFACTS": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "core", "demo", "--tracks-per-style", "3", "--seconds", "6",
                           "--epochs", "2"], cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert f"demo run: {run.name}" in done.stdout and "query by recording" in done.stdout
    assert "preparing the audio analysis" in done.stderr  # the ingest's start-up is a step of its own, not silence
    for name in ("config.json", "metrics.json", "model.pt", "embeddings.npy", "passages.npy", "projections.parquet"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["knn_eval"]["n_tracks"] == 18 and metrics["recording_eval"]["n_queries"] == 18
    assert len(metrics["loss"]) == 2
    tracks = load_run(run).tracks
    assert sorted(tracks["label"].value_counts().items()) == sorted((style, 3) for style in STYLES)
