"""musicnn tags: built from the reference cache, aligned with a run's tracks, read in words, and refused clearly."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.analysis import tags as T
from core.base.errors import TagError
from core.base.paths import datasets_dir


def fake_dataset(name: str, taggrams: dict[str, np.ndarray | None], *, kind: str = "audio",
                 max_patches: int = 16) -> None:
    """A dataset folder with a musicnn patch cache as core.model.reference writes it (taggram per patch; None = unreadable)."""
    folder = datasets_dir() / name
    (folder / "reference").mkdir(parents=True, exist_ok=True)
    if not (folder / "dataset.json").exists():  # a real dataset keeps its own
        (folder / "dataset.json").write_text(json.dumps({"kind": kind}))
    ids = list(taggrams)
    arrays = {f"taggram_{i}": (g if g is not None else np.zeros((0, 1), np.float32)) for i, g in enumerate(taggrams.values())}
    np.savez(folder / "reference" / f"musicnn-{max_patches}.npz", track_id=np.asarray(ids),
             ok=np.asarray([g is not None for g in taggrams.values()]), **arrays)


def fake_run(dataset: str, track_ids: list[str]) -> SimpleNamespace:
    return SimpleNamespace(run_id="r1", config={"dataset": dataset}, tracks=pd.DataFrame({"track_id": track_ids}))


def patches_with(tag: str, level: float, rng, n: int = 3) -> np.ndarray:
    g = rng.uniform(0.0, 0.04, (n, len(T.TAGS))).astype(np.float32)
    g[:, T.TAGS.index(tag)] = level
    return g


def test_one_name_per_output_of_the_network_and_reading_tags_needs_no_torch():
    import subprocess
    import sys

    from core.model.musicnn import load_musicnn

    assert len(T.TAGS) == len(set(T.TAGS)) == load_musicnn().tags.out_features
    code = "import sys, core.analysis.tags; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_run_tags_are_patch_means_aligned_with_the_run(rng):
    grams = {"a": patches_with("rock", 0.9, rng), "b": patches_with("jazz", 0.7, rng), "c": None}
    fake_dataset("lib", grams)
    run = fake_run("lib", ["b", "x", "a", "c"])  # another order, a track the dataset lacks, an unreadable one
    tags = T.run_tags(run)
    assert tags.shape == (4, 50) and tags.columns.tolist() == list(T.TAGS)
    np.testing.assert_allclose(tags.iloc[2].to_numpy(), grams["a"].mean(axis=0), rtol=1e-6)
    assert tags.iloc[[1, 3]].isna().all(axis=None) and T.tags_reason(run) == ""
    assert (datasets_dir() / "lib" / "tags.parquet").exists()
    assert T.top_tags(tags, 0, n=1)[0][0] == "jazz" and T.top_tags(tags, 1) == []
    assert T.top_tag_text(tags).tolist()[1] == "" and T.top_tag_text(tags, n=1)[2].startswith("rock 0.90")
    assert T.top_tag_lists(tags, [2, 1], n=2)[0][0] == {"tag": "rock", "likelihood": pytest.approx(0.9)}
    assert T.tracks_by_tag(tags, "JAZZ").tolist()[0] == 0 and len(T.tracks_by_tag(tags, "rock", limit=50)) == 2


def test_a_newer_cache_rebuilds_the_table(rng):
    fake_dataset("lib2", {"a": patches_with("rock", 0.9, rng)})
    run = fake_run("lib2", ["a"])
    assert T.top_tags(T.run_tags(run), 0, n=1)[0][0] == "rock"
    time.sleep(0.01)
    fake_dataset("lib2", {"a": patches_with("sad", 0.8, rng)})
    cache = datasets_dir() / "lib2" / "reference" / "musicnn-16.npz"
    later = time.time() + 5
    os.utime(cache, (later, later))  # coarse file-system clocks: make the cache unmistakably newer
    assert T.top_tags(T.run_tags(run), 0, n=1)[0][0] == "sad"


def test_characteristic_tags_are_lift_against_the_library(rng):
    grams = {f"r{i}": patches_with("rock", 0.8, rng) for i in range(6)}
    grams.update({f"j{i}": patches_with("jazz", 0.6, rng) for i in range(6)})
    fake_dataset("lib3", grams)
    tags = T.run_tags(fake_run("lib3", list(grams)))
    jazz = np.arange(6, 12)
    (best, lift), *_ = T.characteristic_tags(tags, jazz, n=3)
    assert best == "jazz" and lift == pytest.approx(2.0, rel=0.05)  # half the library: about twice the mean
    assert T.top_tags(tags, jazz, n=1)[0] == ("jazz", pytest.approx(0.6))
    assert T.characteristic_tags(tags, np.arange(12)) == []  # the whole library: nothing stands out
    assert all(lift > 1 for _, lift in T.characteristic_tags(tags, jazz, n=50))
    with pytest.raises(TagError, match="no tracks selected"):
        T.characteristic_tags(tags, np.zeros(12, bool))


def test_unknown_tags_name_close_ones():
    assert T.resolve_tag(" hip-hop ") == "Hip-Hop"
    with pytest.raises(TagError, match=r"no musicnn tag named 'rok' \(closest: rock"):
        T.resolve_tag("rok")
    with pytest.raises(TagError, match="have none; nearest in meaning: instrumental, beautiful, ambient; closest: classic rock"):
        T.resolve_tag("Classical")
    assert all(t in T.TAGS for near in T.NEAREST_IN_MEANING.values() for t in near)


def test_runs_without_tags_say_why(rng):
    assert T.run_tags(fake_run("nowhere", ["a"])) is None
    assert "not in this workspace" in T.tags_reason(fake_run("nowhere", ["a"]))
    (datasets_dir() / "bare").mkdir(parents=True)
    (datasets_dir() / "bare" / "dataset.json").write_text(json.dumps({"kind": "audio"}))
    assert "python -m core tags --run r1" in T.tags_reason(fake_run("bare", ["a"]))
    (datasets_dir() / "table").mkdir(parents=True)
    (datasets_dir() / "table" / "dataset.json").write_text(json.dumps({"kind": "imported"}))
    assert "imported feature table" in T.tags_reason(fake_run("table", ["a"]))
    fake_dataset("other", {"z": patches_with("rock", 0.9, rng)})
    assert T.run_tags(fake_run("other", ["a"])) is None  # no track of the run in the table


def test_missing_weights_are_named(monkeypatch, tmp_path):
    import core.model.musicnn

    assert T.WEIGHTS == core.model.musicnn.WEIGHTS
    monkeypatch.setattr(T, "WEIGHTS", tmp_path / "msd_musicnn.pt")
    (datasets_dir() / "bare2").mkdir(parents=True)
    (datasets_dir() / "bare2" / "dataset.json").write_text(json.dumps({"kind": "audio"}))
    assert "weights (msd_musicnn.pt) are missing" in T.tags_reason(fake_run("bare2", ["a"]))


def test_cli_tags_runs_musicnn_on_a_run_s_dataset(tiny_run_id, capsys):
    from core.cli import main
    from core.runs.folder import load_run

    assert main(["tags", "--run", tiny_run_id, "--max-patches", "2"]) == 0
    assert "musicnn tags for 12 of 12 tracks" in capsys.readouterr().out
    have = T.cached_patches(load_run(tiny_run_id).path.parent.parent / "datasets" / "tiny")
    assert main(["tags", "--run", tiny_run_id]) == 0  # no --max-patches: the cache there is, no second pass
    captured = capsys.readouterr()
    assert f"musicnn tags from {have} patches per track, from the cache" in captured.out
    assert "musicnn:" not in captured.err  # no file went through musicnn again
    assert "piano: not checked" in captured.out and "strings: not checked" in captured.out  # said, not left out
    tags = T.run_tags(load_run(tiny_run_id))
    assert tags.shape == (12, 50) and ((tags > 0) & (tags < 1)).all(axis=None)  # sigmoid likelihoods
    assert main(["tags", "--dataset", "nope"]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err


def test_label_tag_agreement_counts_matching_tags_in_the_top_3():
    tags = pd.DataFrame(0.01, index=range(4), columns=list(T.TAGS))
    tags.loc[0, ["rock", "guitar", "indie"]] = [0.9, 0.8, 0.7]  # a rock track tagged rock
    tags.loc[1, ["pop", "female vocalists", "dance", "rock"]] = [0.9, 0.8, 0.7, 0.6]  # rock only 4th
    tags.loc[2, "instrumental"] = 0.5
    tags.loc[3] = np.nan  # no tags: left out
    table = T.label_tag_agreement(tags, ["rock", "rock", "classical", "classical"]).set_index("label")
    assert table.loc["rock", ["tracks", "matched"]].tolist() == [2, 1] and table.loc["rock", "rate"] == 0.5
    assert table.loc["classical", ["tracks", "matched"]].tolist() == [1, 1] and "pop" not in table.index
    named = T.label_tag_agreement(tags, ["hiphop", "guitar", "piano", "piano"]).set_index("label")
    assert named.loc["hiphop", "matching_tags"] == "Hip-Hop" and named.loc["guitar", "matching_tags"] == "guitar"
    assert named.loc["guitar", ["tracks", "matched"]].tolist() == [1, 0]  # its top 3: pop, female vocalists, dance
    assert pd.isna(named.loc["piano", "rate"]) and "no such tag" in named.loc["piano", "matching_tags"]
