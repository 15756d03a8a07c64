"""Ingest and embed-dataset on a local Ray (2 CPUs, started once for this module) match the local pool."""
import numpy as np
import pandas as pd
import pytest

from tests.audio_files import sine, write_audio
from tests.crash_hooks import crash_on

pytest.importorskip("ray")
CRASH_NAME = "crash_me.wav"  # a Ray worker given this file kills itself (tests.crash_hooks, set before Ray starts)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from core.data.engines import ray_session

    with pytest.MonkeyPatch.context() as patch:
        crash_on(patch, CRASH_NAME)
        with ray_session(num_cpus=2) as ray:
            yield ray


def _library(root, names):
    """Tones at 22.05 kHz; an .mp3 is 44.1 kHz stereo (resampled: where thread counts once changed the last bit)."""
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sr = 44100 if name.endswith(".mp3") else 22050
        y = sine(180.0 * (i + 1), 3.5 + 0.5 * i, sr=sr) + 0.05 * sine(2000.0 + 300 * i, 3.5 + 0.5 * i, sr=sr)
        write_audio(root / name, np.stack([y, 0.7 * y], axis=1) if sr == 44100 else y, sr)
    return root


def _contents(name):
    from core.data.dataset import load_dataset

    ds = load_dataset(name)
    tracks = ds.tracks.drop(columns="path").sort_values("track_id").reset_index(drop=True)
    return tracks, {t: np.array(ds.mel(t)) for t in tracks["track_id"]}, ds.features().sort_values("track_id")


def test_ray_ingest_equals_the_pool_ingest(tmp_path):
    from core.cli import main
    from core.data.ingest import IngestConfig, ingest

    root = _library(tmp_path / "lib", ["rock/a.wav", "rock/b.mp3", "jazz/c.mp3", "jazz/d.flac", "e.wav"])
    ingest(root, "by_pool", config=IngestConfig(workers=2))
    assert main(["ingest", str(root), "--name", "by_ray", "--engine", "ray", "--workers", "2"]) == 0
    pool_tracks, pool_mels, pool_feats = _contents("by_pool")
    ray_tracks, ray_mels, ray_feats = _contents("by_ray")
    assert len(pool_tracks) == 5
    pd.testing.assert_frame_equal(pool_tracks, ray_tracks)
    assert all(np.array_equal(pool_mels[t], ray_mels[t]) for t in pool_mels)
    pd.testing.assert_frame_equal(pool_feats.reset_index(drop=True), ray_feats.reset_index(drop=True), check_exact=True)


def test_a_ray_worker_crash_is_a_skipped_file(tmp_path):
    from core.data.ingest import IngestConfig, ingest

    root = _library(tmp_path / "lib", ["a.wav", CRASH_NAME, "c.wav"])
    report = ingest(root, "ray_crash", config=IngestConfig(workers=2, engine="ray", features=False))
    assert report.n_tracks == 2
    assert [(s["path"].rsplit("/", 1)[-1], s["reason"]) for s in report.skipped] == [
        (CRASH_NAME, "worker crashed (Ray worker process died)")]


def test_unknown_engine_is_refused(tmp_path):
    from core.base.errors import DatasetError
    from core.data.ingest import IngestConfig, ingest

    root = _library(tmp_path / "lib", ["a.wav"])
    with pytest.raises(DatasetError, match="engine 'spark'"):
        ingest(root, "x", config=IngestConfig(engine="spark"))


def test_embed_dataset_on_ray_and_locally_equals_the_runs_embeddings(tiny_run_id, capsys):
    from core.cli import main
    from core.runs.dataset_embeddings import embed_dataset, load_dataset_embeddings
    from core.runs.folder import load_run

    run = load_run(tiny_run_id)
    assert main(["embed-dataset", "--run", tiny_run_id, "--dataset", "tiny"]) == 0
    assert f"embeddings/{tiny_run_id}: {len(run.tracks)} x " in capsys.readouterr().out
    tracks, x_local = load_dataset_embeddings(tiny_run_id, "tiny")
    assert x_local.shape == (len(run.tracks), run.embeddings.shape[1])
    expected = run.embeddings[pd.Index(run.tracks["track_id"]).get_indexer(tracks["track_id"])]
    np.testing.assert_allclose(x_local, expected, atol=1e-5)
    embed_dataset(tiny_run_id, "tiny", engine="ray", group_tracks=7)
    np.testing.assert_allclose(load_dataset_embeddings(tiny_run_id, "tiny")[1], x_local, atol=1e-6)
