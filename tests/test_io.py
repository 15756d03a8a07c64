"""Atomic writes: a reader sees the old file or the new one, never half of one; folders appear complete or not at all."""
import json

import numpy as np
import pandas as pd
import pytest

from core.base.io import atomic_folder, atomic_write_json, atomic_write_npy, atomic_write_parquet, write_folder


def test_atomic_writers_round_trip_and_leave_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5), "n": np.int64(3), "t": (1, 2)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "n": 3, "t": [1, 2]}
    atomic_write_npy(tmp_path / "a.npy", np.arange(6, dtype=np.float16).reshape(2, 3))
    assert np.load(tmp_path / "a.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    atomic_write_parquet(tmp_path / "a.parquet", pd.DataFrame({"k": ["a", "b"]}))
    assert list(pd.read_parquet(tmp_path / "a.parquet")["k"]) == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.npy", "a.parquet"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"v": object()})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_folder_appears_only_when_complete(tmp_path):
    final = tmp_path / "result"
    with pytest.raises(RuntimeError):
        with atomic_folder(final) as work:
            (work / "half.txt").write_text("x")
            raise RuntimeError("crash mid-write")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    write_folder(final, lambda work: (work / "done.txt").write_text("ok"))
    assert (final / "done.txt").read_text() == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["result"]
