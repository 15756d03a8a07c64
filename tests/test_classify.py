"""The classifier job end to end on synthetic tables whose answer is known: every model, the fixed test split,
result files, saved models and their probabilities, the best saved classifier, the CLI.

Grid searches over every model: marked slow (``.ci/run`` still runs them).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.analysis.classify import (
    MODEL_NAMES,
    ClassifyConfig,
    best_per_input,
    best_saved_classifier,
    classifier_summary,
    fixed_test_split,
    load_classifier,
    load_result,
    prepare_input,
    result_name,
    run_classifiers,
    split_path,
    top_importances,
)
from core.analysis.sources import load_source, source_from_run
from core.base.errors import ClassifyError
from core.cli import main
from core.data.tables import import_feature_table

pytestmark = pytest.mark.slow
CLASSES = ("blues", "disco", "metal")
NOISE = ("noise_1", "noise_2", "noise_3")


def separable_table(rng, n_per_class: int = 30) -> pd.DataFrame:
    """One informative column (class means 4 sd apart), one weak one, and pure noise."""
    y = np.repeat(np.arange(len(CLASSES)), n_per_class)
    table = pd.DataFrame({"id": [f"t{i:03d}" for i in range(len(y))], "genre": np.array(CLASSES)[y],
                          "signal": 4.0 * y + rng.normal(0, 1, len(y)), "weak": 0.5 * y + rng.normal(0, 1, len(y))})
    for name in NOISE:
        table[name] = rng.normal(0, 1, len(y))
    return table

@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.csv"
    separable_table(np.random.default_rng(7)).to_csv(path, index=False)
    return path

@pytest.fixture(scope="module")
def synthetic(synthetic_csv):
    """The separable table imported as dataset 'synthetic', with every model trained once."""
    import_feature_table(synthetic_csv, "synthetic", label="genre", id_col="id")
    source = load_source(features="synthetic")
    calls = []
    report = run_classifiers(source, cfg=ClassifyConfig(permutation_repeats=3),
                             progress=lambda d, t, m="", **v: calls.append((d, t, m, v)))
    return source, report, calls

def test_every_model_separates_the_planted_classes(synthetic):
    source, report, calls = synthetic
    summary = report.summary
    assert sorted(summary["model"]) == sorted(MODEL_NAMES) and set(summary["input"]) == {"features"}
    assert (summary["test_accuracy"] >= 0.9).all(), summary[["model", "test_accuracy"]]
    assert (summary["cv_mean"] >= 0.8).all() and (summary["cv_std"] < 0.1).all(), summary[["model", "cv_mean"]]
    assert (summary.set_index("model").drop(index="knn")["cv_mean"] >= 0.95).all()  # k-NN suffers from noise dims
    assert (summary["n_test"] == 24).all() and (summary["n_train"] == 66).all()  # 8 of each 30 held out
    assert calls[-1][0] == calls[-1][1] == 3 * len(MODEL_NAMES)
    assert [d for d, *_ in calls] == sorted(d for d, *_ in calls)
    finished = {m.removesuffix(": done"): v for _, _, m, v in calls if m.endswith(": done")}  # core.base.progress values
    by_model = summary.set_index("model")
    assert finished == {f"features / {m}": {"cv_mean": by_model.loc[m, "cv_mean"],
                                            "test_accuracy": by_model.loc[m, "test_accuracy"]} for m in MODEL_NAMES}
    saved = pd.read_parquet(report.results_dir / "summary.parquet")
    pd.testing.assert_frame_equal(saved, summary)

def test_confusion_and_metrics_files(synthetic):
    source, report, _ = synthetic
    for model in MODEL_NAMES:
        result = load_result(report.results_dir, "features", model)
        matrix = np.array(result["confusion"]["matrix"])
        metrics = result["metrics"]
        assert matrix.shape == (3, 3) and matrix.sum() == metrics["n_test"] == 24
        assert result["confusion"]["classes"] == sorted(CLASSES)
        assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test"]["accuracy"])
        assert [c["support"] for c in metrics["test"]["per_class"]] == matrix.sum(axis=1).tolist()
        assert len(metrics["cv"]["scores"]) == 5 and metrics["best_params"]
        assert set(metrics["best_params"]) == set(metrics["search"]["grid"])
        predictions = pd.read_parquet(result["path"] / "predictions.parquet")
        assert len(predictions) == 24 and set(predictions.columns) == {"track_id", "label", "predicted"}

def test_importances_rank_the_signal_above_noise(synthetic):
    source, report, _ = synthetic
    for model in MODEL_NAMES:
        table = load_result(report.results_dir, "features", model)["importances"].set_index("feature")
        perm = table["permutation_mean"]
        assert perm["signal"] > perm[list(NOISE)].max() + 0.2, (model, perm)
        if model in ("xgboost", "lightgbm", "catboost", "logreg"):
            own = table["model_importance"]
            assert own["signal"] > own[list(NOISE)].max(), (model, own)
            assert own.sum() == pytest.approx(1.0)
        else:
            assert table["model_importance"].isna().all()
        assert top_importances(table.reset_index(), n=1)["feature"].iloc[0] == "signal"

def test_saved_models_reload_without_pickle_and_predict_the_same(synthetic):
    source, report, _ = synthetic
    features = source.features.to_numpy()
    for model in MODEL_NAMES:
        folder = report.results_dir / result_name("features", model)
        predictions = pd.read_parquet(folder / "predictions.parquet")
        rows = source.tracks["track_id"].reset_index().set_index("track_id").loc[predictions["track_id"], "index"]
        loaded = load_classifier(folder / "model")
        assert loaded.predict(features[rows.to_numpy()]).tolist() == predictions["predicted"].tolist(), model
        assert list(folder.glob("model/*.pkl")) == [] and list(folder.glob("model/*.joblib")) == []
    assert not list(report.results_dir.glob(".partial-*")) and not list(report.results_dir.glob(".old-*"))

def test_tampered_skops_file_is_refused(synthetic, tmp_path):
    import shutil

    import skops.io as sio

    source, report, _ = synthetic
    folder = tmp_path / "model"
    shutil.copytree(report.results_dir / result_name("features", "logreg") / "model", folder)
    sio.dump({"payload": pd.Timestamp("2020-01-01")}, folder / "model.skops")  # a type outside the allow-list
    with pytest.raises(ClassifyError, match="refusing to load"):
        load_classifier(folder)

def test_test_split_is_fixed_and_reused(synthetic, rng):
    source, report, _ = synthetic
    labelled = source.tracks
    path = split_path("synthetic", test_size=0.25, seed=0)
    stored = json.loads(path.read_text())
    assert len(stored["test"]) == 24 and len(set(stored["test"]) & set(stored["train"])) == 0
    again = fixed_test_split("synthetic", labelled["track_id"], labelled["label"], test_size=0.25, seed=0)
    assert set(labelled["track_id"][again]) == set(stored["test"])
    # a later, larger dataset keeps every earlier test track in the test split
    more_ids = list(labelled["track_id"]) + [f"new{i}" for i in range(12)]
    more_labels = list(labelled["label"]) + list(np.repeat(CLASSES, 4))
    mask = fixed_test_split("synthetic", more_ids, more_labels, test_size=0.25, seed=0)
    assert set(stored["test"]) <= set(np.array(more_ids)[mask]) and mask[-12:].sum() == 3
    # the grid search and every model only ever trained on the training part
    for model in MODEL_NAMES:
        metrics = load_result(report.results_dir, "features", model)["metrics"]
        assert metrics["n_train"] + metrics["n_test"] == 90

def test_rare_classes_are_left_out_by_name_and_a_single_class_is_refused(tmp_path, rng):
    table = separable_table(rng, n_per_class=12)
    rare = table.iloc[:3].assign(genre="polka", id=["p1", "p2", "p3"])
    path = tmp_path / "rare.csv"
    pd.concat([table, rare]).to_csv(path, index=False)
    import_feature_table(path, "rare_labels", label="genre", id_col="id")
    source = load_source(features="rare_labels")
    report = run_classifiers(source, cfg=ClassifyConfig(models=("logreg",), permutation_repeats=1))
    assert any("'polka' has 3 track(s), fewer than the 5 CV folds" in w for w in report.warnings)
    assert load_result(report.results_dir, "features", "logreg")["confusion"]["classes"] == sorted(CLASSES)
    with pytest.raises(ClassifyError, match="fewer than two classes have at least 20 tracks"):
        prepare_input(source, "features", ClassifyConfig(cv_folds=20))

def test_bad_requests_get_clear_errors(synthetic):
    source, _, _ = synthetic
    with pytest.raises(ClassifyError, match="unknown model"):
        run_classifiers(source, cfg=ClassifyConfig(models=("random_forest",)))
    with pytest.raises(ClassifyError, match="no embeddings input"):
        run_classifiers(source, cfg=ClassifyConfig(input=("embeddings",)))
    with pytest.raises(ClassifyError, match="test_size"):
        fixed_test_split("synthetic", ["a"], ["x"], test_size=1.5, seed=0)

def test_outlier_option_runs_end_to_end(synthetic_csv):
    import_feature_table(synthetic_csv, "synthetic_outliers", label="genre", id_col="id")
    source = load_source(features="synthetic_outliers")
    cfg = ClassifyConfig(models=("svm",), outliers=True, permutation_repeats=1)
    report = run_classifiers(source, cfg=cfg)
    assert load_result(report.results_dir, "features", "svm")["metrics"]["config"]["outliers"] is True
    assert report.summary.set_index("model").loc["svm", "test_accuracy"] >= 0.9

def test_run_source_with_three_inputs(tiny_run_id):
    source = source_from_run(tiny_run_id)
    cfg = ClassifyConfig(models=("logreg", "knn"), cv_folds=3, search_folds=3, permutation_repeats=1)
    report = run_classifiers(source, cfg=cfg)
    assert report.results_dir == source.path / "classifiers"
    assert sorted(zip(report.summary["input"], report.summary["model"])) == sorted(
        (i, m) for i in ("features", "embeddings", "both") for m in ("logreg", "knn"))
    assert (report.summary["n_test"] == 3).all()  # one of each style's four tracks
    best = best_per_input(report.summary)
    assert sorted(best["input"]) == ["both", "embeddings", "features"]
    n_features = source.features.shape[1]
    assert report.summary.set_index(["input", "model"]).loc[("both", "knn"), "n_features"] == n_features + 128
    assert len(classifier_summary(report.results_dir)) == 6

def test_cli_classify(synthetic_csv, capsys):
    import_feature_table(synthetic_csv, "synthetic_cli", label="genre", id_col="id")
    assert main(["classify", "--features", "synthetic_cli", "--models", "logreg", "--permutation-repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "best model per input" in out and "logreg" in out
    assert main(["classify", "--features", "synthetic_cli", "--input", "embeddings"]) == 2
    assert "no embeddings input" in capsys.readouterr().err
    assert main(["classify", "--features", "no_such_dataset"]) == 2

def test_nested_cv_repeats_the_search_inside_every_fold(synthetic_csv, monkeypatch):
    import core.analysis.classify.evaluate as evaluate

    import_feature_table(synthetic_csv, "synthetic_nested", label="genre", id_col="id")
    searches = []
    real = evaluate.grid_search
    monkeypatch.setattr(evaluate, "grid_search", lambda *a, **k: searches.append(len(a[2])) or real(*a, **k))
    report = run_classifiers(load_source(features="synthetic_nested"),
                             cfg=ClassifyConfig(models=("logreg",), nested_cv=True, permutation_repeats=1))
    assert searches == [66] + [72] * 5  # the training part, then 4/5 of all 90 tracks per fold
    row = report.summary.iloc[0]
    assert bool(row["cv_nested"]) and row["cv_mean"] >= 0.9

def test_predict_proba_of_every_saved_model_sums_to_one_and_agrees_with_predict(synthetic):
    source, report, _ = synthetic
    features = source.features.to_numpy()
    labels = source.tracks["label"].to_numpy()
    for model in MODEL_NAMES:
        loaded = load_classifier(report.results_dir / result_name("features", model) / "model")
        proba = loaded.predict_proba(features)
        assert proba.shape == (len(features), len(CLASSES)) and loaded.classes == sorted(CLASSES), model
        assert np.allclose(proba.sum(axis=1), 1.0) and (proba >= 0).all(), model
        assert (proba.argmax(axis=1) == loaded.predict_index(features)).all(), model
        # columns in ``classes`` order: the true class is the likeliest on (nearly) every track
        truth = np.searchsorted(loaded.classes, labels)
        assert (proba.argmax(axis=1) == truth).mean() >= 0.9, model
    with pytest.raises(ClassifyError, match="expected 5 columns"):
        loaded.predict_proba(features[:, :3])

def test_best_saved_classifier_follows_cv_and_skips_results_without_a_model(synthetic, tmp_path):
    import shutil

    source, report, _ = synthetic
    best = best_saved_classifier(report.results_dir)
    first = best_per_input(report.summary).iloc[0]
    assert (best.input, best.model, best.cv_mean) == ("features", first["model"], first["cv_mean"])
    assert best.classes == sorted(CLASSES) and best.feature_names == list(source.features.columns)
    assert best.test_accuracy == first["test_accuracy"]
    proba = best.classifier.predict_proba(source.features.to_numpy())
    assert np.allclose(proba.sum(axis=1), 1.0)
    # without the best one's model files, the next one by CV is returned
    copy = tmp_path / "classifiers"
    shutil.copytree(report.results_dir, copy)
    shutil.rmtree(copy / result_name("features", best.model) / "model")
    second = best_saved_classifier(copy)
    assert second.model == report.summary[report.summary["model"] != best.model].iloc[0]["model"]
    assert best_saved_classifier(tmp_path / "nothing") is None
