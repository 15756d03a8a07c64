"""ANN search (core.search.ann): recall against exact search, label filters, a run searched through its stored index."""
import numpy as np
import pandas as pd
import pytest

import core.search.ann as ann
from benchmarks.synthetic import synthetic_embeddings
from core.base.errors import RunError
from core.base.paths import runs_dir
from core.cli import main
from core.runs.folder import load_run
from core.search.exact import cosine_topk
from core.service.query import neighbours_of, recommend_embedding, similar_tracks
from tests.run_copies import copy_run


def test_recall_at_10_on_20k_clustered_vectors_is_at_least_095():
    x, _ = synthetic_embeddings(20_000, seed=3)
    index = ann.build_index(x, seed=0)
    rng = np.random.default_rng(7)
    # queries near library tracks but not on them, like a new recording of a known style
    queries = x[rng.choice(len(x), 300, replace=False)] + rng.normal(0, 0.03, (300, x.shape[1])).astype(np.float32)
    truth, true_sims = cosine_topk(x, queries, k=10)
    found, sims = index.search(queries, k=10)
    assert ann.recall_at(found, truth) >= 0.95
    assert index.meta["calibration"]["recall_at_10"] >= ann.TARGET_RECALL
    assert index.nprobe < index.index.nlist  # calibration did not just scan everything
    assert np.allclose(sims[:, 0], true_sims[:, 0], atol=1e-5)  # IVF-Flat scores are exact cosines
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_a_filter_through_the_index_returns_only_allowed_rows_and_k_of_them():
    x, _ = synthetic_embeddings(8_000, seed=5)
    index = ann.build_index(x, seed=0)
    rng = np.random.default_rng(2)
    rare = np.sort(rng.choice(len(x), 40, replace=False))  # 0.5 % of the library, scattered over every list
    queries = x[rng.choice(len(x), 20, replace=False)]
    found, sims = index.search(queries, k=10, rows=rare)
    assert found.shape == (20, 10) and np.isin(found, rare).all()
    truth, _ = cosine_topk(x[rare], queries, k=10)
    assert ann.recall_at(found, rare[truth]) >= 0.95  # a rare filter scans more lists: recall holds
    few, _ = index.search(queries[:2], k=10, rows=rare[:3])  # fewer allowed rows than k: all of them
    assert few.shape == (2, 3) and set(few[0]) == set(rare[:3])


def test_search_falls_back_to_exact_over_a_small_filter(rng):
    x = rng.normal(size=(500, 16)).astype(np.float32)
    rows = np.arange(0, 500, 7)
    idx, sims = ann.search(x, x[[14]], k=4, rows=rows)
    assert idx[0, 0] == 14 and np.isin(idx, rows).all()
    exact, _ = cosine_topk(x[rows], x[[14]], k=4)
    assert list(idx[0]) == list(rows[exact[0]])


@pytest.fixture(scope="module")
def big_run_id(tiny_run_id) -> str:
    """A copy of the tiny run whose library is 6,000 synthetic clustered tracks (labels jazz/rock/folk at
    random, 30/62/8 %): what the query functions read is all there, at a size worth indexing."""
    run_id = copy_run(tiny_run_id, "big-synthetic")
    folder = runs_dir() / run_id
    x, _ = synthetic_embeddings(6_000, seed=11)
    labels = np.random.default_rng(4).choice(["jazz", "rock", "folk"], size=len(x), p=[0.30, 0.62, 0.08])
    ids = [f"t{i:05d}" for i in range(len(x))]
    tracks = pd.DataFrame({"track_id": ids, "path": [f"/x/{i}.wav" for i in ids], "label": labels,
                           "duration_s": 30.0, "artist": "a", "title": [f"song {i}" for i in ids]})
    tracks.to_parquet(folder / "tracks.parquet", index=False)
    maps = np.random.default_rng(5).normal(size=(len(x), 6))  # positions only: queries are placed among them
    pd.DataFrame(maps, columns=[f"{m}_{a}" for m in ("pca", "tsne", "umap") for a in "xy"]).assign(
        track_id=tracks["track_id"]).to_parquet(folder / "projections.parquet", index=False)
    np.save(folder / "embeddings.npy", x)
    return run_id


def test_a_run_above_the_threshold_is_searched_through_its_index(big_run_id, monkeypatch, capsys):
    assert load_run(big_run_id).index is None
    assert main(["index", "--run", big_run_id]) == 0  # 6,000 <= 50,000: nothing to build
    assert "searched exactly" in capsys.readouterr().out
    monkeypatch.setattr(ann, "EXACT_MAX_TRACKS", 1_000)
    assert main(["index", "--run", big_run_id]) == 0
    assert "IVFFlat index of 6000 x 128" in capsys.readouterr().out
    run = load_run(big_run_id)
    assert run.index is not None and run.index.ntotal == 6_000
    calls, original = [], ann.AnnIndex.search
    monkeypatch.setattr(ann.AnnIndex, "search", lambda self, *a, **kw: calls.append(1) or original(self, *a, **kw))
    for row in (0, 17, 2_345, 5_999):
        near = similar_tracks(run, row, k=5)
        exact, _ = cosine_topk(run.embeddings, run.embeddings[[row]], k=5)
        assert near["row"][0] == row == exact[0, 0] and near["score"][0] == pytest.approx(1.0, abs=1e-4)
        assert row not in set(neighbours_of(run, row, k=5)["row"])
    assert len(calls) == 8  # every query went through the index
    rec = recommend_embedding(run, run.embeddings[42] * 3.0, k=3)
    assert rec.neighbours["row"][0] == 42
    assert len(calls) == 10  # its neighbours and its place on the maps, both through the index
    own = run.projections.loc[42, ["umap_x", "umap_y"]].to_numpy(float)
    assert np.allclose(rec.positions["umap"], own, atol=1e-3)  # a copy of a track lands on it


def test_label_filters_return_only_that_label_and_k_hits(big_run_id, monkeypatch):
    monkeypatch.setattr(ann, "EXACT_MAX_TRACKS", 1_000)
    monkeypatch.setattr(ann, "FILTER_EXACT_MAX_ROWS", 1_000)
    if load_run(big_run_id).index is None:
        main(["index", "--run", big_run_id])
    run = load_run(big_run_id)
    labels = run.tracks["label"]
    for only in ("jazz", "folk", ["folk", "jazz"]):  # jazz (~1,800 rows) through the index, folk (~480) exactly
        wanted = {only} if isinstance(only, str) else set(only)
        for row in (3, 4_000):
            near = similar_tracks(run, row, k=10, labels=only)
            assert len(near) == 10 and set(near["label"]) <= wanted
            allowed = np.flatnonzero(labels.isin(wanted))
            exact, _ = cosine_topk(run.embeddings[allowed], run.embeddings[[row]], k=10)
            assert len(set(near["row"]) & set(allowed[exact[0]])) >= 9  # recall holds under a filter
    with pytest.raises(RunError, match="no track labelled 'blues'.*folk, jazz, rock"):
        similar_tracks(run, 0, labels="blues")


def test_an_index_that_does_not_match_the_run_is_a_clear_error(big_run_id, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    x, _ = synthetic_embeddings(500, seed=1)
    ann.write_index(ann.build_index(x), folder)
    assert ann.read_index(folder, n_tracks=500, dim=128).ntotal == 500
    with pytest.raises(RunError, match="built for 500 x 128.*python -m core index"):
        ann.read_index(folder, n_tracks=501, dim=128)
    assert ann.index_run(folder, x) is None and not (folder / ann.INDEX_FILE).exists()  # small: exact again
