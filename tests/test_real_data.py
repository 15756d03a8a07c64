"""Opt-in checks on real music (../shared/data/emotify-dev): TIMBRE_REAL_DATA=1 pytest -m real_data."""
import os

import pytest

from core.base.paths import REPO_ROOT

EMOTIFY = REPO_ROOT.parent / "shared" / "data" / "emotify-dev"
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not EMOTIFY.is_dir(), reason=f"real data absent: {EMOTIFY} not found"),
    pytest.mark.skipif(os.environ.get("TIMBRE_REAL_DATA") != "1",
                       reason="real-data tests are opt-in: set TIMBRE_REAL_DATA=1"),
]


def test_real_ingest_of_emotify_reads_every_clip_with_labels():
    from core.data.dataset import load_dataset
    from core.data.ingest import ingest

    report = ingest(EMOTIFY, "emotify_real_test")
    ds = load_dataset("emotify_real_test")
    assert not report.skipped, report.skipped[:3]
    assert report.n_tracks == 200
    assert sorted(ds.tracks["label"].unique()) == ["classical", "electronic", "pop", "rock"]
    import pandas as pd

    manifest = pd.read_csv(EMOTIFY / "manifest.csv").set_index("path")["duration_s"]
    decoded = ds.tracks.set_index("relpath")["duration_s"]
    assert (decoded - manifest.loc[decoded.index]).abs().max() < 0.5  # 26-60 s clips, decoded whole
    feats = ds.features()
    assert len(feats) == 200 and feats.drop(columns="track_id").notna().all().all()


def test_real_mp3_recommends_itself(tmp_path):
    from core.data.ingest import IngestConfig, ingest
    from core.runs.build import train_run
    from core.runs.folder import load_run
    from core.service.query import recommend_file
    from core.training.config import TrainConfig

    subset = tmp_path / "subset"
    for genre in ("classical", "rock"):
        (subset / genre).mkdir(parents=True)
        for mp3 in sorted((EMOTIFY / genre).glob("*.mp3"))[:5]:
            (subset / genre / mp3.name).symlink_to(mp3)
    ingest(subset, "emotify_subset", config=IngestConfig())
    run = load_run(train_run("emotify_subset", cfg=TrainConfig(epochs=2, batch_size=10, widths=(8, 16, 32, 64))))
    probe = run.tracks["path"][3]
    assert recommend_file(run, probe, k=3).neighbours["path"][0] == probe
