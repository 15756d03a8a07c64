"""k-means clusters: the planted number of clusters is found, profiles and files are right."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.clusters import (
    ClusterConfig,
    best_k,
    cluster_inputs_done,
    feature_profile,
    kmeans_curves,
    label_agreement,
    label_mix,
    load_clusters,
    profile_matrix,
    run_clusters,
)
from core.errors import ClusterError
from core.feature_table import import_feature_table, load_source, source_from_run


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
    done, _, message, values = calls[2]  # one call per k, with its silhouette (core.progress protocol)
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
    assert "features: k=3" in capsys.readouterr().out
    assert main(["cluster", "--features", "blobs_cli", "--input", "embeddings"]) == 2
    assert "has no embeddings input" in capsys.readouterr().err
