import dataclasses

import numpy as np
import pytest
import soundfile as sf

from core.constants import SAMPLE_RATE
from core.demo import DemoConfig, _in_stage, synthesise_track, write_corpus


def test_configs_are_frozen_and_defaults_are_not_shared_instances():
    import inspect

    from core import dataset, demo, train

    for cls in (dataset.IngestConfig, train.TrainConfig, demo.DemoConfig):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cls(), dataclasses.fields(cls)[0].name, None)
    for fn in (dataset.ingest, train.train_run, demo.build_demo, demo.write_corpus):
        for p in inspect.signature(fn).parameters.values():
            assert not dataclasses.is_dataclass(p.default), f"{fn.__name__}({p.name}=...) shares one instance"


def test_write_corpus_reports_progress_and_writes_the_project_rate(tmp_path):
    seen = []
    write_corpus(tmp_path, cfg=DemoConfig(tracks_per_style=1, seconds=1.0),
                 progress=_in_stage("synthesising", lambda d, t, m="", **v: seen.append((d, t, m))))
    assert seen[0] == (1, 6, "synthesising: electronic_00.wav") and seen[-1] == (6, 6, "synthesising: hiphop_00.wav")
    info = sf.info(tmp_path / "piano" / "piano_00.wav")
    assert info.samplerate == SAMPLE_RATE and info.frames == SAMPLE_RATE


def test_stage_prefix_keeps_values():
    seen = []
    _in_stage("training", lambda d, t, m="", **v: seen.append((d, t, m, v)))(3, 40, "epoch 3", loss=0.5)
    _in_stage("training", lambda d, t, m="", **v: seen.append((d, t, m, v)))(1, 2)
    assert seen == [(3, 40, "training: epoch 3", {"loss": 0.5}), (1, 2, "training", {})]


def test_tracks_are_seeded_and_normalised():
    a, b = synthesise_track("rock", seconds=1.0, seed=3), synthesise_track("rock", seconds=1.0, seed=3)
    assert np.array_equal(a, b) and a.shape == (SAMPLE_RATE,) and np.abs(a).max() == pytest.approx(0.9, abs=1e-3)
