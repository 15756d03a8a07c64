"""Clusters (k-means, HDBSCAN): the planted number of clusters is found, profiles and files are right."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.analysis.cluster_methods import (
    NOISE,
    best_k,
    centre_distances,
    feature_profile,
    hdbscan_clusters,
    kmeans_curves,
    label_agreement,
    label_mix,
    noise_share,
    profile_matrix,
    umap_reduce,
)
from core.analysis.clusters import (
    ClusterConfig,
    cluster_cards,
    cluster_inputs_done,
    cluster_labels,
    load_clusters,
    result_name,
    result_path,
    run_clusters,
)
from core.analysis.sources import load_source, source_from_run
from core.analysis.tags import TAGS
from core.base.errors import ClusterError
from core.cli import main
from core.data.tables import import_feature_table


def planted_blobs(rng, k: int = 4, per_cluster: int = 25, dims: int = 6) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(0, 1, (k, dims)) * 10.0
    y = np.repeat(np.arange(k), per_cluster)
    return centres[y] + rng.normal(0, 1, (len(y), dims)), y


@pytest.mark.parametrize("k", [3, 4, 6])
def test_kmeans_finds_the_planted_number_of_clusters(rng, k):
    x, y = planted_blobs(rng, k=k)
    curves, labels = kmeans_curves(x, k_min=2, k_max=9, n_init=5, seed=0)
    assert curves["k"].tolist() == list(range(2, 10))
    assert best_k(curves) == k
    assert (np.diff(curves["inertia"]) <= 1e-6).all()  # the elbow curve falls with k
    assert label_agreement(labels[k], y)["ari"] == pytest.approx(1.0)


def test_k_range_is_capped_by_the_number_of_tracks(rng):
    x, _ = planted_blobs(rng, k=2, per_cluster=3)
    curves, _ = kmeans_curves(x, k_min=2, k_max=20)
    assert curves["k"].max() == 5
    with pytest.raises(ClusterError, match="too few"):
        kmeans_curves(x[:2], k_min=2, k_max=5)


def test_profiles_show_size_label_make_up_and_feature_means():
    clusters = np.array([0, 0, 0, 1, 1, 1])
    features = pd.DataFrame({"loud": [1.0, 1.0, 1.0, 3.0, 3.0, 3.0], "flat": [2.0] * 6})
    profile = feature_profile(clusters, features).set_index(["cluster", "feature"])
    assert profile.loc[(0, "loud"), "cluster_mean"] == 1.0 and profile.loc[(0, "loud"), "overall_mean"] == 2.0
    assert profile.loc[(0, "loud"), "z"] == pytest.approx(-1.0) and profile.loc[(1, "loud"), "z"] == pytest.approx(1.0)
    assert profile.loc[(0, "flat"), "z"] == 0.0  # constant feature: no difference, no division by zero
    assert profile_matrix(profile.reset_index(), n=1).columns.tolist() == ["loud"]
    mix = label_mix(clusters, ["rock", "rock", None, "jazz", "jazz", "rock"])
    assert mix[mix["cluster"] == 0].set_index("label")["count"].to_dict() == {"rock": 2, "(no label)": 1}
    assert mix.groupby("cluster")["share"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_run_clusters_on_an_imported_table_recovers_planted_groups(tmp_path, rng):
    x, y = planted_blobs(rng, k=4, per_cluster=20, dims=5)
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)]).assign(style=np.array(list("abcd"))[y])
    table.to_csv(tmp_path / "blobs.csv", index=False)
    import_feature_table(tmp_path / "blobs.csv", "blobs", label="style")
    source = load_source(features="blobs")
    calls = []
    report = run_clusters(source, cfg=ClusterConfig(k_max=8),
                          progress=lambda d, t, m="", **v: calls.append((d, t, m, v)))
    assert calls[-1][0] == calls[-1][1] == 7
    done, _, message, values = calls[2]  # one call per k, with its silhouette (core.base.progress protocol)
    assert (done, message) == (3, "features: k=4") and set(values) == {"silhouette", "inertia"}
    summary = report.summaries[0]
    assert summary["input"] == "features" and summary["k"] == 4 and summary["ari"] == pytest.approx(1.0)
    assert sorted(summary["sizes"].values()) == [20, 20, 20, 20]
    result = load_clusters(report.results_dir, "features")
    assert len(result["assignments"]) == 80 and len(result["curves"]) == 7
    assert set(result["feature_profile"]["feature"]) == {f"f{i}" for i in range(5)}
    assert (result["label_mix"].groupby("cluster")["share"].max() == 1.0).all()  # each cluster is one style
    assert cluster_inputs_done(report.results_dir) == ["features"]


def test_run_clusters_on_a_run_covers_every_input(tiny_run_id):
    source = source_from_run(tiny_run_id)
    report = run_clusters(source, cfg=ClusterConfig(k_max=6, n_init=3))
    assert [s["input"] for s in report.summaries] == ["features", "embeddings", "both"]
    assert cluster_inputs_done(source.path / "clusters") == ["features", "embeddings", "both"]
    for input in ("features", "embeddings", "both"):
        result = load_clusters(source.path / "clusters", input)
        assert len(result["assignments"]) == 12 and result["summary"]["k"] in range(2, 7)
        assert result["feature_profile"] is not None  # profiled on audio features even for embeddings
        assert result["assignments"]["track_id"].tolist() == source.tracks["track_id"].tolist()


def test_cli_cluster(tmp_path, rng, capsys):
    x, y = planted_blobs(rng, k=3, per_cluster=10, dims=4)
    pd.DataFrame(x).add_prefix("f").assign(style=y.astype(str)).to_csv(tmp_path / "b.csv", index=False)
    import_feature_table(tmp_path / "b.csv", "blobs_cli", label="style")
    assert main(["cluster", "--features", "blobs_cli", "--k-max", "6"]) == 0
    captured = capsys.readouterr()
    assert "features: kmeans k=3 (best silhouette)" in captured.out
    profiles = [line for line in captured.out.splitlines() if line.startswith("  cluster ")]
    assert len(profiles) == 3 and all("10 tracks (33%)" in p and "labels " in p and "near the centre: " in p
                                      for p in profiles), captured.out  # the profile --help promises
    assert "k/s" not in captured.err
    assert main(["cluster", "--features", "blobs_cli", "--input", "embeddings"]) == 2
    assert "has no embeddings input" in capsys.readouterr().err


def test_hdbscan_finds_dense_groups_and_calls_outliers_noise(rng):
    x, y = planted_blobs(rng, k=3, per_cluster=20, dims=4)
    outliers = rng.uniform(-60, 60, (4, 4))
    clusters = hdbscan_clusters(np.vstack([x, outliers]), min_cluster_size=8)
    assert len(set(clusters[:60])) == 3 and label_agreement(clusters[:60], y)["ari"] == pytest.approx(1.0)
    assert (clusters[60:] == NOISE).sum() >= 3 and noise_share(clusters) > 0
    sizes = np.bincount(clusters[clusters != NOISE])
    assert (np.diff(sizes) <= 0).all()  # numbered largest first
    distances = centre_distances(x, np.repeat([0, 1, 2], 20))
    assert distances.shape == (60,) and np.isnan(centre_distances(x[:2], np.array([NOISE, NOISE]))).all()


def test_hdbscan_results_cards_and_map_colours(tmp_path, rng):
    x, y = planted_blobs(rng, k=3, per_cluster=15, dims=5)
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)]).assign(style=np.array(list("abc"))[y])
    table.to_csv(tmp_path / "hd.csv", index=False)
    import_feature_table(tmp_path / "hd.csv", "hd", label="style")
    source = load_source(features="hd")
    cfg = ClusterConfig(method="hdbscan", reduce="none", min_cluster_size=6)
    summary = run_clusters(source, cfg=cfg).summaries[0]
    assert summary["method"] == "hdbscan" and summary["k"] == 3 and summary["ari"] == pytest.approx(1.0)
    assert summary["noise_share"] == 0.0 and summary["space"] == "scaled matrix"
    folder = source.path / "clusters"
    assert cluster_inputs_done(folder, "hdbscan") == ["features"] and cluster_inputs_done(folder) == []
    result = load_clusters(folder, "features", "hdbscan")
    assert result["curves"] is None
    ids = source.tracks["track_id"].astype(str).tolist()
    tags = pd.DataFrame(rng.uniform(0, 0.04, (45, 50)), columns=list(TAGS))
    tags.loc[y == 2, "jazz"] = 0.7  # style c is jazzy
    cards = cluster_cards(result, track_ids=ids, tags=tags)
    assert [c["size"] for c in cards] == [15, 15, 15] and sum(c["share"] for c in cards) == pytest.approx(1.0)
    jazzy = next(c for c in cards if "c" in c["labels"])
    assert jazzy["labels"] == {"c": 15} and type(jazzy["labels"]["c"]) is int and jazzy["tags"][0][0] == "jazz"
    assert len(jazzy["central"]) == 3 and set(jazzy["central"]) <= set(np.array(ids)[y == 2])
    assert len(jazzy["features"]) == 5 and abs(jazzy["features"][0][1]) >= abs(jazzy["features"][-1][1])
    colours = cluster_labels(folder, ids + ["stranger"], method="hdbscan")
    assert set(colours[:45]) == {"cluster 1", "cluster 2", "cluster 3"} and colours.iloc[45] == "not clustered"
    assert cluster_labels(folder, ids, method="kmeans") is None
    assert cluster_cards(result, track_ids=ids)[0]["tags"] == []  # no tags: cards still drawn


def test_hdbscan_on_a_umap_reduction(rng):
    x, y = planted_blobs(rng, k=3, per_cluster=20, dims=30)
    space = umap_reduce(x, dims=5, seed=0)
    assert space.shape == (60, 5)
    assert label_agreement(hdbscan_clusters(space, min_cluster_size=8), y)["ari"] > 0.9


def test_both_methods_name_their_folders_alike_and_old_kmeans_folders_are_read(tmp_path, rng):
    x, y = planted_blobs(rng, k=3, per_cluster=12, dims=4)
    pd.DataFrame(x).add_prefix("f").assign(style=y.astype(str)).to_csv(tmp_path / "sym.csv", index=False)
    import_feature_table(tmp_path / "sym.csv", "blobs_sym", label="style")
    source = load_source(features="blobs_sym")
    folder = source.path / "clusters"
    run_clusters(source, cfg=ClusterConfig(k_max=5, n_init=3))
    run_clusters(source, cfg=ClusterConfig(method="hdbscan", reduce="none", min_cluster_size=6))
    assert sorted(p.name for p in folder.iterdir()) == ["hdbscan-features", "kmeans-features"]
    # a k-means result written under the old name (clusters/<input>/) is still read, then replaced by a re-run
    (folder / "kmeans-features").rename(folder / "features")
    assert cluster_inputs_done(folder) == ["features"] and result_path(folder, "kmeans", "features") == folder / "features"
    old = load_clusters(folder, "features")["assignments"]["cluster"].to_numpy()
    assert cluster_labels(folder, source.tracks["track_id"].astype(str), method="kmeans").nunique() == 3
    summary = run_clusters(source, cfg=ClusterConfig(k_max=5, n_init=3)).summaries[0]
    assert sorted(p.name for p in folder.iterdir()) == ["hdbscan-features", "kmeans-features"]
    assert summary["numbering"]["previous"] is not None  # numbers matched against the old folder's result
    assert (load_clusters(folder, "features")["assignments"]["cluster"].to_numpy() == old).all()


def test_unknown_method_is_refused():
    with pytest.raises(ClusterError, match="no clustering method 'dbscan'"):
        result_name("dbscan", "features")


def test_cli_cluster_hdbscan(tmp_path, rng, capsys):
    x, y = planted_blobs(rng, k=3, per_cluster=10, dims=4)
    pd.DataFrame(x).add_prefix("f").assign(style=y.astype(str)).to_csv(tmp_path / "h.csv", index=False)
    import_feature_table(tmp_path / "h.csv", "blobs_hd", label="style")
    assert main(["cluster", "--features", "blobs_hd", "--method", "hdbscan", "--reduce", "none",
                 "--min-cluster-size", "5"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "features: hdbscan 3 clusters" in out and "noise 0.0%" in out and "ARI with labels 1.000" in out
    assert "k=" not in out and "k/s" not in captured.err and "step" in captured.err  # no k in HDBSCAN


def test_hdbscan_on_a_few_tracks_skips_umap_and_may_find_only_noise(tmp_path, rng):
    x, y = planted_blobs(rng, k=2, per_cluster=3, dims=4)
    pd.DataFrame(x).add_prefix("f").assign(style=y.astype(str)).to_csv(tmp_path / "few.csv", index=False)
    import_feature_table(tmp_path / "few.csv", "few", label="style")
    summary = run_clusters(load_source(features="few"), cfg=ClusterConfig(method="hdbscan", min_cluster_size=3)).summaries[0]
    assert summary["space"] == "scaled matrix" and summary["k"] == 2 and summary["ari"] == pytest.approx(1.0)
    lonely = run_clusters(load_source(features="few"), cfg=ClusterConfig(method="hdbscan", min_cluster_size=8)).summaries[0]
    assert lonely["k"] == 0 and lonely["noise_share"] == 1.0 and lonely["silhouette"] is None
