"""Importing external feature tables (Spotify-like CSVs) and reading sources for analysis."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.analysis.sources import feature_groups, load_source, source_from_run
from core.base.errors import DatasetError, FeatureTableError
from core.cli import main
from core.data.dataset import load_dataset
from core.data.tables import ImportConfig, import_feature_table, imported_datasets
from core.data.tracks import display_names


def spotify_like(rng, n_per_class: int = 20) -> pd.DataFrame:
    """A Spotify-export-like table: numeric features, text columns, a label, a few holes and a rare label."""
    labels = np.repeat(["pop", "rock", "jazz"], n_per_class)
    table = pd.DataFrame({
        "track_id": [f"sp{i:04d}" for i in range(len(labels))],
        "track_name": [f"Song {i}" for i in range(len(labels))],
        "artist_name": rng.choice(["A", "B", "C"], len(labels)),
        "danceability": rng.uniform(0, 1, len(labels)), "energy": rng.uniform(0, 1, len(labels)),
        "valence": rng.uniform(0, 1, len(labels)), "tempo": rng.uniform(60, 180, len(labels)),
        "explicit": rng.integers(0, 2, len(labels)).astype(bool), "genre": labels,
    })
    table.loc[[0, 5, 9], "energy"] = np.nan
    table.loc[3, "tempo"] = np.nan
    table["empty"] = np.nan
    rare = pd.DataFrame([{**table.iloc[0].to_dict(), "track_id": f"rare{i}", "genre": "polka", "energy": 0.5}
                         for i in range(2)])
    return pd.concat([table, rare], ignore_index=True)


def write_csv(tmp_path, table: pd.DataFrame, name: str = "table.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def test_import_sets_aside_text_imputes_and_reports_rare_labels(tmp_path, rng):
    path = write_csv(tmp_path, spotify_like(rng))
    report = import_feature_table(path, "spotify_impute", label="genre", id_col="track_id")
    assert set(report.set_aside) == {"track_name", "artist_name"}
    assert report.all_missing == ["empty"]
    assert report.missing_values == 4 and report.rows_dropped_missing == 0
    assert report.rare_labels == {"polka": 2}
    assert report.label_counts == {"pop": 20, "rock": 20, "jazz": 20, "polka": 2}
    text = "\n".join(report.lines())
    assert "track_name" in text and "imputed" in text and "'polka' has only 2" in text

    features = pd.read_parquet(report.dataset_dir / "features.parquet")
    assert list(features.columns) == ["track_id", "danceability", "energy", "valence", "tempo", "explicit"]
    assert not features.isna().any().any() and len(features) == 62
    tracks = pd.read_parquet(report.dataset_dir / "tracks.parquet")
    assert list(tracks.columns) == ["track_id", "label"] and tracks["track_id"].iloc[0] == "sp0000"
    info = json.loads((report.dataset_dir / "dataset.json").read_text())
    assert info["kind"] == "imported" and info["label_column"] == "genre"
    assert "spotify_impute" in imported_datasets()
    assert len(load_dataset("spotify_impute").tracks) == 62  # load_dataset still works on it


def test_import_can_drop_rows_with_missing_values(tmp_path, rng):
    path = write_csv(tmp_path, spotify_like(rng))
    report = import_feature_table(path, "spotify_drop", label="genre", config=ImportConfig(missing="drop"))
    assert report.rows_dropped_missing == 4 and report.n_rows == 58
    features = pd.read_parquet(report.dataset_dir / "features.parquet")
    assert "track_id" in report.set_aside  # without --id, an id column is just another text column
    assert features["track_id"].str.startswith("row").all()


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns=["genre"]), "no label column 'genre'"),
    (lambda t: t.assign(genre="pop"), "single class"),
    (lambda t: t[["track_id", "track_name", "genre"]], "no numeric feature columns"),
    (lambda t: t.assign(track_id="same"), "not unique"),
])
def test_bad_tables_get_clear_errors(tmp_path, rng, change, message):
    path = write_csv(tmp_path, change(spotify_like(rng)))
    with pytest.raises(FeatureTableError, match=message) as caught:
        import_feature_table(path, "bad", label="genre", id_col="track_id")
    assert "table.csv" in str(caught.value) or "single class" in message
    assert "bad" not in imported_datasets()


def test_unreadable_or_missing_file(tmp_path):
    with pytest.raises(FeatureTableError, match="file not found"):
        import_feature_table(tmp_path / "nope.csv", "x", label="genre")
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02")
    with pytest.raises(FeatureTableError, match="binary.csv"):
        import_feature_table(tmp_path / "binary.csv", "x", label="genre")


def test_reimport_replaces_but_never_overwrites_an_audio_dataset(tmp_path, rng, tiny_run_id):
    path = write_csv(tmp_path, spotify_like(rng))
    import_feature_table(path, "spotify_again", label="genre")
    report = import_feature_table(path, "spotify_again", label="genre", config=ImportConfig(missing="drop"))
    assert report.n_rows == 58
    with pytest.raises(FeatureTableError, match="ingested audio dataset"):
        import_feature_table(path, "tiny", label="genre")
    assert len(load_dataset("tiny").tracks) == 12


def test_cli_import_features(tmp_path, rng, capsys):
    path = write_csv(tmp_path, spotify_like(rng))
    assert main(["import-features", str(path), "--name", "spotify_cli", "--label", "genre", "--id", "track_id"]) == 0
    out = capsys.readouterr().out
    assert "set aside (not numeric): track_name, artist_name" in out and "polka" in out
    assert main(["import-features", str(path), "--name", "spotify_cli", "--label", "style"]) == 2
    assert "no label column 'style'" in capsys.readouterr().err
    assert main(["train", "--dataset", "spotify_cli"]) == 2  # a feature table has no audio to train on
    assert "imported feature table" in capsys.readouterr().err


def test_sources_align_features_and_embeddings(tiny_run_id):
    source = source_from_run(tiny_run_id)
    assert source.available_inputs() == ["features", "embeddings", "both"] and source.n_labelled == 12
    both = source.matrix("both")
    assert both.shape == (12, source.features.shape[1] + source.embeddings.shape[1])
    np.testing.assert_allclose(both.filter(like="emb_").to_numpy(), source.embeddings, rtol=1e-6)
    table = source.labelled_features()
    assert len(table) == 12 and {"track_id", "label", "name"} <= set(table.columns)
    feature_only = load_source(features="tiny")
    assert feature_only.available_inputs() == ["features"]
    with pytest.raises(DatasetError, match="no 'embeddings' input"):
        feature_only.matrix("embeddings")
    with pytest.raises(DatasetError, match="not both"):
        load_source(run=tiny_run_id, features="tiny")


def test_feature_groups_and_names():
    groups = feature_groups(["tempo_bpm", "rms_mean", "spectral_centroid_mean", "mfcc_1_mean", "mfcc_1_std",
                             "chroma_C_mean", "danceability"])
    assert groups == {"rhythm": ["tempo_bpm"], "energy": ["rms_mean"], "spectral": ["spectral_centroid_mean"],
                      "MFCC means": ["mfcc_1_mean"], "MFCC spreads": ["mfcc_1_std"], "chroma": ["chroma_C_mean"],
                      "other": ["danceability"]}
    tracks = pd.DataFrame({"track_id": ["a", "b", "c"], "path": ["/x/one.mp3", None, "/x/three.mp3"],
                           "title": ["Title", None, ""]})
    assert display_names(tracks).tolist() == ["Title", "b", "three"]  # the one naming rule (core.data.tracks)
