"""The atlas's data in core: cluster names at their centres, stable cluster numbers across re-runs, neighbour
agreement per track between runs, histogram codes and the map's trustworthiness, on synthetic runs whose answer
is known (blobs with a planted tag, tempo, key or loudness each)."""
import json

import numpy as np
import pandas as pd
import pytest

from core.analysis.agreement import agreement_runs, neighbour_graph, track_agreement
from core.analysis.atlas import (
    MISSING,
    binned_codes,
    category_codes,
    characteristic_feature,
    cluster_labels,
    map_histograms,
    projection_quality,
)
from core.analysis.cluster_methods import NOISE, match_numbers
from core.analysis.clusters import ClusterConfig, cluster_input, load_clusters
from core.analysis.compare import neighbour_sets
from core.analysis.sources import Source, SourceKind
from core.base.errors import ClusterError, CompareError
from core.base.paths import datasets_dir, runs_dir
from core.runs.folder import load_run
from core.search.projection import METHODS

BLOBS = 4
PER_BLOB = 30
CENTRES = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])  # each blob's place on every map
BLOB_TAGS = (("rock", "guitar"), ("jazz", "instrumental"), ("electronic", "dance"), ("female vocalists", "pop"))


def blob_embeddings(rng, *, dims: int = 16, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated clusters of unit vectors: blob ``b`` around basis vector ``b``."""
    blob = np.repeat(np.arange(BLOBS), PER_BLOB)
    x = np.eye(dims)[blob] + rng.normal(scale=spread, size=(len(blob), dims))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), blob


def write_run(run_id: str, embeddings: np.ndarray, *, track_ids=None, xy=None, labels=None,
              dataset: str = "blobs", duration=None) -> str:
    """A run folder the app opens (the model file a stand-in: nothing here loads it)."""
    n = len(embeddings)
    ids = np.asarray(track_ids if track_ids is not None else [f"t{i:04d}" for i in range(n)], dtype=object)
    folder = runs_dir() / run_id
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"track_id": ids, "path": [f"/music/{t}.mp3" for t in ids],
                  "label": pd.array(labels if labels is not None else [None] * n, dtype="string"),
                  "duration_s": duration if duration is not None else np.full(n, 30.0),
                  "artist": "someone", "title": ids}).to_parquet(folder / "tracks.parquet")
    np.save(folder / "embeddings.npy", embeddings.astype(np.float32))
    xy = xy if xy is not None else np.zeros((n, 2))
    coords = pd.DataFrame({"track_id": ids})
    for method in METHODS:
        coords[f"{method}_x"], coords[f"{method}_y"] = xy[:, 0], xy[:, 1]
    coords.to_parquet(folder / "projections.parquet")
    np.savez(folder / "projection.npz", fit_rows=np.arange(n))
    (folder / "model.pt").write_bytes(b"")
    (folder / "config.json").write_text(json.dumps({"run_id": run_id, "dataset": dataset}))
    (folder / "metrics.json").write_text("{}")
    return run_id


def blob_features(blob: np.ndarray, rng) -> pd.DataFrame:
    """Audio features where blob 0 is fast (170 BPM), blob 1 centred on D, blob 2 loud, blob 3 slow and quiet."""
    n = len(blob)
    tempo = np.where(blob == 0, 170.0, np.where(blob == 3, 80.0, 115.0)) + rng.normal(0, 2, n)
    rms = np.where(blob == 2, 0.25, np.where(blob == 3, 0.03, 0.08)) * rng.uniform(0.97, 1.03, n)
    chroma = rng.uniform(0.30, 0.32, (n, 12))
    chroma[blob == 1, 2] = 0.9  # D
    frame = pd.DataFrame({"tempo_bpm": tempo, "rms_mean": rms})
    for j, note in enumerate(("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")):
        frame[f"chroma_{note}_mean"] = chroma[:, j]
    return frame


def write_dataset(name: str, track_ids, features: pd.DataFrame, tags: pd.DataFrame | None) -> None:
    from core.analysis.tags import TAGS

    folder = datasets_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps({"kind": "imported"}))
    features.assign(track_id=list(track_ids)).to_parquet(folder / "features.parquet")
    if tags is not None:
        full = pd.DataFrame(0.02, index=range(len(track_ids)), columns=list(TAGS), dtype=np.float32)
        full[tags.columns] = tags.to_numpy(np.float32)
        full.insert(0, "track_id", list(track_ids))
        full.to_parquet(folder / "tags.parquet")


def blob_tags(blob: np.ndarray, rng) -> pd.DataFrame:
    names = sorted({t for pair in BLOB_TAGS for t in pair})
    values = pd.DataFrame(rng.uniform(0.0, 0.05, (len(blob), len(names))), columns=names)
    for b, (first, second) in enumerate(BLOB_TAGS):
        values.loc[blob == b, first] = 0.8
        values.loc[blob == b, second] = 0.5
    return values


def run_source(run_id: str, features: pd.DataFrame | None, *, rows=None) -> Source:
    run = load_run(run_id)
    rows = np.arange(len(run.tracks)) if rows is None else np.asarray(rows)
    return Source(kind=SourceKind.RUN, name=run_id, dataset="blobs", path=run.path,
                  tracks=run.tracks.iloc[rows].reset_index(drop=True),
                  features=None if features is None else features.iloc[rows].reset_index(drop=True),
                  embeddings=run.embeddings[rows])


@pytest.fixture(scope="module")
def blob_run(rng_module):
    """A run of four blobs placed at :data:`CENTRES` on every map (one far outlier each), with tags and features
    in its dataset, clustered by k-means on the embeddings."""
    rng = rng_module
    x, blob = blob_embeddings(rng)
    xy = CENTRES[blob] + rng.normal(scale=1.0, size=(len(blob), 2))
    xy[np.arange(BLOBS) * PER_BLOB] += 500.0  # the first track of each blob far away: a mean would follow it
    labels = np.array(["rock", "jazz", "electronic", "pop"], dtype=object)[blob]
    run_id = write_run("blobs-run", x, xy=xy, labels=labels)
    features = blob_features(blob, rng)
    write_dataset("blobs", load_run(run_id).tracks["track_id"], features, blob_tags(blob, rng))
    cluster_input(run_source(run_id, features), "embeddings", ClusterConfig(k_max=6, seed=0))
    return run_id, blob, features


@pytest.fixture(scope="module")
def rng_module():
    return np.random.default_rng(7)


def _blob_of(labels: list[dict], blob: np.ndarray, run_id: str) -> dict:
    """Each label keyed by the blob its cluster holds."""
    assignments = load_clusters(load_run(run_id).path / "clusters", "embeddings")["assignments"]
    cluster_blob = pd.Series(blob).groupby(assignments["cluster"].to_numpy()).agg(lambda b: b.mode()[0])
    return {int(cluster_blob[lab["cluster"]]): lab for lab in labels}


def test_cluster_labels_sit_at_the_median_and_are_named_from_tags_and_one_feature(blob_run):
    run_id, blob, _ = blob_run
    labels = cluster_labels(load_run(run_id), "kmeans", "umap")
    assert len(labels) == BLOBS and [lab["size"] for lab in labels] == [PER_BLOB] * BLOBS
    by_blob = _blob_of(labels, blob, run_id)
    for b, lab in by_blob.items():
        assert np.hypot(lab["x"] - CENTRES[b, 0], lab["y"] - CENTRES[b, 1]) < 1.5  # the outlier does not drag it
        assert [t for t, _ in lab["tags"]] == list(BLOB_TAGS[b])
    assert by_blob[0]["text"].startswith("rock · guitar · ") and by_blob[0]["text"].endswith("BPM")
    assert 165 <= float(by_blob[0]["text"].split(" · ")[-1].split()[0]) <= 175
    assert by_blob[1]["feature"]["text"] == "key D" and by_blob[1]["text"] == "jazz · instrumental · key D"
    assert by_blob[2]["feature"]["feature"] == "loudness" and by_blob[2]["text"].endswith("loud -12 dB")
    assert by_blob[3]["feature"]["z"] < 0  # slow and quiet: the stronger of the two, below the mean
    assert by_blob[0]["name"] == f"cluster {by_blob[0]['cluster'] + 1}"


def test_cluster_labels_without_tags_use_the_feature_and_the_label_mix(blob_run):
    run_id, blob, features = blob_run
    other = write_run("blobs-untagged", load_run(run_id).embeddings, xy=load_run(run_id).projections[
        ["umap_x", "umap_y"]].to_numpy(), labels=load_run(run_id).tracks["label"].to_numpy(), dataset="no-tags")
    cluster_input(run_source(other, features), "embeddings", ClusterConfig(k_max=6, seed=0))
    by_blob = _blob_of(cluster_labels(load_run(other), "kmeans", "tsne"), blob, other)
    assert by_blob[0]["tags"] == [] and by_blob[0]["text"].endswith(" BPM · 100% rock")
    assert by_blob[1]["text"] == "key D · 100% jazz"


def test_cluster_labels_need_a_clustering_and_a_known_map(blob_run):
    run = load_run(blob_run[0])
    with pytest.raises(ClusterError, match="no hdbscan clusters"):
        cluster_labels(run, "hdbscan", "umap")
    with pytest.raises(ValueError, match="unknown projection"):
        cluster_labels(run, "kmeans", "mds")


def test_characteristic_feature_picks_the_largest_distance_from_the_mean():
    profile = pd.DataFrame({"feature": ["tempo_bpm", "rms_mean", "chroma_A_mean", "chroma_C_mean", "mfcc_1_mean"],
                            "cluster_mean": [121.0, 0.1, 0.7, 0.2, 5.0], "z": [0.5, -1.0, 2.0, -3.0, 9.0]})
    assert characteristic_feature(profile) == {"feature": "key", "text": "key A", "z": 2.0}  # mfcc is no candidate
    assert characteristic_feature(profile.iloc[:2])["text"] == "quiet -20 dB"
    assert characteristic_feature(profile.iloc[4:]) is None


def test_match_numbers_undoes_a_permutation_and_frees_a_lost_cluster():
    ids = [f"t{i}" for i in range(40)]
    before = np.repeat([0, 1, 2, 3], 10)
    permuted = np.array([2, 3, 0, 1])[before]
    renumbered, numbering = match_numbers(ids, before, ids, permuted)
    assert np.array_equal(renumbered, before) and numbering["kept"] == [0, 1, 2, 3] and numbering["freed"] == []
    # cluster 1's tracks gone, a new group (noise before) and the rest shuffled: 1 is free, the new group takes it
    ids_now = ids[:10] + ids[20:] + [f"n{i}" for i in range(10)]
    now = np.concatenate([np.full(10, 5), np.full(10, 7), np.full(10, 6), np.full(10, 9)])
    renumbered, numbering = match_numbers(ids, before, ids_now, now)
    assert np.array_equal(renumbered, np.repeat([0, 2, 3, 1], 10))
    assert numbering == {"kept": [0, 2, 3], "jaccard": {"0": 1.0, "2": 1.0, "3": 1.0}, "new": [1], "freed": [1]}
    noisy, _ = match_numbers(ids, before, ids, np.where(before == 0, NOISE, permuted))
    assert (noisy[:10] == NOISE).all() and np.array_equal(noisy[10:], before[10:])


def test_a_rerun_keeps_cluster_numbers_and_a_removed_blob_frees_its_number(blob_run, rng):
    _, blob, features = blob_run
    run_id = write_run("blobs-rerun", load_run(blob_run[0]).embeddings)  # its own run: the others keep 4 clusters
    source = run_source(run_id, features)
    cluster_input(source, "embeddings", ClusterConfig(k_max=6, seed=0))
    first = load_clusters(source.path / "clusters", "embeddings")["assignments"]["cluster"].to_numpy()
    for seed in (1, 2, 3):
        summary = cluster_input(source, "embeddings", ClusterConfig(k_max=6, seed=seed))
        again = load_clusters(source.path / "clusters", "embeddings")["assignments"]["cluster"].to_numpy()
        assert np.array_equal(again, first)
        assert summary["numbering"]["kept"] == [0, 1, 2, 3] and summary["numbering"]["previous"]
    gone = int(first[blob == 2][0])
    kept_rows = np.flatnonzero(blob != 2)
    summary = cluster_input(run_source(run_id, features, rows=kept_rows), "embeddings",
                            ClusterConfig(k_max=6, seed=4))
    result = load_clusters(source.path / "clusters", "embeddings")
    assert summary["k"] == 3 and summary["numbering"]["freed"] == [gone]
    assert np.array_equal(result["assignments"]["cluster"].to_numpy(), first[kept_rows])
    assert gone not in set(result["label_mix"]["cluster"]) and gone not in set(result["feature_profile"]["cluster"])


def test_identical_runs_agree_everywhere_and_a_shuffled_run_hardly_at_all(rng):
    x, _ = blob_embeddings(rng, spread=0.3)
    ids = [f"a{i:04d}" for i in range(len(x))]  # tracks no other run of this module holds
    a = write_run("agree-a", x, track_ids=ids)
    b = write_run("agree-b", x.copy(), track_ids=ids)
    shuffled = write_run("agree-shuffled", x[rng.permutation(len(x))], track_ids=ids)
    lacking = write_run("agree-part", x[:60], track_ids=ids[:60])
    write_run("agree-stranger", x, track_ids=[f"s{i}" for i in range(len(x))])
    same = track_agreement(a, b)
    assert same.shape == (len(x),) and same.dtype == np.float32 and np.allclose(same, 1.0)
    low = track_agreement(a, shuffled)
    assert np.nanmean(low) < 0.2 and ((low >= 0) & (low <= 1)).all()
    part = track_agreement(a, lacking)
    assert np.isnan(part[60:]).all() and not np.isnan(part[:60]).any()
    assert sorted(agreement_runs(a)) == ["agree-b", "agree-part", "agree-shuffled"]
    with pytest.raises(CompareError, match="share no tracks"):
        track_agreement(a, "agree-stranger")
    with pytest.raises(CompareError, match="two different runs"):
        track_agreement(a, a)


def test_agreement_is_cached_until_a_run_changes(rng):
    x, _ = blob_embeddings(rng, spread=0.3)
    a, b = write_run("cache-a", x), write_run("cache-b", x[rng.permutation(len(x))])
    first = track_agreement(a, b, k=5)
    cache = runs_dir() / a / "agreement" / f"{b}-k5.npz"
    assert cache.exists() and not list(cache.parent.glob("*.tmp"))
    with np.load(cache) as stored:  # the cache is what is read back
        assert np.array_equal(stored["agreement"], first)
    written = cache.stat().st_mtime_ns
    assert np.array_equal(track_agreement(a, b, k=5), first) and cache.stat().st_mtime_ns == written
    write_run(b, x)  # run b rewritten: the same space as a now
    assert np.allclose(track_agreement(a, b, k=5), 1.0)


def test_neighbour_graph_in_blocks_and_through_an_index_matches_exact(rng, monkeypatch):
    import core.analysis.agreement as agreement

    x = rng.normal(size=(6000, 16)).astype(np.float32)
    exact = neighbour_sets(x, k=10)

    def recall(found):
        return np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])

    assert recall(neighbour_graph(x, k=10)) > 0.999  # in blocks: the same sets (a near tie may flip in rounding)
    monkeypatch.setattr(agreement, "EXACT_GRAPH_MAX", 5000)  # 6,000 rows now go through an IVF index
    found = neighbour_graph(x, k=10)
    assert recall(found) > 0.9 and not (found == np.arange(len(x))[:, None]).any()


def test_histogram_codes_of_known_values(blob_run):
    assert binned_codes([59, 60, 69.9, 95, np.nan, 200, 250], range(60, 201, 10)).tolist() == [0, 1, 1, 4, 255, 15,
                                                                                                  15]
    assert category_codes(["b", "a", None, "z"], ["a", "b"]).tolist() == [1, 0, MISSING, MISSING]
    run_id, blob, features = blob_run
    run = load_run(run_id)
    hist = {h["name"]: h for h in map_histograms(run, tag="ROCK")}
    assert list(hist) == ["tempo", "duration", "cluster", "label", "tag:rock"]
    for h in hist.values():
        assert h["codes"].dtype == np.uint8 and h["codes"].shape == (len(blob),)
        assert h["codes"][h["codes"] != MISSING].max() < len(h["bins"])
    fast = hist["tempo"]["bins"][hist["tempo"]["codes"][blob == 0][0]]
    assert fast in ("160-170 BPM", "170-180 BPM") and hist["tempo"]["bins"][0] == "<60 BPM"
    assert set(hist["duration"]["codes"]) == {1} and hist["duration"]["bins"][1] == "30 s-1 min"
    assert hist["label"]["bins"] == ["electronic", "jazz", "pop", "rock"]
    assert (np.array(hist["label"]["bins"])[hist["label"]["codes"]] == run.tracks["label"].to_numpy()).all()
    assert hist["tag:rock"]["bins"][-1] == "≥0.9" and set(hist["tag:rock"]["codes"][blob == 0]) == {8}
    assert set(hist["tag:rock"]["codes"][blob != 0]) == {0}
    clusters = load_clusters(run.path / "clusters", "embeddings")["assignments"]["cluster"].to_numpy()
    assert hist["cluster"]["bins"] == ["cluster 1", "cluster 2", "cluster 3", "cluster 4"]
    assert np.array_equal(hist["cluster"]["codes"], clusters)


def test_histograms_are_nan_safe_and_skip_what_a_run_lacks(rng):
    x, _ = blob_embeddings(rng)
    n = len(x)
    duration = np.full(n, np.nan)
    duration[:3] = [10.0, 200.0, 4000.0]
    labels = np.array([None] * n, dtype=object)
    labels[0] = "rock"
    run = load_run(write_run("no-extras", x, duration=duration, labels=labels, dataset="absent"))
    hist = {h["name"]: h for h in map_histograms(run, tag="rock")}
    assert list(hist) == ["duration", "label"]  # no features, no clusters, no tags
    assert hist["duration"]["codes"][:4].tolist() == [0, 4, 8, MISSING]
    assert hist["label"]["bins"] == ["rock", "unlabelled"] and hist["label"]["codes"][:2].tolist() == [0, 1]


def test_projection_quality_of_a_perfect_and_a_random_map(rng):
    uv = rng.uniform(-0.05, 0.05, size=(400, 2))  # a small patch of the sphere: cosine ~ distance in the plane
    x = np.column_stack([uv, np.ones(len(uv))])
    run_id = write_run("flat-patch", x, xy=uv)
    quality = projection_quality(load_run(run_id), "umap", sample=300)
    assert quality["value"] > 0.99 and quality["k"] == 10 and quality["n"] == 300 and quality["sampled"]
    assert "300 of 400" in quality["text"]
    cache = runs_dir() / run_id / "quality" / "umap.json"
    assert json.loads(cache.read_text())["quality"] == quality
    assert projection_quality(load_run(run_id), "umap", sample=300) == quality  # read back, same figures
    write_run(run_id, x, xy=rng.normal(size=(400, 2)))  # the map replaced by noise: measured again
    assert projection_quality(load_run(run_id), "umap", sample=300)["value"] < 0.7


def test_a_label_histogram_of_many_labels_folds_the_rarest_into_other(rng):
    n = 700
    labels = np.array([f"genre{i:03d}" for i in range(300)] * 2 + [None] * 100, dtype=object)
    labels[:300] = [f"genre{i:03d}" for i in range(300)]
    labels[600:650] = "genre007"  # the most common: keeps its bin
    run = load_run(write_run("many-labels", rng.normal(size=(n, 8)), labels=labels, dataset="absent"))
    hist = {h["name"]: h for h in map_histograms(run)}["label"]
    assert len(hist["bins"]) == 255 and hist["bins"][-2:] == ["other", "unlabelled"]
    shown = np.array(hist["bins"])[hist["codes"]]
    assert (shown[600:650] == "genre007").all() and (shown[650:] == "unlabelled").all()
    kept = labels[:300][shown[:300] != "other"]
    assert len(kept) == 253 and (shown[:300][shown[:300] != "other"] == kept).all()
