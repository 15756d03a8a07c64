import json

import numpy as np
import pandas as pd
import pytest

from core.base.errors import DatasetError
from core.data import library
from core.data.dataset import load_dataset
from core.data.ingest import IngestConfig, ingest
from core.data.library import track_id_for
from tests.audio_files import sine, write_audio


def _library(root, rng):
    for label, freq in (("low", 220.0), ("high", 1760.0)):
        (root / label).mkdir(parents=True)
        for i in range(2):
            y = sine(freq * (1 + 0.01 * i), 4.0) + 0.01 * rng.standard_normal(88200).astype(np.float32)
            write_audio(root / label / f"t{i}.flac", y, 22050)
    return root


def test_ingest_writes_mels_tracks_and_features_with_folder_labels(tmp_path, rng):
    root = _library(tmp_path / "lib", rng)
    report = ingest(root, "ds_labels", config=IngestConfig(workers=1))
    ds = load_dataset("ds_labels")
    assert report.n_tracks == 4 and report.n_analysed == 4 and not report.skipped
    assert sorted(ds.tracks["label"]) == ["high", "high", "low", "low"]
    mel = ds.mel(ds.tracks["track_id"][0])
    assert mel.shape[0] == ds.params.n_mels and mel.dtype == np.float16
    assert set(ds.features()["track_id"]) == set(ds.tracks["track_id"])
    assert ds.info["mel_params"]["n_mels"] == ds.params.n_mels


def test_rerun_only_processes_new_or_changed_files(tmp_path, rng):
    root = _library(tmp_path / "lib", rng)
    ingest(root, "ds_incr", config=IngestConfig(workers=1))
    again = ingest(root, "ds_incr", config=IngestConfig(workers=1))
    assert again.n_analysed == 0 and again.n_cached == 4
    write_audio(root / "low" / "new.wav", sine(330.0, 4.0), 22050)
    write_audio(root / "high" / "t0.flac", sine(1500.0, 5.0), 22050)  # changed content and size
    third = ingest(root, "ds_incr", config=IngestConfig(workers=1))
    assert third.n_analysed == 2 and third.n_tracks == 5
    ds = load_dataset("ds_incr")
    changed = ds.tracks.set_index("relpath").loc["high/t0.flac"]
    assert changed["duration_s"] == pytest.approx(5.0, abs=0.01)


def test_bad_files_are_skipped_listed_and_the_rest_kept(tmp_path, rng):
    root = _library(tmp_path / "lib", rng)
    (root / "low" / "broken.mp3").write_bytes(b"\x00" * 1000)
    write_audio(root / "high" / "short.wav", sine(440.0, 1.0), 22050)
    write_audio(root / "high" / "silence.wav", np.zeros(22050 * 5, np.float32), 22050)
    report = ingest(root, "ds_bad", config=IngestConfig(workers=2))
    reasons = {r["path"].split("/")[-1]: r["reason"] for r in report.skipped}
    assert set(reasons) == {"broken.mp3", "short.wav", "silence.wav"}
    assert "too short" in reasons["short.wav"] and "silent" in reasons["silence.wav"]
    assert report.n_tracks == 4
    assert (report.n_analysed, report.n_rejected) == (4, 3)  # a file that could not be used is not "analysed"
    saved = json.loads((report.dataset_dir / "skipped.json").read_text())
    assert len(saved) == 3
    from core.cli.data import analysed_now

    assert analysed_now(4, 3, 0) == "4 analysed now, 3 could not be used (skipped), 0 unchanged and reused"


def test_interrupted_ingest_keeps_finished_files(tmp_path, rng):
    root = _library(tmp_path / "lib", rng)
    done = []

    def stop_after_two(d, total, path, **values):  # the progress protocol: (done, total, message, **values)
        done.append(path)
        if d == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(root, "ds_interrupt", config=IngestConfig(workers=1), progress=stop_after_two)
    assert done[0].startswith("preparing the audio code")  # said before the first file: no silent start
    calls = []
    resumed = ingest(root, "ds_interrupt", config=IngestConfig(workers=1),
                     progress=lambda d, total, message="", **values: calls.append((d, total)))
    assert resumed.n_cached == 2 and resumed.n_analysed == 2 and resumed.n_tracks == 4
    assert calls == [(0, 2), (1, 2), (2, 2)]  # the two files left: told before they start, then each one


