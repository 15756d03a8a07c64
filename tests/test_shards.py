"""Sharded log-mel storage: atomic shards, leftovers of a kill, compaction, the old layout and its migration."""
import json

import numpy as np
import pandas as pd
import pytest

from core.base.errors import DatasetError
from core.data.dataset import dataset_dir, load_dataset
from core.data.ingest import IngestConfig, ingest, migrate_dataset
from core.data.shards import MelStore, ShardWriter, shard_numbers, shard_path
from tests.audio_files import sine, write_audio


def _library(root, n=5):
    root.mkdir(parents=True)
    for i in range(n):
        write_audio(root / f"t{i}.wav", sine(200.0 * (i + 1), 3.5 + 0.25 * i), 22050)
    return root


def _mels(ds) -> dict:
    return {tid: np.array(ds.mel(tid)) for tid in ds.tracks["track_id"]}


def test_writer_commits_lines_only_with_their_shard_and_views_read_back(tmp_path, rng):
    mels = [rng.normal(size=(8, t)).astype(np.float16) for t in (5, 9, 3)]
    writer = ShardWriter(tmp_path, first=7, max_tracks=2)
    assert writer.add({"track_id": "a", "n_frames": 5}, mels[0]) == []  # not on disk yet: nothing to commit
    assert writer.add({"track_id": "skip", "error": "too short"}, None) == [{"track_id": "skip", "error": "too short"}]
    first = writer.add({"track_id": "b", "n_frames": 9}, mels[1])
    assert [(x["track_id"], x["shard"], x["start"]) for x in first] == [("a", 7, 0), ("b", 7, 5)]
    assert shard_path(tmp_path, 7).exists() and np.load(shard_path(tmp_path, 7)).shape == (14, 8)
    last = writer.add({"track_id": "c", "n_frames": 3}, mels[2]) + writer.flush()
    assert [(x["track_id"], x["shard"], x["start"]) for x in last] == [("c", 8, 0)]
    from core.data.shards import write_refs

    write_refs(tmp_path, first + last)
    store = MelStore(tmp_path)
    for tid, mel in zip("abc", mels):
        assert np.array_equal(store.mel(tid), mel)
    with pytest.raises(DatasetError, match="no log-mel for track zz"):
        store.mel("zz")


def test_leftovers_of_a_kill_are_removed_and_never_read(tmp_path):
    root = _library(tmp_path / "lib")
    ingest(root, "ds_left", config=IngestConfig(workers=1, shard_tracks=2))
    before = _mels(load_dataset("ds_left"))
    mel_dir = dataset_dir("ds_left") / "mels"
    # a kill after the rename but before the index line, and one during a write
    orphan = shard_path(mel_dir, max(shard_numbers(mel_dir)) + 1)
    np.save(orphan, np.zeros((4, 128), np.float16))
    (mel_dir / ".shard-000099.npy.abc.tmp").write_bytes(b"half")
    again = ingest(root, "ds_left", config=IngestConfig(workers=1, shard_tracks=2))
    assert again.n_analysed == 0 and not orphan.exists() and not list(mel_dir.glob(".*.tmp"))
    after = _mels(load_dataset("ds_left"))
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)


def test_reingest_replaces_changed_tracks_and_compaction_drops_stale_ones(tmp_path):
    root = _library(tmp_path / "lib", n=6)
    cfg = IngestConfig(workers=1, shard_tracks=2, features=False)
    first = ingest(root, "ds_compact", config=cfg)
    mel_dir = first.dataset_dir / "mels"
    assert len(shard_numbers(mel_dir)) == 3  # 2 tracks each (full by count: nothing to merge)
    for i in range(4):  # 4 of 6 changed: their shards are mostly dead
        write_audio(root / f"t{i}.wav", sine(3000.0 - 100 * i, 4.0), 22050)
    (root / "t5.wav").unlink()
    second = ingest(root, "ds_compact", config=cfg)
    assert second.n_analysed == 4 and second.n_tracks == 5
    ds = load_dataset("ds_compact")
    refs = pd.read_parquet(mel_dir / "refs.parquet")
    assert set(refs["track_id"]) == set(ds.tracks["track_id"])  # the removed track is gone from the refs
    frames = {n: np.load(shard_path(mel_dir, n), mmap_mode="r").shape[0] for n in shard_numbers(mel_dir)}
    assert sum(frames.values()) == refs["n_frames"].sum()  # no dead frames left on disk
    assert set(frames) == set(refs["shard"])
    lines = [json.loads(x) for x in (first.dataset_dir / "index.jsonl").read_text().splitlines()]
    assert {x["track_id"] for x in lines} == set(ds.tracks["track_id"])  # the commit log was compacted too
    changed = ds.tracks.set_index("relpath").loc["t0.wav", "track_id"]
    assert np.asarray(ds.mel(changed), np.float32).std() > 0 and ds.mel(changed).shape[1] == \
        ds.tracks.set_index("track_id").loc[changed, "n_frames"]


def _to_old_layout(out):
    """Rewrite a dataset as the layout before shards: mels/<id>.npy, index lines without shard references."""
    ds = load_dataset(out.name)
    mels = _mels(ds)
    for n in shard_numbers(out / "mels"):
        shard_path(out / "mels", n).unlink()
    (out / "mels" / "refs.parquet").unlink()
    for tid, mel in mels.items():
        np.save(out / "mels" / f"{tid}.npy", mel)
    lines = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    (out / "index.jsonl").write_text("".join(json.dumps({k: v for k, v in x.items() if k not in ("shard", "start")})
                                             + "\n" for x in lines))
    return mels


def test_old_layout_opens_and_migrates(tmp_path):
    root = _library(tmp_path / "lib")
    report = ingest(root, "ds_old", config=IngestConfig(workers=1))
    mels = _to_old_layout(report.dataset_dir)
    old = load_dataset("ds_old")
    assert all(np.array_equal(old.mel(t), m) for t, m in mels.items())  # still opens as it is
    assert migrate_dataset("ds_old") == len(mels)
    mel_dir = report.dataset_dir / "mels"
    assert not list(mel_dir.glob("[0-9a-f]*.npy")) and shard_numbers(mel_dir) == [0]
    new = load_dataset("ds_old")
    assert all(np.array_equal(new.mel(t), m) for t, m in mels.items())
    assert migrate_dataset("ds_old") == 0  # nothing left to move
    again = ingest(root, "ds_old", config=IngestConfig(workers=1))
    assert again.n_analysed == 0  # migrated tracks count as analysed


def test_ingest_of_an_old_layout_dataset_migrates_it_without_reanalysing(tmp_path):
    root = _library(tmp_path / "lib", n=3)
    report = ingest(root, "ds_old2", config=IngestConfig(workers=1))
    mels = _to_old_layout(report.dataset_dir)
    again = ingest(root, "ds_old2", config=IngestConfig(workers=1))
    assert again.n_analysed == 0 and again.n_cached == 3
    new = load_dataset("ds_old2")
    assert all(np.array_equal(new.mel(t), m) for t, m in mels.items())


def test_migrate_command(tmp_path, capsys):
    from core.cli import main

    root = _library(tmp_path / "lib", n=2)
    report = ingest(root, "ds_old3", config=IngestConfig(workers=1, features=False))
    _to_old_layout(report.dataset_dir)
    assert main(["migrate-dataset", "ds_old3"]) == 0
    assert "2 track(s) moved into shards" in capsys.readouterr().out
    assert main(["migrate-dataset", "nope"]) == 2