def test_manifest_labels_artist_title(tmp_path, rng):
    root = _library(tmp_path / "lib", rng)
    pd.DataFrame({"path": ["low/t0.flac", "high/t1.flac"], "label": ["jazz", "folk"],
                  "artist": ["A", "B"], "title": ["Song A", "Song B"]}).to_csv(tmp_path / "m.csv", index=False)
    ingest(root, "ds_manifest", manifest=tmp_path / "m.csv", config=IngestConfig(workers=1))
    t = load_dataset("ds_manifest").tracks.set_index("relpath")
    assert t.loc["low/t0.flac", "label"] == "jazz" and t.loc["high/t1.flac", "title"] == "Song B"
    assert pd.isna(t.loc["low/t1.flac", "label"])  # not in the manifest: unlabelled


def test_unlabelled_library_and_errors(tmp_path, rng):
    root = tmp_path / "flat"
    root.mkdir()
    write_audio(root / "a.wav", sine(300.0, 4.0), 22050)
    ingest(root, "ds_flat", config=IngestConfig(workers=1))
    assert load_dataset("ds_flat").tracks["label"].isna().all()
    with pytest.raises(DatasetError, match="no audio files"):
        ingest(tmp_path / "lib_empty" if (tmp_path / "lib_empty").mkdir() is None else None, "x")
    with pytest.raises(DatasetError, match="no dataset named"):
        load_dataset("does_not_exist")
    with pytest.raises(DatasetError, match="invalid dataset name"):
        ingest(root, "../escape")


def test_track_ids_are_stable():
    assert track_id_for("rock/1.mp3") == track_id_for("rock/1.mp3") != track_id_for("rock/2.mp3")


def test_symlink_loops_broken_links_and_pipes_are_skipped_with_reasons(tmp_path, rng):
    import os

    root = _library(tmp_path / "lib", rng)
    (root / "low" / "loop.wav").symlink_to(root / "low" / "loop.wav")
    (root / "low" / "dangling.mp3").symlink_to(tmp_path / "deleted.mp3")
    os.mkfifo(root / "high" / "pipe.flac")
    (root / "high" / "back_up").symlink_to(root, target_is_directory=True)  # a folder loop: never followed
    report = ingest(root, "ds_links", config=IngestConfig(workers=1))
    assert report.n_tracks == 4
    reasons = {os.path.basename(s["path"]): s["reason"] for s in report.skipped}
    assert reasons == {"loop.wav": "symlink loop (the link leads back to itself)",
                       "dangling.mp3": "broken symlink (what it points to does not exist)",
                       "pipe.flac": "not a regular file (a named pipe)",
                       "back_up": library.SYMLINKED_FOLDER}  # said, not skipped silently
    saved = json.loads((load_dataset("ds_links").path / "skipped.json").read_text())
    assert {os.path.basename(s["path"]) for s in saved} == set(reasons)


def test_manifest_rows_outside_the_library_are_left_out_with_a_reason(tmp_path, rng):
    root = _library(tmp_path / "lib", rng)
    write_audio(tmp_path / "elsewhere.wav", sine(300, 4.0), 22050)
    pd.DataFrame({"path": ["low/t0.flac", str(tmp_path / "elsewhere.wav"), "../elsewhere.wav"],
                  "label": ["metal", "x", "y"]}).to_csv(root / "manifest.csv", index=False)
    report = ingest(root, "ds_outside", config=IngestConfig(workers=1))
    tracks = load_dataset("ds_outside").tracks.set_index("relpath")
    assert report.n_tracks == 4 and tracks.loc["low/t0.flac", "label"] == "metal"
    outside = [s for s in report.skipped if "outside the library folder" in s["reason"]]
    assert [s["path"] for s in outside] == [str(tmp_path / "elsewhere.wav"), "../elsewhere.wav"]


def test_progress_says_how_many_analysed_files_wait_for_their_shard(tmp_path, rng):
    """What a kill -9 would cost beyond the files in flight: the analysed files not yet written in a shard."""
    root = _library(tmp_path / "lib", rng)
    seen = []
    ingest(root, "ds_unsaved", config=IngestConfig(workers=1, shard_tracks=3),
           progress=lambda done, total, message="", **values: seen.append(values.get("unsaved")))
    # none before the first file; the third file closed a shard of three; the fourth waits for the end
    assert seen == [0, 1, 2, 0, 1]
